// A list the server pushes by Server-Sent Events, with polling while the push is down: the
// transport under the wall's health feed (health-feed.js) and its alarms (alarms.js).
//
// The stream sends a snapshot event (the whole list) on connect, then one item event per
// change, and a keepalive comment every 15 s. While it is down (an error, a server without
// the route, a proxy that cuts it), the feed polls every POLL_MS, and goes back to the events
// the moment they flow again.

import { cleanStrings } from "./dom.js";

const POLL_MS = 2000;
// EventSource retries by itself after a dropped connection, but not after an error answer
// (404 before the route exists, 503, 401): then the feed opens a new one after this long.
const REOPEN_MS = 15000;

export class PushFeed {
  // url: the event stream; events: {snapshot, item} the names of its two events;
  // poll(): resolves to the whole list, as the snapshot would send it;
  // onList(list) the whole list (snapshot or poll); onItem(item) one that changed;
  // onError(error) a failed poll; onMode(mode) "events" or "polling".
  // readList(data) / readItem(data): the parsed message as the list / item, or null to drop it.
  constructor({ url, events, poll, readList, readItem, onList, onItem, onError, onMode }) {
    this.url = url;
    this.events = events;
    this.poll = poll;
    this.readList = readList;
    this.readItem = readItem;
    this.onList = onList;
    this.onItem = onItem;
    this.onError = onError || (() => {});
    this.onMode = onMode || (() => {});
    this.mode = null;
    this._source = null;
    this._polling = null;
    this._pollTimer = null;
    this._reopenTimer = null;
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
    const source = new EventSource(this.url);
    this._source = source;
    source.addEventListener(this.events.snapshot, (event) => {
      const list = this.readList(parse(event.data));
      if (list === null) return;
      this._stopPolling();
      this._setMode("events");
      this.onList(list);
    });
    source.addEventListener(this.events.item, (event) => {
      const item = this.readItem(parse(event.data));
      if (item !== null) this.onItem(item);
    });
    source.addEventListener("error", () => {
      if (this._source !== source) return;
      this._startPolling();
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        this._source = null;
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
        const list = await this.poll();
        if (this._polling === round) this.onList(list);
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
