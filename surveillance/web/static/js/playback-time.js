// The playback page's arithmetic, apart from the DOM and the network so that tests run it
// as it is: wall time <-> media time, where footage is and why it is not, when to fetch the
// next window of video, the timeline's geometry, and the clock every player follows.
// Times are wall-clock seconds since the epoch ("epoch s", UTC), as in the API's ISO times.

export const WINDOW_S = 30; // a window fetched while playing (the API's default length)
export const SEEK_WINDOW_S = 6; // the first window after a seek: short, so its picture comes soon
export const MAX_WINDOW_S = 120; // the API's longest play.mp4 window
export const TOUCH_S = 1.5; // spans this close are one run of footage (as the API merges them)
export const DEFAULT_FRAME_S = 0.04; // 25 fps until the picture says otherwise

// ---- times ---------------------------------------------------------------------------------

// An ISO 8601 time with its zone (as in ?at= and the API's answers) as epoch s; null when it
// is not one. A time without a zone is refused rather than read as local or as UTC.
export function parseIso(text) {
  if (typeof text !== "string" || !/(Z|[+-]\d\d:?\d\d)$/i.test(text.trim())) return null;
  const ms = Date.parse(text.trim());
  return Number.isFinite(ms) ? ms / 1000 : null;
}

export function isoOf(epochS) {
  return new Date(Math.round(epochS * 1000)).toISOString();
}

// What the clock shows: the local date and time to the millisecond, digits only (the wall's
// own clock is local too).
export function clockText(epochS) {
  const at = new Date(epochS * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const date = `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}`;
  const ms = String(at.getMilliseconds()).padStart(3, "0");
  return `${date} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${ms}`;
}

// What the "Go to" field shows: the clock's own text to the second. A native date-time field
// shows the browser's locale format instead (12-hour with AM/PM in en-US) beside the clock's
// 24 hours; one format for both.
export function gotoText(epochS) {
  return clockText(epochS).slice(0, 19);
}

// The "Go to" field's text as epoch s: the clock's format, local time, 24 h (seconds and
// milliseconds optional, a space or "T" between date and time), or an ISO time with its
// zone; null otherwise, and for a time the local calendar does not have (2026-02-30,
// 24:00, the hour skipped when clocks go forward) rather than a moment next to it.
export function parseGoto(text) {
  const trimmed = String(text).trim();
  const zoned = parseIso(trimmed);
  if (zoned !== null) return zoned;
  const parts = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?$/.exec(trimmed);
  if (!parts) return null;
  const [y, mo, d, h, mi, s = "0", ms = "0"] = parts.slice(1);
  const at = new Date(+y, +mo - 1, +d, +h, +mi, +s, +ms.padEnd(3, "0"));
  at.setFullYear(+y); // years below 100 are not 19xx
  const same = at.getFullYear() === +y && at.getMonth() === +mo - 1 && at.getDate() === +d
    && at.getHours() === +h && at.getMinutes() === +mi && at.getSeconds() === +s;
  return same ? at.getTime() / 1000 : null;
}

// The zone of the clock and the field at a moment, for their label: "UTC+01:00".
export function zoneText(epochS) {
  const east = -new Date(epochS * 1000).getTimezoneOffset(); // minutes east of UTC
  const two = (n) => String(n).padStart(2, "0");
  const sign = east < 0 ? "-" : "+";
  return `UTC${sign}${two(Math.floor(Math.abs(east) / 60))}:${two(Math.abs(east) % 60)}`;
}

// The local day around a moment, [midnight, next midnight), as epoch s.
export function dayAround(epochS) {
  const at = new Date(epochS * 1000);
  const start = new Date(at.getFullYear(), at.getMonth(), at.getDate()).getTime() / 1000;
  const end = new Date(at.getFullYear(), at.getMonth(), at.getDate() + 1).getTime() / 1000;
  return [start, end];
}

// The hour around a moment (zoomed timeline): [full hour, +1 h).
export function hourAround(epochS) {
  const start = Math.floor(epochS / 3600) * 3600;
  return [start, start + 3600];
}

// ---- where footage is ----------------------------------------------------------------------

// spans: [{start, end}] epoch s, by start; gaps: [{start, end|null, reason}].
// {kind: "footage", span} at `at`; otherwise {kind: "gap", reason, resumesAt}: the reason of
// the gap covering `at` (or a plain one), and where footage starts again (null: none after).
export function footageAt(spans, gaps, at) {
  const span = spans.find((s) => s.start <= at && at < s.end);
  if (span) return { kind: "footage", span };
  const next = spans.find((s) => s.start > at);
  const gap = gaps.find((g) => g.start <= at && (g.end === null || at < g.end));
  const reason = gap ? gap.reason : (next || spans.length ? "nothing recorded" : "nothing recorded on this day");
  return { kind: "gap", reason, resumesAt: next ? next.start : null };
}

// ---- windows -------------------------------------------------------------------------------

// How far ahead of the playhead (wall s) footage should be fetched: a window takes a moment
// to come, and at 8x a second of waiting is 8 s of footage.
export function leadS(rate) {
  return Math.max(10, 6 * rate);
}

// The window to fetch so that the picture at `at` can play on, or null when nothing is due.
// loadedEnd: where the footage appended so far ends (wall s; null: nothing around `at`).
// nowS: the present (a window never reaches into the future, which the API refuses).
export function nextWindow(spans, at, loadedEnd, rate, nowS) {
  let start;
  let length = WINDOW_S;
  if (loadedEnd === null) {
    start = at;
    length = SEEK_WINDOW_S;
  } else {
    if (loadedEnd - at > leadS(rate)) return null;
    start = loadedEnd;
  }
  // Past the end of a run of footage, the next window starts where footage resumes.
  const run = spans.find((s) => s.start <= start + TOUCH_S && start < s.end - 0.001);
  if (!run) {
    const next = spans.find((s) => s.start > start);
    if (!next || next.start - at > leadS(rate)) return null;
    start = next.start;
  }
  const end = Math.min(start + Math.min(length * Math.max(1, rate / 2), MAX_WINDOW_S), nowS);
  return end - start > 0.1 ? { start, end } : null;
}

// ---- wall time <-> media time --------------------------------------------------------------

// One MediaSource's time line: media time t shows the wall time origin + t. Every window is
// appended with SourceBuffer.timestampOffset = offsetFor(its X-First-At), so each lands at
// its own wall time, a gap between windows stays a gap, and a window that overlaps the one
// before (it starts at a keyframe at or before the asked start) replaces the same frames.
export class MediaTimeline {
  constructor(originS) {
    this.origin = originS;
  }

  // The origin a session starts with: some margin before the first moment asked for, so a
  // step or seek a little back needs no new MediaSource (media time is never negative).
  static around(atS) {
    return new MediaTimeline(Math.floor(atS) - 600);
  }

  offsetFor(firstAtS) {
    return firstAtS - this.origin;
  }

  mediaOf(wallS) {
    return wallS - this.origin;
  }

  wallOf(mediaS) {
    return this.origin + mediaS;
  }

  // Whether `wallS` can be shown on this time line (else a new MediaSource with a new origin).
  holds(wallS) {
    return wallS >= this.origin;
  }
}

// The media time to show for media time t when the element's buffered ranges hold it, else
// null. A range starting up to one frame after t counts (its first frame: a window's first
// frame may sit a millisecond after the span's start), as does t inside the last frame.
export function bufferedTarget(ranges, t, frameS = DEFAULT_FRAME_S) {
  for (let i = 0; i < ranges.length; i += 1) {
    const start = ranges.start(i);
    if (start - frameS <= t && t < ranges.end(i) - 0.001) return Math.max(t, start);
  }
  return null;
}

// The media time to seek to for the frame starting at wall time frameStart: its middle, so
// rounding never lands on the frame before.
export function frameMiddle(frameStartS, frameS) {
  return frameStartS + frameS / 2;
}

// ---- the shared clock ----------------------------------------------------------------------

// The one clock every player of the page follows: a wall time that runs at `rate` while
// playing. It is held while a player is waiting for its footage (so no camera falls behind
// the others) and set from the leading picture's own time while one plays (so it shows the
// time of the picture, not of the page's timer).
export class PlaybackClock {
  constructor(atS, nowMs = () => performance.now()) {
    this._nowMs = nowMs;
    this._anchorWall = atS;
    this._anchorMs = nowMs();
    this.rate = 1;
    this.playing = true;
    this.held = false;
  }

  now() {
    if (!this.playing || this.held) return this._anchorWall;
    return this._anchorWall + ((this._nowMs() - this._anchorMs) / 1000) * this.rate;
  }

  set(atS) {
    this._anchorWall = atS;
    this._anchorMs = this._nowMs();
  }

  setRate(rate) {
    this.set(this.now());
    this.rate = rate;
  }

  setPlaying(playing) {
    this.set(this.now());
    this.playing = playing;
  }

  hold(held) {
    if (held === this.held) return;
    this.set(this.now());
    this.held = held;
  }
}

// ---- the timeline's geometry ---------------------------------------------------------------

// Bars for a timeline showing [from, to): each span and gap clipped to it, as fractions of
// its width ({kind, left, width, start, end, reason}); gaps still going end at `nowS`.
export function timelineBars(spans, gaps, from, to, nowS) {
  const bars = [];
  const add = (kind, start, end, reason) => {
    const a = Math.max(start, from);
    const b = Math.min(end, to);
    if (b <= a) return;
    bars.push({ kind, left: (a - from) / (to - from), width: (b - a) / (to - from), start, end, reason });
  };
  for (const span of spans) add("span", span.start, span.end, null);
  for (const gap of gaps) add("gap", gap.start, gap.end === null ? nowS : gap.end, gap.reason);
  return bars;
}

export function fractionOf(from, to, atS) {
  return Math.min(1, Math.max(0, (atS - from) / (to - from)));
}

export function timeAtFraction(from, to, fraction) {
  return from + Math.min(1, Math.max(0, fraction)) * (to - from);
}
