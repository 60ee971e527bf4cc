// Camera health for the wall, kept current without polling while the server can push it.
//
// GET /api/cameras/events (Server-Sent Events) sends `snapshot` (the list GET /api/cameras
// answers) on connect, then `camera` (one CameraOut) at every state change of a camera's
// main or sub stream; while that stream is down the feed polls GET /api/cameras (the
// turns between the two: push-feed.js).

import { api } from "./api.js";
import { PushFeed } from "./push-feed.js";

const EVENTS_URL = "/api/cameras/events";
const CAMERAS_URL = "/api/cameras";

export class HealthFeed {
  // onCameras(list) gets the whole list (at connect, and at each poll); onCamera(camera) one
  // camera that changed; onError(error) a failed poll; onMode(mode) "events" or "polling".
  // Every camera handed on carries receivedAt, the performance.now() it arrived at, so ages
  // in it (last_packet_age_s) can be brought up to date on the page.
  constructor({ onCameras, onCamera, onError = () => {}, onMode = () => {} }) {
    this._feed = new PushFeed({
      url: EVENTS_URL,
      events: { snapshot: "snapshot", item: "camera" },
      poll: () => this.load(),
      readList: (cameras) => (Array.isArray(cameras) ? stamp(cameras) : null),
      readItem: (camera) => (camera && typeof camera.id === "string" ? stamp([camera])[0] : null),
      onList: onCameras,
      onItem: onCamera,
      onError,
      onMode,
    });
  }

  get mode() {
    return this._feed.mode;
  }

  async load() {
    return stamp(await api.get(CAMERAS_URL));
  }

  start() {
    this._feed.start();
  }
}

function stamp(cameras) {
  const now = performance.now();
  for (const camera of cameras) camera.receivedAt = now;
  return cameras;
}
