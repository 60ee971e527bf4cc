// The events a wall page must know of (issue 13's bus): every event in the user's scope that
// is not closed, kept current by GET /api/events/stream (Server-Sent Events: `snapshot`, the
// open and active events, on connect; then `event`, one event, at each change), and by
// polling GET /api/events while that stream is down (push-feed.js).

import { api } from "./api.js";
import { PushFeed } from "./push-feed.js";

const STREAM_URL = "/api/events/stream";
const PAGE_LIMIT = 500; // the API's most per page
// What the snapshot holds, cameras folded under a platform event included: events not
// closed (an alarm that ended stays open until someone acknowledges it), and events still
// going on (an acknowledged one whose condition holds still marks its tile).
const POLLS = [
  `/api/events?state=open&state=acknowledged&children=true&limit=${PAGE_LIMIT}`,
  `/api/events?active=true&children=true&limit=${PAGE_LIMIT}`,
];

function isEvent(item) {
  return !!item && typeof item === "object" && Number.isInteger(item.id) && typeof item.type === "string";
}

function eventsOf(data) {
  const list = Array.isArray(data) ? data : data && Array.isArray(data.events) ? data.events : null;
  return list === null ? null : list.filter(isEvent);
}

async function pollEvents() {
  const byId = new Map();
  for (const page of await Promise.all(POLLS.map((url) => api.get(url)))) {
    for (const event of eventsOf(page) || []) byId.set(event.id, event);
  }
  return [...byId.values()];
}

export class EventFeed {
  // onEvents(list): every event not closed (at connect and at each poll); onEvent(event): one
  // that changed, closed ones included (they leave the list); onMode(mode): as HealthFeed's.
  constructor({ onEvents, onEvent, onError = () => {}, onMode = () => {} }) {
    this._feed = new PushFeed({
      url: STREAM_URL,
      events: { snapshot: "snapshot", item: "event" },
      poll: pollEvents,
      readList: eventsOf,
      readItem: (item) => (isEvent(item) ? item : null),
      onList: onEvents,
      onItem: onEvent,
      onError,
      onMode,
    });
  }

  get mode() {
    return this._feed.mode;
  }

  start() {
    this._feed.start();
  }
}
