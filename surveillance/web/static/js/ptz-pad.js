// The PTZ pad over a wall tile ("PTZ" on the tile of a camera with ptz: true, or in its
// menu): eight directions and stop, zoom, speed, the camera's presets (go to, save as a
// name), releasing and taking over control.
//
// A held button moves the camera continuously: the move is sent at once and again every
// REFRESH_MS while held, and the server stops the camera by itself move_timeout_s after the
// last one (its deadman), so a page that freezes or goes away stops the camera too. Letting
// go (pointer up, leaving the button, a cancelled touch, the window losing focus, the page
// hidden or closed, the pad closed) sends a stop at once. Commands go one after the other
// (a stop never overtakes the move before it); a refresh is skipped while one is on its way.
//
// The server decides who steers (one lease per camera); the pad shows what it says:
// refusals (409 "steered by NAME ...") in its status line, with textContent only.

import { ApiError, api } from "./api.js";
import { el, isolated } from "./dom.js";
import { holderText, outranks } from "./ptz-leases.js";
import { can, requirePermission } from "./session.js";

const REFRESH_MS = 400; // well inside the server's deadman (move_timeout_s, 1 s by default)
const DEFAULT_SPEED = 0.5;
const STOP = { pan: 0, tilt: 0, zoom: 0 };
// name -> [pan, tilt, zoom] at full speed (ONVIF: tilt +1 is up, pan +1 is right).
const MOVES = {
  "up-left": [-1, 1, 0], up: [0, 1, 0], "up-right": [1, 1, 0],
  left: [-1, 0, 0], right: [1, 0, 0],
  "down-left": [-1, -1, 0], down: [0, -1, 0], "down-right": [1, -1, 0],
  in: [0, 0, 1], out: [0, 0, -1],
};
const JOYSTICK = [
  ["up-left", "↖"], ["up", "↑"], ["up-right", "↗"],
  ["left", "←"], null, ["right", "→"],
  ["down-left", "↙"], ["down", "↓"], ["down-right", "↘"],
];
const KEYS = {
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
  "+": "in", "=": "in", PageUp: "in", "-": "out", PageDown: "out",
};
const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]); // arrows there are the field's own

function message(error) {
  return error instanceof ApiError ? error.message : "the request failed";
}

export class PtzPad {
  // tile: the tile's root element; camera: {id, name}; me: the /api/auth/me answer;
  // watch: the page's PtzLeaseWatch (asked again after this pad's commands).
  constructor(tile, camera, me, watch) {
    this.camera = camera.id;
    this.me = me;
    this.watch = watch;
    this.url = `/api/cameras/${encodeURIComponent(camera.id)}/ptz`;
    this.lease = null; // {holder, role, mine} or null
    this.controllable = true;
    this.reason = "";
    this.held = null; // the move being held, and by what: "pointer" or "key"
    this.heldBy = null;
    this._timer = null;
    this._pending = 0;
    this._chain = Promise.resolve();
    this.closed = false;
    this._build(camera.name);
    tile.append(this.root);
    this._onBlur = () => this._letGo();
    this._onVisibility = () => { if (document.visibilityState === "hidden") this._letGo(); };
    this._onPageHide = () => this._letGo(true);
    window.addEventListener("blur", this._onBlur);
    document.addEventListener("visibilitychange", this._onVisibility);
    window.addEventListener("pagehide", this._onPageHide);
    this.root.focus();
    this.refresh();
  }

  _build(name) {
    const button = (cls, text, title, onclick) => el("button", { type: "button", class: cls, text, title, onclick });
    this.leaseText = el("p", { class: "ptz-lease" });
    this.takeover = button("ptz-takeover", "Take over", "Take control from the operator steering", () => this._takeOver());
    this.moves = [];
    const joystick = el("div", { class: "ptz-joystick" });
    for (const cell of JOYSTICK) {
      if (cell === null) {
        this.stop = button("ptz-stop", "■", "Stop", () => this._letGo() || this._send(STOP));
        joystick.append(this.stop);
      } else joystick.append(this._moveButton(cell[0], cell[1], `Move ${cell[0]} (hold)`));
    }
    this.speed = el("input", { class: "ptz-speed", type: "range", min: 0.1, max: 1, step: 0.1, value: DEFAULT_SPEED, "aria-label": "Speed" });
    this.presets = el("select", { class: "ptz-presets", "aria-label": "Presets", onchange: () => this._render() });
    this.goto = button("ptz-goto", "Go to", "Turn the camera to this preset", () => this._preset("goto"));
    this.presetName = el("input", { class: "ptz-preset-name", maxlength: 64, placeholder: "Preset name", autocomplete: "off", "aria-label": "Preset name" });
    this.save = button("ptz-save", "Save as", "Save the camera's position as a preset with this name", () => this._preset("set"));
    this.release = button("ptz-release", "Release control", "Let other operators steer this camera", () => this._release());
    this.status = el("p", { class: "ptz-status", role: "status" });
    const close = button("ptz-close", "×", "Close", () => this.close());
    this.root = el("div", {
      class: "ptz-pad", role: "group", tabindex: 0, "data-camera": this.camera,
      "aria-label": `PTZ of ${name}`,
      onkeydown: (event) => this._key(event, true),
      onkeyup: (event) => this._key(event, false),
      onfocusout: (event) => { if (this.heldBy === "key" && !this.root.contains(event.relatedTarget)) this._letGo(); },
      ondblclick: (event) => event.stopPropagation(), // not the tile's full screen
    },
    el("div", { class: "ptz-head" }, el("strong", { class: "ptz-title", text: `PTZ · ${isolated(name)}` }), close),
    this.leaseText, this.takeover, joystick,
    el("div", { class: "ptz-zoom" }, this._moveButton("out", "−", "Zoom out (hold)"), this.speed,
      this._moveButton("in", "+", "Zoom in (hold)")),
    el("div", { class: "ptz-row" }, this.presets, this.goto),
    el("div", { class: "ptz-row" }, this.presetName, this.save),
    this.release, this.status);
  }

  _moveButton(move, text, title) {
    const node = el("button", { type: "button", class: "ptz-move", "data-move": move, text, title });
    node.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault(); // no text selection or touch scrolling while held
      this._press(move, "pointer");
    });
    for (const end of ["pointerup", "pointerleave", "pointercancel"]) {
      node.addEventListener(end, () => { if (this.held === move && this.heldBy === "pointer") this._letGo(); });
    }
    node.addEventListener("contextmenu", (event) => event.preventDefault()); // a long touch
    this.moves.push(node);
    return node;
  }

  _key(event, down) {
    if (event.key === "Escape" && down) {
      event.stopPropagation(); // closes the pad, not the full-screen tile
      this.close();
      return;
    }
    const move = KEYS[event.key];
    if (!move || TYPING.has(event.target.tagName)) return;
    event.preventDefault();
    event.stopPropagation();
    if (down && !event.repeat) this._press(move, "key");
    else if (!down && this.held === move) this._letGo();
  }

  _velocity(move) {
    const speed = Number(this.speed.value) || DEFAULT_SPEED;
    const [pan, tilt, zoom] = MOVES[move];
    return { pan: pan * speed, tilt: tilt * speed, zoom: zoom * speed };
  }

  // The keys are not locked like the buttons while another operator steers: an arrow asks
  // the server, whose refusal (409) says who steers and for how long, on the tile.
  _press(move, by) {
    if ((by === "pointer" && this._locked()) || this.held === move) return;
    clearInterval(this._timer);
    this.held = move;
    this.heldBy = by;
    this.root.dataset.moving = move;
    this._send(this._velocity(move));
    this._timer = setInterval(() => {
      if (this.held && this._pending === 0) this._send(this._velocity(this.held), true);
    }, REFRESH_MS);
  }

  // Ends a hold (sends the stop); false if nothing was held. keepalive: the page is closing.
  _letGo(keepalive = false) {
    if (this.held === null) return false;
    this._endHold();
    if (keepalive) api.post(this.url, STOP, { keepalive: true }).catch(() => {});
    else this._send(STOP);
    return true;
  }

  _endHold() {
    clearInterval(this._timer);
    this._timer = null;
    this.held = null;
    this.heldBy = null;
    delete this.root.dataset.moving;
  }

  // One command after the other; a refusal ends any hold (the server's deadman stops the
  // camera if it was moving) and says why. Resolves to {answer} if it went through (answer
  // null for a 204), else null.
  _send(body, refresh = false) {
    this._pending += 1;
    const sent = this._chain.then(() => api.post(this.url, body));
    this._chain = sent.then(() => {}, () => {});
    return sent.then((answer) => {
      if (!refresh) this._took("");
      return { answer };
    }, (error) => {
      this._refused(error);
      return null;
    }).finally(() => { this._pending -= 1; });
  }

  // A command went through: the lease is ours.
  _took(text) {
    if (!this.lease || !this.lease.mine) {
      this.lease = { holder: this.me.name, role: this.me.role, mine: true };
      this.watch.poll();
    }
    this._say(text);
    this._render();
  }

  _refused(error) {
    if (this.held !== null) this._endHold();
    this._say(message(error), true);
    if (error instanceof ApiError && error.status === 409) this.refresh(false);
  }

  _say(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", isError);
  }

  _locked() {
    return !this.controllable || (this.lease !== null && !this.lease.mine);
  }

  // The camera's PTZ state from the server: lease, presets, whether it can be steered.
  async refresh(clearStatus = true) {
    try {
      const state = await api.get(this.url);
      this.controllable = !!state.controllable;
      this.reason = state.reason || "";
      this.lease = state.lease ? { holder: state.lease.holder, role: state.lease.role, mine: !!state.lease.mine } : null;
      this._fillPresets(Array.isArray(state.presets) ? state.presets : []);
      // A camera that can be steered may still be unable to move now (offline, its device
      // not answering): say so before the operator presses anything.
      const why = this.controllable ? this.reason : `Cannot be steered: ${this.reason}`;
      if (clearStatus) this._say(why, !this.controllable || this.reason !== "");
    } catch (error) {
      this._say(message(error), true);
    }
    this._render();
  }

  // From the page's lease watch: who holds the camera now (null: nobody).
  showLease(lease) {
    const wasOther = this.lease !== null && !this.lease.mine;
    this.lease = lease ? { holder: lease.holder, role: lease.role, mine: lease.holder === this.me.name } : null;
    if (wasOther && !(this.lease && !this.lease.mine)) this._say(""); // its refusal is over
    if (this._locked() && this.held !== null) this._endHold(); // taken over: the server refuses the rest
    this._render();
  }

  _fillPresets(presets) {
    const chosen = this.presets.value;
    this.presets.replaceChildren(...presets.map((preset) => el("option", { value: preset.token, text: preset.name || preset.token })));
    if (presets.some((preset) => preset.token === chosen)) this.presets.value = chosen;
  }

  _render() {
    const lease = this.lease;
    const other = lease !== null && !lease.mine;
    let text = "Nobody steers this camera";
    if (lease && lease.mine) text = "You steer this camera";
    else if (other) text = `Steered by ${isolated(holderText(lease))}`;
    this.leaseText.textContent = text;
    this.root.dataset.lease = lease === null ? "free" : lease.mine ? "mine" : "other";
    const locked = this._locked();
    for (const node of [...this.moves, this.stop, this.goto, this.save]) node.disabled = locked;
    this.goto.disabled = locked || !this.presets.value;
    this.release.disabled = !(lease && lease.mine);
    this.takeover.hidden = !(other && can(this.me, "ptz.control") && outranks(this.me.role, lease.role));
  }

  async _preset(action) {
    const preset = { action };
    if (action === "goto") {
      if (!this.presets.value) return;
      preset.token = this.presets.value;
    } else {
      const name = this.presetName.value.trim();
      if (!name) {
        this._say("Type the preset's name first.", true);
        return;
      }
      preset.name = name;
    }
    const chosen = this.presets.selectedOptions[0];
    const sent = await this._send({ preset });
    if (sent === null) return;
    if (action === "goto") this._took(`Going to ${isolated(chosen ? chosen.textContent : preset.token)}`);
    else if (sent.answer) {
      this.presetName.value = "";
      await this.refresh();
      this.presets.value = sent.answer.token;
      this._took(`Saved preset ${isolated(sent.answer.name)}`);
    }
  }

  async _release() {
    this._letGo();
    try {
      await this._chain;
      await api.del(`${this.url}/lease`);
      this.lease = null;
      this._say("Control released");
      this.watch.poll();
    } catch (error) {
      this._say(message(error), true);
    }
    this._render();
  }

  async _takeOver() {
    const from = this.lease ? this.lease.holder : "";
    try {
      const lease = await api.post(`${this.url}/lease`, { takeover: true });
      this.lease = { holder: lease.holder, role: lease.role, mine: true };
      this._say(`You took control over from ${isolated(from)}`);
      this.watch.poll();
    } catch (error) {
      this._say(message(error), true);
    }
    this._render();
  }

  close() {
    this._letGo();
    window.removeEventListener("blur", this._onBlur);
    document.removeEventListener("visibilitychange", this._onVisibility);
    window.removeEventListener("pagehide", this._onPageHide);
    this.root.remove();
    this.closed = true;
  }
}

// The tile's "PTZ" button (shown by wall CSS on tiles of PTZ cameras, to roles with
// ptz.control); onOpen() opens the pad.
export function addPtzButton(tile, onOpen) {
  const button = el("button", { type: "button", class: "ptz-button", text: "PTZ", title: "Steer this camera" });
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    onOpen();
  });
  button.addEventListener("dblclick", (event) => event.stopPropagation());
  requirePermission(button, "ptz.control");
  (tile.querySelector(".overlay.top") || tile).append(button);
  return button;
}
