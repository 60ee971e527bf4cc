// One wall tile: the live picture of one camera stream, and the truth about it.
//
// The wall (wall.js) owns the grid and decides which camera and which stream each tile
// shows; a TileView builds its element, runs its player and says what state it is in. The
// truth a tile tells is about the stream it plays (the sub-stream's health on a sub-stream
// tile), and about its own picture: whatever the health says, a picture that has not moved
// for NO_PICTURE_MS is flagged as not live, and a stalled, connecting or offline stream is
// never shown as live.

import { ApiError } from "./api.js";
import { addAttachButton } from "./attach.js";
import { ageText, clear, el, isolated } from "./dom.js";
import { addPlaybackLink } from "./playback-links.js";
import { LivePlayer } from "./player.js";
import { addPtzButton } from "./ptz-pad.js";
import { addTileMenu } from "./tile-menu.js";

const WATCH_MS = 250; // how often a tile looks at its picture
const NO_PICTURE_MS = 2000; // no new frame for this long: the tile says so
// A player whose stream is online again but whose picture has not moved for this long is
// replaced; a shorter silence (a camera that flips state for a moment) keeps it.
const RESTART_NO_PICTURE_MS = 6000;
// A player that has not shown its first picture yet is left alone for as long as the server
// itself may take to give it one: up to 8 s for the stream's keyframe (services/ingest.py
// FIRST_PICTURE_WAIT_S), then up to 5 s for a transcoder's first picture (services/mosaic.py
// ENCODER_FIRST_PICTURE_WAIT_S), and the connection's set-up. Replacing it sooner would
// throw away a transcoder about to deliver and ask for another.
const FIRST_PICTURE_WAIT_MS = 16000;
const RETRY_FAILED_MS = 3000; // a player that could not start is tried again after this
const BUSY = 429; // the user's or the node's transcode slots are all taken, for now
// What a tile says while it waits for a slot: a wall nobody touches just waits, and tries
// again by itself (when another viewer ends, or its own closed page's viewers are let go).
const WAITING_FOR_TRANSCODER = "Waiting for a free transcoder";
const PATH_CHECK_MS = 1000; // how often a WebRTC tile asks whether its path suits the source
const KEEP_PLAYER = new Set(["stalled", "connecting"]); // may come back: keep the player

// Paths this page saw fail for a camera stream ("camera/stream" -> Set of paths): kept for
// the page's life, so a B-frame camera that reconnects is not tried over WebRTC again.
const avoided = new Map();

// Whether a player belongs on the tile: the stream is online, or it is an on-demand camera's
// idle stream, which connects when a viewer asks.
function plays(camera, health) {
  return health.state === "online" || (health.state === "idle" && camera.mode === "on-demand");
}

// The tile's text is rewritten on every watch tick: only a change touches the page.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function healthOf(camera, stream) {
  return stream === "sub" && camera.sub_health ? camera.sub_health : camera.health;
}

// Seconds since the stream's last packet, now: a health record pushed at a state change
// ages on the page (receivedAt is when it arrived; health-feed.js stamps it).
function lastSeenAge(camera, health) {
  const age = health.last_packet_age_s;
  if (age === null || age === undefined) return null;
  const elapsed = camera.receivedAt ? (performance.now() - camera.receivedAt) / 1000 : 0;
  return age + elapsed;
}

function retryText(health, camera) {
  const at = health.retry_at || camera.retry_at;
  if (!at) return "";
  const seconds = Math.ceil((Date.parse(at) - Date.now()) / 1000);
  return seconds > 0 ? ` · retrying in ${seconds} s` : " · retrying now";
}

export class TileView {
  // tile: {x, y, w, h} in grid cells; onDrop(cameraId) when a camera is dropped on it;
  // onOpen() on a double click (full screen and back); menu: the tile menu's items
  // (tile-menu.js); onPtz() from the tile's "PTZ" button (shown on PTZ cameras' tiles).
  constructor(tile, index, caps, { onDrop, onOpen, menu = [], onPtz = null }) {
    this.caps = caps;
    this.video = el("video", { muted: true, autoplay: true, playsinline: true });
    this.video.muted = true;
    this.name = el("span", { class: "tile-name" });
    this.chips = el("span", { class: "chips" });
    // What open events say of the camera's picture ("FROZEN", "COVERED": alarms.js).
    this.events = el("span", { class: "event-badges" });
    this.steered = el("span", { class: "badge steered" }); // "steered by NAME" (ptz-leases.js)
    this.health = el("span", { class: "badge health" });
    this.path = el("span", { class: "badge path" });
    this.notice = el("div", { class: "notice" });
    this.root = el("div", {
      class: "tile",
      "data-index": index,
      ondragover: (event) => event.preventDefault(),
      ondrop: (event) => {
        event.preventDefault();
        const camera = event.dataTransfer.getData("text/camera");
        if (camera) onDrop(camera);
      },
      ondblclick: onOpen,
    }, this.video, el("div", { class: "overlay top" }, this.name, this.events, this.steered, this.chips),
    el("div", { class: "overlay bottom" }, this.health, this.path), this.notice);
    this.root.style.gridColumn = `${tile.x + 1} / span ${tile.w}`;
    this.root.style.gridRow = `${tile.y + 1} / span ${tile.h}`;
    addAttachButton(this.root); // attach this tile's snapshot or last seconds to an open case
    addPlaybackLink(this.root); // this camera's recording from a minute ago
    if (menu.length) addTileMenu(this.root, menu);
    if (onPtz) addPtzButton(this.root, onPtz);
    this.panel = null; // a panel over the tile for its camera (the PTZ pad), or null
    this.player = null;
    this.camera = null; // the CameraOut shown, as last told
    this.stream = null;
    this.purpose = "grid";
    this.playingSince = null; // performance.now() since the played stream is online
    this._lastPathCheck = 0;
    this._checkingPath = false;
    this._timer = setInterval(() => this._watch(), WATCH_MS);
  }

  // texts: the badges of the camera's open events, [] for none.
  setEventBadges(texts) {
    const now = [...this.events.children].map((badge) => badge.textContent);
    if (now.length === texts.length && now.every((text, i) => text === texts[i])) return;
    this.events.replaceChildren(...texts.map((text) => el("span", { class: "badge event", text })));
    this.root.classList.toggle("has-events", texts.length > 0);
  }

  // holder: who steers the tile's camera when it is someone else, else null.
  setSteeredBy(holder) {
    const text = holder ? `steered by ${isolated(holder)}` : "";
    if (this.steered.textContent === text) return;
    this.steered.textContent = text;
    if (holder) this.root.dataset.steeredBy = holder;
    else delete this.root.dataset.steeredBy;
  }

  // A panel opened over the tile for its camera (closed when the tile shows another camera,
  // or none, or goes): panel.camera and panel.close().
  setPanel(panel) {
    if (this.panel && this.panel !== panel) this.panel.close();
    this.panel = panel;
  }

  stopPlayer() {
    const player = this.player;
    this.player = null;
    if (player) player.close();
    this.path.textContent = "";
  }

  close() {
    clearInterval(this._timer);
    this.setPanel(null);
    this.stopPlayer();
  }

  showEmpty() {
    this.setPanel(null);
    this.setSteeredBy(null);
    delete this.root.dataset.ptz;
    this.stopPlayer();
    this.camera = null;
    this.root.classList.remove("not-live");
    delete this.root.dataset.live;
    this.root.dataset.camera = "";
    clear(this.chips);
    this.root.dataset.state = "empty";
    this.name.textContent = "";
    this.health.textContent = "";
    this.notice.textContent = "Drop a camera here";
  }

  showMissing(cameraId) {
    this.setPanel(null);
    this.setSteeredBy(null);
    delete this.root.dataset.ptz;
    this.stopPlayer();
    this.camera = null;
    this.root.classList.remove("not-live");
    delete this.root.dataset.live;
    this.root.dataset.camera = cameraId;
    clear(this.chips);
    this.root.dataset.state = "unknown";
    this.name.textContent = cameraId;
    this.notice.textContent = "Camera not in the catalog";
  }

  // camera: a CameraOut; stream: "main" or "sub"; chips: its tag chips; purpose: "grid"
  // (one tile of many: the cheapest path) or "single" (full screen: the lowest latency).
  show(camera, stream, chips, purpose = "grid") {
    const changed = !this.camera || this.camera.id !== camera.id || this.stream !== stream
      || this.purpose !== purpose;
    const health = healthOf(camera, stream);
    const wasPlaying = this.camera !== null && plays(this.camera, healthOf(this.camera, this.stream));
    if (this.panel && this.panel.camera !== camera.id) this.setPanel(null);
    this.camera = camera;
    this.root.dataset.camera = camera.id;
    this.root.dataset.ptz = camera.ptz ? "yes" : "no";
    clear(this.chips);
    this.name.textContent = camera.name;
    this.chips.append(...chips);
    this.root.dataset.state = health.state;
    const playing = plays(camera, health);
    if (changed) this.stopPlayer();
    this.stream = stream;
    this.purpose = purpose;
    if (playing) {
      if (changed || !wasPlaying || this.playingSince === null) this.playingSince = performance.now();
      if (!this.player || this.player.failedAt || this.player.ended) this._startPlayer();
    } else {
      this.playingSince = null;
      // Offline or disabled: its connection is gone, and so is the picture. Stalled or
      // connecting: keep the player, which shows again by itself if the camera comes back
      // (the frozen picture is marked not live meanwhile).
      if (!KEEP_PLAYER.has(health.state)) this.stopPlayer();
    }
    this._render();
  }

  // The old player lets go of its server-side viewer before the new one asks for its own:
  // a page never competes with itself for the user's transcode slots.
  _startPlayer() {
    const previous = this.player;
    this.stopPlayer();
    const camera = this.camera.id;
    const stream = this.stream;
    const key = `${camera}/${stream}`;
    const avoid = [...(avoided.get(key) || [])];
    const player = new LivePlayer(this.video, camera, stream, this.caps, avoid, this.purpose);
    this.player = player;
    this.path.textContent = "…";
    const released = previous ? previous.close() : Promise.resolve();
    released.then(() => (player.closed ? null : player.start())).then(() => {
      if (this.player === player) this.path.textContent = `${player.path} · ${stream}`;
    }).catch((error) => {
      player.failedAt = performance.now();
      player.error = error instanceof ApiError
        ? (error.status === BUSY ? WAITING_FOR_TRANSCODER : error.message) : "video failed";
      if (this.player === player) {
        this.path.textContent = "";
        this._render();
      }
    });
  }

  // What the tile says: its stream's health, and whether its picture is live.
  _render() {
    const camera = this.camera;
    if (!camera) return;
    const health = healthOf(camera, this.stream);
    const state = health.state;
    const playing = this.playingSince !== null;
    const player = this.player;
    const since = player ? player.frames.sinceLastFrameMs() : null;
    const moving = player !== null && player.frames.lastFrameAt !== null && since < NO_PICTURE_MS;
    const live = playing && moving;
    if (this.root.dataset.live !== (live ? "yes" : "no")) {
      this.root.dataset.live = live ? "yes" : "no";
      this.root.classList.toggle("not-live", !live);
    }
    if (playing) {
      setText(this.health, state);
      let notice = "";
      if (player && player.failedAt) notice = player.error;
      else if (live) notice = "";
      else if (player && player.frames.lastFrameAt !== null) {
        notice = `NO PICTURE FOR ${Math.floor(since / 1000)} S`;
      } else if (player && since >= NO_PICTURE_MS) {
        notice = `NO PICTURE YET (${Math.floor(since / 1000)} S)`;
      }
      setText(this.notice, notice);
      return;
    }
    const age = lastSeenAge(camera, health);
    const seen = age === null ? "never seen" : `last seen ${ageText(age)}`;
    const reason = health.last_error ? ` · ${health.last_error}` : "";
    setText(this.health, `${state} · ${seen}`);
    setText(this.notice, `${state.toUpperCase()}${reason}${retryText(health, camera)}`);
  }

  _watch() {
    const player = this.player;
    if (player) {
      player.frames.sample();
      const shown = document.visibilityState === "visible" &&
        (this.root.checkVisibility ? this.root.checkVisibility() : this.root.offsetParent !== null);
      if (!shown) player.rest();
      else if (this.playingSince !== null) this._maybeReplace(player);
    }
    this._render();
  }

  _maybeReplace(player) {
    const now = performance.now();
    const silentFor = player.frames.sinceLastFrameMs(now);
    if (player.failedAt) {
      if (now - player.failedAt >= RETRY_FAILED_MS) this._startPlayer();
      return;
    }
    const stuck = player.frames.lastFrameAt === null
      ? now - player.startedAt >= FIRST_PICTURE_WAIT_MS
      : silentFor >= RESTART_NO_PICTURE_MS && now - this.playingSince >= RESTART_NO_PICTURE_MS;
    if (player.ended || stuck) {
      this._startPlayer();
      return;
    }
    if (this._checkingPath || now - this._lastPathCheck < PATH_CHECK_MS) return;
    this._lastPathCheck = now;
    this._checkingPath = true;
    player.webrtcStuck().then((stuck) => {
      if (!stuck || this.player !== player) return;
      const key = `${player.camera}/${player.stream}`;
      if (!avoided.has(key)) avoided.set(key, new Set());
      avoided.get(key).add("webrtc");
      this._startPlayer();
    }).catch(() => {}).finally(() => { this._checkingPath = false; });
  }

  async stats() {
    return this.player ? this.player.stats() : null;
  }
}
