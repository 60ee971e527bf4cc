// The zones panel ("Zones…" in a tile's menu): the camera's current picture with its zones
// drawn on it (zone-drawing.js), the list of its zones, and a form for the one being edited:
// name, tag, schedule (time windows and months), sensitivity, on/off. Save sends it to
// POST /api/cameras/{id}/zones (new) or PUT .../zones/{zone_id}; the server's 422 is shown
// beside the field it names. And "Set reference picture" (the same menu): the picture
// diagnosis compares the camera with to tell it was turned or moved.
//
// Names are text everywhere (dom.js); the server checks every rule again.

import { ApiError, api } from "./api.js";
import { clear, el, isolated } from "./dom.js";
import { errorText } from "./case-format.js";
import { ZoneDrawing } from "./zone-drawing.js";

const PICTURE_WIDTH = 960;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DEFAULT_SENSITIVITY = 50;
const FIELDS = ["name", "tag", "points", "schedule", "sensitivity", "enabled"];
const WINDOW = /^([0-2]?\d:[0-5]\d)\s*-\s*([0-2]?\d:[0-5]\d)$/;

function zonesUrl(camera) {
  return `/api/cameras/${encodeURIComponent(camera)}/zones`;
}

function pictureUrl(camera) {
  return `/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg?width=${PICTURE_WIDTH}&t=${Date.now()}`;
}

// "19:00-07:00, 12:00-13:00" <-> [{from, to}, ...]; empty is all day. A window the page
// cannot read is sent as typed, for the server to name.
export function parseWindows(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
    const match = part.match(WINDOW);
    return match ? { from: match[1].padStart(5, "0"), to: match[2].padStart(5, "0") } : { from: part, to: "" };
  });
}

function windowsText(windows) {
  return (windows || []).map((window) => `${window.from}-${window.to}`).join(", ");
}

// Which field a refusal is about: a 422's loc (["body", "points", 3]), else the words of its
// message ("self-intersecting: edges 1 and 3" is about the points).
function fieldOf(loc, text) {
  const named = Array.isArray(loc) ? loc.find((part) => FIELDS.includes(part)) : null;
  if (named) return named;
  if (/point|edge|intersect|polygon/i.test(text)) return "points";
  if (/schedule|window|month|date/i.test(text)) return "schedule";
  if (/sensitivity/i.test(text)) return "sensitivity";
  if (/name/i.test(text)) return "name";
  return null;
}

// [{field, text}] from an API error.
function refusals(error) {
  if (!(error instanceof ApiError)) return [{ field: null, text: errorText(error) }];
  const detail = error.body && error.body.detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => {
      const text = item && typeof item.msg === "string" ? item.msg : String(item);
      return { field: fieldOf(item && item.loc, text), text };
    });
  }
  return [{ field: fieldOf(null, error.message), text: error.message }];
}

class ZoneEditor {
  constructor() {
    this.camera = null;
    this.zones = [];
    this.editing = null; // the zone's id, or null for a new one
    this.dates = null; // a loaded zone's schedule dates, kept as they were (no field for them here)
    this.title = el("h2", { class: "zone-title" });
    this.image = el("img", { class: "zone-picture", alt: "The camera's current picture" });
    this.stage = el("div", { class: "zone-stage" }, this.image);
    this.drawing = new ZoneDrawing(this.stage, this.image, () => this._clearErrors("points"));
    this.list = el("ul", { class: "zone-list" });
    this.errors = Object.fromEntries(FIELDS.map((field) => [field, el("span", { class: "zone-error", "data-field": field })]));
    this.name = el("input", { name: "name", maxlength: 80, required: true, autocomplete: "off" });
    this.tag = el("input", { name: "tag", maxlength: 64, autocomplete: "off", list: "zone-tags" });
    this.tags = el("datalist", { id: "zone-tags" });
    this.windows = el("input", { name: "windows", placeholder: "all day", autocomplete: "off" });
    this.months = MONTHS.map((month, index) => el("input", { type: "checkbox", name: "month", value: index + 1, "aria-label": month }));
    this.sensitivity = el("input", { name: "sensitivity", type: "number", min: 1, max: 100, step: 1 });
    this.enabled = el("input", { name: "enabled", type: "checkbox" });
    this.status = el("p", { class: "zone-status", role: "status" });
    this.save = el("button", { type: "submit", class: "zone-save", text: "Save zone" });
    this.remove = el("button", { type: "button", class: "zone-delete", text: "Delete zone" });
    this.restart = el("button", { type: "button", class: "zone-clear", text: "Clear points" });
    const form = el("form", { class: "zone-form" },
      el("label", {}, "Name ", this.name, this.errors.name),
      el("label", {}, "Tag ", this.tag, this.tags, this.errors.tag),
      el("p", { class: "zone-hint", text: "Click the picture to add points; click the first point to close the polygon; drag a point to move it." }),
      el("div", { class: "zone-points" }, this.restart, this.errors.points),
      el("label", {}, "Armed at (the node's local time; empty: all day; 19:00-07:00 crosses midnight)", this.windows),
      el("fieldset", { class: "zone-months" }, el("legend", { text: "Months (none: all year)" }),
        ...this.months.map((box, index) => el("label", {}, box, MONTHS[index]))),
      this.errors.schedule,
      el("label", {}, "Sensitivity ", this.sensitivity, " (1-100)", this.errors.sensitivity),
      el("label", {}, this.enabled, " On", this.errors.enabled),
      el("div", { class: "zone-buttons" }, this.save, this.remove),
      this.status);
    const close = el("button", { type: "button", class: "zone-close", text: "Close" });
    const newZone = el("button", { type: "button", class: "zone-new", text: "New zone" });
    this.root = el("dialog", { id: "zone-editor", class: "zone-editor" },
      el("div", { class: "zone-top" }, this.title, close),
      el("div", { class: "zone-body" }, this.stage,
        el("div", { class: "zone-side" }, this.list, newZone, form)));
    document.body.append(this.root);
    close.addEventListener("click", () => this.root.close());
    newZone.addEventListener("click", () => this._edit(null));
    this.restart.addEventListener("click", () => this.drawing.set([], false, this._others(this.editing)));
    this.remove.addEventListener("click", () => this._delete());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this._save();
    });
  }

  async open(camera, name) {
    this.camera = camera;
    this.title.textContent = `Zones · ${isolated(name)}`;
    this.image.src = pictureUrl(camera);
    this._say("");
    if (!this.root.open) this.root.showModal();
    api.get("/api/tags").then((tags) => {
      this.tags.replaceChildren(...tags.map((tag) => el("option", { value: tag.id, text: tag.name })));
    }, () => {});
    await this._load();
    this._edit(this.zones.length ? this.zones[0].id : null);
  }

  async _load() {
    try {
      const answer = await api.get(zonesUrl(this.camera));
      this.zones = Array.isArray(answer) ? answer : answer.zones || [];
    } catch (error) {
      this.zones = [];
      this._say(`Could not load the zones: ${errorText(error)}`, true);
    }
    this._renderList();
  }

  _renderList() {
    clear(this.list);
    for (const zone of this.zones) {
      const armed = zone.armed_now ? "armed now" : zone.enabled ? "not armed now" : "off";
      this.list.append(el("li", {
        class: `zone-item${zone.id === this.editing ? " editing" : ""}`, "data-zone": zone.id,
        onclick: () => this._edit(zone.id),
      }, el("span", { class: "zone-name", text: zone.name }), el("span", { class: "zone-armed", text: armed })));
    }
  }

  _others(id) {
    return this.zones.filter((zone) => zone.id !== id).map((zone) => zone.points);
  }

  _edit(id) {
    const zone = this.zones.find((item) => item.id === id) || null;
    this.editing = zone ? zone.id : null;
    const schedule = (zone && zone.schedule) || {};
    this.name.value = zone ? zone.name : "";
    this.tag.value = zone && zone.tag ? zone.tag : "";
    this.windows.value = windowsText(schedule.windows);
    const months = new Set(schedule.months || []);
    this.months.forEach((box, index) => { box.checked = months.has(index + 1); });
    this.dates = schedule.dates || null;
    this.sensitivity.value = zone ? zone.sensitivity : DEFAULT_SENSITIVITY;
    this.enabled.checked = zone ? zone.enabled : true;
    this.remove.hidden = !zone;
    this.drawing.set(zone ? zone.points : [], !!zone, this._others(this.editing));
    this._clearErrors();
    this._renderList();
  }

  _body() {
    const schedule = {
      windows: parseWindows(this.windows.value),
      months: this.months.filter((box) => box.checked).map((box) => Number(box.value)),
    };
    if (this.dates) schedule.dates = this.dates;
    return {
      name: this.name.value.trim(),
      tag: this.tag.value.trim() || null,
      points: this.drawing.points,
      schedule,
      sensitivity: Number(this.sensitivity.value),
      enabled: this.enabled.checked,
    };
  }

  async _save() {
    this._clearErrors();
    this.save.disabled = true;
    const url = this.editing === null ? zonesUrl(this.camera) : `${zonesUrl(this.camera)}/${this.editing}`;
    try {
      const saved = this.editing === null ? await api.post(url, this._body()) : await api.put(url, this._body());
      await this._load();
      this._edit(saved && saved.id !== undefined ? saved.id : this.editing);
      this._say(`Saved zone ${isolated(saved && saved.name ? saved.name : this.name.value)}.`);
    } catch (error) {
      this._refused(error);
    } finally {
      this.save.disabled = false;
    }
  }

  async _delete() {
    if (this.editing === null) return;
    try {
      await api.del(`${zonesUrl(this.camera)}/${this.editing}`);
      await this._load();
      this._edit(this.zones.length ? this.zones[0].id : null);
      this._say("Zone deleted.");
    } catch (error) {
      this._refused(error);
    }
  }

  _refused(error) {
    const general = [];
    for (const { field, text } of refusals(error)) {
      if (field) this.errors[field].textContent = [this.errors[field].textContent, text].filter(Boolean).join("; ");
      else general.push(text);
    }
    const status = error instanceof ApiError ? `Not saved (${error.status})` : "Not saved";
    this._say(general.length ? `${status}: ${general.join("; ")}` : `${status}: see the marked fields.`, true);
  }

  _clearErrors(field = null) {
    for (const [name, node] of Object.entries(this.errors)) if (!field || name === field) node.textContent = "";
  }

  _say(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", isError);
  }
}

let editor = null;

export function openZoneEditor(camera, name) {
  if (!editor) editor = new ZoneEditor();
  return editor.open(camera, name);
}

// ---- reference picture ----------------------------------------------------------------------

let reference = null;

function referenceDialog() {
  const title = el("h2", { class: "zone-title" });
  const picture = el("img", { class: "reference-picture", alt: "The camera's current picture" });
  const status = el("p", { class: "zone-status", role: "status" });
  const set = el("button", { type: "button", class: "reference-set", text: "Set as reference" });
  const close = el("button", { type: "button", text: "Close" });
  const root = el("dialog", { id: "reference-dialog", class: "zone-editor reference-dialog" },
    el("div", { class: "zone-top" }, title, close),
    el("p", { class: "zone-hint", text: "Diagnosis compares the camera's picture with its reference to tell when it was turned or moved. Take the picture below as the reference when the camera points where it should." }),
    picture, el("div", { class: "zone-buttons" }, set), status);
  document.body.append(root);
  close.addEventListener("click", () => root.close());
  const view = { root, title, picture, status, set, camera: null };
  set.addEventListener("click", async () => {
    set.disabled = true;
    try {
      await api.post(`/api/cameras/${encodeURIComponent(view.camera)}/reference`, {});
      status.textContent = "Reference picture set.";
      status.classList.remove("error");
    } catch (error) {
      status.textContent = `Not set: ${errorText(error)}`;
      status.classList.add("error");
    } finally {
      set.disabled = false;
    }
  });
  return view;
}

export function openReferenceDialog(camera, name) {
  if (!reference) reference = referenceDialog();
  reference.camera = camera;
  reference.title.textContent = `Reference picture · ${isolated(name)}`;
  reference.picture.src = pictureUrl(camera);
  reference.status.textContent = "";
  if (!reference.root.open) reference.root.showModal();
}
