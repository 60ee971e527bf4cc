// One wall tile: the live picture of one camera stream, and the truth about it.
//
// The wall (wall.js) owns the grid and decides which camera and which stream each tile
// shows; a TileView builds its element, runs its player and says what state it is in.

import { ApiError } from "./api.js";
import { addAttachButton } from "./attach.js";
import { ageText, clear, el } from "./dom.js";
import { LivePlayer } from "./player.js";

export class TileView {
  // tile: {x, y, w, h} in grid cells; onDrop(cameraId) when a camera is dropped on it;
  // onOpen() on a double click (full screen and back).
  constructor(tile, index, caps, { onDrop, onOpen }) {
    this.caps = caps;
    this.video = el("video", { muted: true, autoplay: true, playsinline: true });
    this.video.muted = true;
    this.name = el("span", { class: "tile-name" });
    this.chips = el("span", { class: "chips" });
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
    }, this.video, el("div", { class: "overlay top" }, this.name, this.chips),
    el("div", { class: "overlay bottom" }, this.health, this.path), this.notice);
    this.root.style.gridColumn = `${tile.x + 1} / span ${tile.w}`;
    this.root.style.gridRow = `${tile.y + 1} / span ${tile.h}`;
    addAttachButton(this.root); // attach this tile's snapshot or last seconds to an open case
    this.player = null;
    this.camera = null;
    this.stream = null;
  }

  stopPlayer() {
    if (this.player) this.player.close();
    this.player = null;
    this.path.textContent = "";
  }

  close() {
    this.stopPlayer();
  }

  showEmpty() {
    this.stopPlayer();
    this.root.dataset.camera = "";
    clear(this.chips);
    this.root.dataset.state = "empty";
    this.name.textContent = "";
    this.health.textContent = "";
    this.notice.textContent = "Drop a camera here";
  }

  showMissing(cameraId) {
    this.stopPlayer();
    this.root.dataset.camera = cameraId;
    clear(this.chips);
    this.root.dataset.state = "unknown";
    this.name.textContent = cameraId;
    this.notice.textContent = "Camera not in the catalog";
  }

  // camera: a CameraOut; stream: "main" or "sub"; chips: its tag chips.
  show(camera, stream, chips) {
    const view = this;
    view.root.dataset.camera = camera.id;
    clear(view.chips);
    view.name.textContent = camera.name;
    view.chips.append(...chips);
    view.root.dataset.state = camera.state;
    const online = camera.state === "online" || (camera.state === "idle" && camera.mode === "on-demand");
    if (!online) {
      view.stopPlayer();
      const reason = camera.health.last_error ? ` · ${camera.health.last_error}` : "";
      const age = camera.health.last_packet_age_s;
      const seen = age === null ? "never seen" : `last seen ${ageText(age)}`;
      view.health.textContent = `${camera.state} · ${seen}`;
      view.notice.textContent = `${camera.state.toUpperCase()}${reason}`;
      return;
    }
    view.health.textContent = camera.state;
    view.notice.textContent = "";
    if (view.player && view.camera === camera.id && view.stream === stream && !view.player.failed) return;
    view.stopPlayer();
    view.camera = camera.id;
    view.stream = stream;
    const player = new LivePlayer(view.video, camera.id, stream, view.caps);
    view.player = player;
    view.path.textContent = "…";
    player.start().then(() => {
      if (view.player === player) view.path.textContent = `${player.path} · ${stream}`;
    }).catch((error) => {
      player.failed = true;
      if (view.player === player) {
        view.path.textContent = "";
        view.notice.textContent = error instanceof ApiError ? error.message : "video failed";
      }
    });
  }

  async stats() {
    return this.player ? this.player.stats() : null;
  }
}
