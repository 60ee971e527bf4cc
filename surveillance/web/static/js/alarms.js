// Alarms on the wall (issue 13): what the open events ask of this screen.
//
// The events come from event-feed.js; this module decides, and the wall (wall.js) and the
// alarms panel (alarm-panel.js) carry it out:
//   - an ALARM nobody has acknowledged yet pins its camera to the alarm tile, which flashes;
//     with several, the newest. A new one beeps (alarm-sound.js).
//   - when none is left to acknowledge, the wall goes back to what it showed (wall.js keeps
//     that, and resumes the tour the alarm paused).
//   - a WARNING (or acknowledged alarm) still going on badges its camera's tile ("FROZEN",
//     "COVERED"), except health events: the tile shows "offline" and "stalled" already.
//   - the panel lists alarms and warnings not closed; a platform event folds its cameras'.
// Node-running events (the node's own up-time, for availability) are never shown on a wall.

const LISTED_SEVERITIES = new Set(["alarm", "warning"]);
const NEVER_SHOWN = new Set(["node.running"]);
// The tile tells these itself, from the camera's health (tiles.js); a platform event has no
// tile of its own.
const NO_BADGE = new Set(["camera.offline", "camera.stalled", "platform.offline"]);

export function isActive(event) {
  return event.ended_at === null || event.ended_at === undefined;
}

// Whether the panel lists it: an alarm or warning nobody closed yet.
export function isListed(event) {
  return LISTED_SEVERITIES.has(event.severity) && !NEVER_SHOWN.has(event.type) && event.state !== "closed";
}

// An alarm waiting for someone to acknowledge it: it holds the wall.
export function awaitsAck(event) {
  return event.severity === "alarm" && event.state === "open" && !NEVER_SHOWN.has(event.type);
}

// "quality.one_colour" -> "ONE COLOUR", "zone.motion" -> "MOTION".
export function badgeText(event) {
  const word = event.type.slice(event.type.lastIndexOf(".") + 1);
  return word.replace(/_/g, " ").toUpperCase();
}

function newestFirst(a, b) {
  return String(b.started_at).localeCompare(String(a.started_at)) || b.id - a.id;
}

export class Alarms {
  // wall: { pin(cameraId, event), unpin(), badges(Map camera id -> [text]) };
  // panel: { render(listed events, newest first) }; sound: { beep() }.
  constructor({ wall, panel, sound }) {
    this.wall = wall;
    this.panel = panel;
    this.sound = sound;
    this.events = new Map(); // id -> event, every one not closed
    this.heard = new Set(); // ids of alarms already announced (beeped) on this page
    this.pinned = null; // the event whose camera holds the alarm tile
  }

  // The whole list, from the stream's snapshot or a poll.
  replaceAll(events) {
    this.events = new Map(events.filter((event) => event.state !== "closed").map((event) => [event.id, event]));
    this._apply();
  }

  // One event that changed (closed ones leave).
  update(event) {
    if (event.state === "closed") this.events.delete(event.id);
    else this.events.set(event.id, event);
    this._apply();
  }

  _apply() {
    const events = [...this.events.values()].sort(newestFirst);
    const waiting = events.filter(awaitsAck);
    let fresh = false;
    for (const event of waiting) {
      if (!this.heard.has(event.id)) {
        this.heard.add(event.id);
        fresh = true;
      }
    }
    if (fresh) this.sound.beep();
    const target = waiting.find((event) => event.camera_id) || null;
    if (target) {
      if (!this.pinned || this.pinned.id !== target.id || fresh) this.wall.pin(target.camera_id, target);
      this.pinned = target;
    } else if (this.pinned) {
      this.pinned = null;
      this.wall.unpin();
    }
    const badges = new Map();
    for (const event of events) {
      if (!event.camera_id || !isActive(event) || NO_BADGE.has(event.type) || !isListed(event)) continue;
      if (!badges.has(event.camera_id)) badges.set(event.camera_id, []);
      const text = badgeText(event);
      if (!badges.get(event.camera_id).includes(text)) badges.get(event.camera_id).push(text);
    }
    this.wall.badges(badges);
    this.panel.render(events.filter(isListed));
  }

  // What this screen is doing about alarms, for tests and wall controllers.
  summary() {
    const events = [...this.events.values()];
    return {
      listed: events.filter(isListed).map((event) => event.id),
      waiting: events.filter(awaitsAck).map((event) => event.id),
      pinned: this.pinned ? { event: this.pinned.id, camera: this.pinned.camera_id } : null,
    };
  }
}
