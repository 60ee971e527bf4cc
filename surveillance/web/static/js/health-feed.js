// Camera health for the wall, kept current without polling while the server can push it.
//
// GET /api/cameras/events (Server-Sent Events) sends `snapshot` (the list GET /api/cameras
// answers) on connect, then `camera` (one CameraOut) at every state change of a camera's
// main or sub stream, and a keepalive comment every 15 s. While that stream is down (an
// error, a server without the route, a proxy that cuts it), the feed polls GET /api/cameras
// every POLL_MS, and goes back to the events the moment they flow again.

import { api } from "./api.js";
import { cleanStrings } from "./dom.js";

const EVENTS_URL = "/api/cameras/events";
const CAMERAS_URL = "/api/cameras";
const POLL_MS = 2000;
// EventSource retries by itself after a dropped connection, but not after an error answer
// (404 before the route exists, 503, 401): then the feed opens a new one after this long.
const REOPEN_MS = 15000;

export class HealthFeed {
  // onCameras(list) gets the whole list (at connect, and at each poll); onCamera(camera) one
  // camera that changed; onError(error) a failed poll; onMode(mode) "events" or "polling".
  // Every camera handed on carries receivedAt, the performance.now() it arrived at, so ages
  // in it (last_packet_age_s) can be brought up to date on the page.
  constructor({ onCameras, onCamera, onError = () => {}, onMode = () => {} }) {
    this.onCameras = onCameras;
    this.onCamera = onCamera;
    this.onError = onError;
    this.onMode = onMode;
    this.mode = null;
    this._events = null;
    this._polling = null;
    this._pollTimer = null;
    this._reopenTimer = null;
  }

  async load() {
    return stamp(await api.get(CAMERAS_URL));
  }

  start() {
    this._open();
  }

  _setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  _open() {
    const events = new EventSource(EVENTS_URL);
    this._events = events;
    events.addEventListener("snapshot", (event) => {
      const cameras = parse(event.data);
      if (!Array.isArray(cameras)) return;
      this._stopPolling();
      this._setMode("events");
      this.onCameras(stamp(cameras));
    });
    events.addEventListener("camera", (event) => {
      const camera = parse(event.data);
      if (camera && typeof camera.id === "string") this.onCamera(stamp([camera])[0]);
    });
    events.addEventListener("error", () => {
      if (this._events !== events) return;
      this._startPolling();
      if (events.readyState === EventSource.CLOSED) {
        events.close();
        this._events = null;
        clearTimeout(this._reopenTimer);
        this._reopenTimer = setTimeout(() => this._open(), REOPEN_MS);
      }
    });
  }

  _startPolling() {
    this._setMode("polling");
    if (this._polling !== null) return;
    const round = {}; // this round of polling: a poll answered after it ended is dropped
    this._polling = round;
    const poll = async () => {
      try {
        const cameras = await this.load();
        if (this._polling === round) this.onCameras(cameras);
      } catch (error) {
        if (this._polling === round) this.onError(error);
      }
      if (this._polling === round) this._pollTimer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  _stopPolling() {
    clearTimeout(this._pollTimer);
    this._polling = null;
  }
}

function parse(data) {
  try {
    return cleanStrings(JSON.parse(data)); // as every API answer (dom.js)
  } catch {
    return null; // a message this page cannot read changes nothing
  }
}

function stamp(cameras) {
  const now = performance.now();
  for (const camera of cameras) camera.receivedAt = now;
  return cameras;
}
