// The wall's alarms panel: alarms and warnings not closed, newest first, each with its
// snapshot, what and where, and the operator's two actions: Ack, and Case (one click turns
// the alarm into a case with its evidence; the answer links to the case page). A platform
// event (a storm, collapsed by the server) is one item with its cameras' events folded
// under it, never one item per camera.
//
// Names come from the catalog and the server; every one is text (dom.js), never markup.

import { api } from "./api.js";
import { clear, el, isolated } from "./dom.js";
import { caseUrl, errorText } from "./case-format.js";
import { can, whenSignedIn } from "./session.js";

const STATE_TEXT = { open: "new", acknowledged: "acknowledged" };

function timeOf(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? "" : moment.toLocaleTimeString();
}

export class AlarmPanel {
  // root: the panel (hidden while it has nothing to say); list: its <ul>; count: its
  // heading's count; status: what the last action answered (a reported case's link stays
  // there after its alarm, acknowledged and ended, leaves the list); cameraName(id): the
  // name to show, platformName(id) likewise; onAnswer(event): an updated event from Ack or
  // Case.
  constructor({ root, list, count, status, cameraName, platformName, onAnswer }) {
    this.root = root;
    this.list = list;
    this.count = count;
    this.status = status;
    this.cameraName = cameraName;
    this.platformName = platformName;
    this.onAnswer = onAnswer;
    this.me = null;
    this.shown = [];
    this.signature = null;
    this.unfolded = new Set(); // platform events whose cameras the operator unfolded
    whenSignedIn().then((me) => {
      this.me = me;
      this.render(this.shown, true);
    }, () => {});
  }

  render(events, force = false) {
    // A poll brings the same list every 2 s: redrawn only when it changed, so thumbnails
    // are not fetched again and a button being pressed stays.
    const signature = JSON.stringify(events);
    if (!force && signature === this.signature) return;
    this.signature = signature;
    this.shown = events;
    const ids = new Set(events.map((event) => event.id));
    const children = new Map(); // platform event id -> its cameras' events
    for (const event of events) {
      if (event.parent_id !== null && event.parent_id !== undefined && ids.has(event.parent_id)) {
        if (!children.has(event.parent_id)) children.set(event.parent_id, []);
        children.get(event.parent_id).push(event);
      }
    }
    clear(this.list);
    let top = 0;
    for (const event of events) {
      if (event.parent_id !== null && event.parent_id !== undefined && ids.has(event.parent_id)) continue;
      this.list.append(this._item(event, children.get(event.id) || []));
      top += 1;
    }
    this.count.textContent = top ? String(top) : "";
    this.root.hidden = top === 0 && !this.status.firstChild;
    document.body.classList.toggle("has-alarms", top > 0);
  }

  _item(event, children) {
    const where = event.camera_id ? this.cameraName(event.camera_id)
      : event.platform_id ? this.platformName(event.platform_id) : "";
    const item = el("li", {
      class: `alarm-item severity-${event.severity}`,
      "data-event": event.id,
      "data-state": event.state,
      "data-type": event.type,
    });
    if (event.has_snapshot) {
      item.append(el("img", {
        class: "alarm-thumb", alt: "", loading: "lazy", src: `/api/events/${event.id}/snapshot`,
      }));
    }
    const ended = event.ended_at ? " · ended" : "";
    const text = el("div", { class: "alarm-text" },
      el("strong", { class: "alarm-summary", text: event.summary }),
      el("span", { class: "alarm-where", text: where }),
      el("span", { class: "alarm-when", text: `${timeOf(event.started_at)} · ${STATE_TEXT[event.state] || event.state}${ended}` }));
    item.append(text, this._actions(event));
    if (children.length) {
      const folded = el("ul", { class: "alarm-children" }, ...children.map((child) => el("li", {
        class: "alarm-child", "data-event": child.id,
      }, el("span", { class: "alarm-where", text: child.camera_id ? this.cameraName(child.camera_id) : "" }),
      el("span", { class: "alarm-when", text: child.ended_at ? " · back" : "" }))));
      const fold = el("details", { class: "alarm-fold", open: this.unfolded.has(event.id) },
        el("summary", { text: `${children.length} camera${children.length === 1 ? "" : "s"}` }), folded);
      // The list is redrawn at every change: what the operator unfolded stays unfolded.
      fold.addEventListener("toggle", () => {
        if (fold.open) this.unfolded.add(event.id);
        else this.unfolded.delete(event.id);
      });
      text.append(fold);
    }
    return item;
  }

  _actions(event) {
    const actions = el("div", { class: "alarm-actions" });
    if (event.state === "open" && can(this.me, "events.ack")) {
      actions.append(el("button", {
        type: "button", class: "alarm-ack", text: "Ack", onclick: (click) => this._ack(event, click.target),
      }));
    }
    if (event.case_number) {
      actions.append(el("a", {
        class: "alarm-case-link", href: caseUrl(event.case_number), target: "_blank", rel: "noopener",
        text: `Case ${isolated(event.case_number)}`,
      }));
    } else if (event.camera_id && can(this.me, "cases.write") && can(this.me, "evidence.attach")) {
      actions.append(el("button", {
        type: "button", class: "alarm-case", text: "Case", title: "Report a case with this alarm's picture and clip",
        onclick: (click) => this._case(event, click.target),
      }));
    }
    return actions;
  }

  async _ack(event, button) {
    button.disabled = true;
    try {
      this.onAnswer(await api.post(`/api/events/${event.id}/ack`, {}));
    } catch (error) {
      this._say(`Not acknowledged: ${errorText(error)}`, true);
      button.disabled = false;
    }
  }

  async _case(event, button) {
    button.disabled = true;
    button.textContent = "Reporting…";
    try {
      const answer = await api.post(`/api/events/${event.id}/case`, {});
      const number = answer.number || answer.case_number;
      this._say(`Case ${isolated(number)} reported for ${isolated(event.summary)}.`, false,
        el("a", { class: "alarm-case-link", href: caseUrl(number), target: "_blank", rel: "noopener", text: "Open the case" }));
      // The server acknowledged it too; the stream brings that, the link shows at once.
      this.onAnswer({ ...event, case_number: number });
    } catch (error) {
      this._say(`No case: ${errorText(error)}`, true);
      button.disabled = false;
      button.textContent = "Case";
    }
  }

  _say(text, isError, link = null) {
    this.status.replaceChildren(text);
    if (link) this.status.append(" ", link);
    this.status.classList.toggle("error", isError);
    this.render(this.shown, true);
  }
}
