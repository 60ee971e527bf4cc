// A day timeline for one camera: recorded spans, gaps with their reasons (as a tooltip and
// in the row's own words on hover), the clock's cursor; a click anywhere asks to seek there.
// The page owns which part of the day is shown (all of it, or one hour: zoom) and passes it
// to render(); the bars' geometry is playback-time.js timelineBars.

import { clear, el } from "./dom.js";
import { clockText, fractionOf, timeAtFraction, timelineBars } from "./playback-time.js";

const HOUR_TICKS_DAY = 3; // hours between labelled ticks on a whole day
const MINUTE_TICKS_HOUR = 10; // minutes between labelled ticks on an hour

export class Timeline {
  // name: the camera's name (isolated by the stylesheet, as every name on the pages);
  // onSeek(epochS): a click on the bar.
  constructor(cameraId, name, { onSeek }) {
    this.camera = cameraId;
    this.spans = [];
    this.gaps = [];
    this.view = [0, 1];
    this.bar = el("div", { class: "timeline-bar", "data-camera": cameraId, title: "Click to watch from there" });
    this.cursor = el("div", { class: "timeline-cursor" });
    this.status = el("span", { class: "timeline-status" });
    this.root = el("div", { class: "timeline", "data-camera": cameraId },
      el("span", { class: "timeline-name", text: name }), this.bar, this.status);
    this.bar.addEventListener("click", (event) => {
      const box = this.bar.getBoundingClientRect();
      onSeek(timeAtFraction(this.view[0], this.view[1], (event.clientX - box.left) / box.width));
    });
  }

  // spans, gaps: epoch s (as RecordedPlayer.setFootage); state: the recorder's, if known.
  setFootage(spans, gaps, state) {
    this.spans = spans;
    this.gaps = gaps;
    this.status.textContent = state ? `recorder: ${state}` : "";
  }

  render(from, to, nowS) {
    this.view = [from, to];
    clear(this.bar);
    for (const tick of ticks(from, to)) {
      // Positions through the CSSOM: the pages' policy refuses style attributes.
      const mark = el("span", { class: "timeline-tick", text: clockText(tick).slice(11, 16) });
      mark.style.left = `${(100 * (tick - from)) / (to - from)}%`;
      this.bar.append(mark);
    }
    for (const bar of timelineBars(this.spans, this.gaps, from, to, nowS)) {
      const title = bar.kind === "gap"
        ? `No recording ${clockText(bar.start).slice(11, 19)}–${clockText(bar.end).slice(11, 19)}: ${bar.reason}`
        : `Recorded ${clockText(bar.start).slice(11, 19)}–${clockText(bar.end).slice(11, 19)}`;
      const piece = el("div", { class: `timeline-${bar.kind}`, title, "data-start": bar.start, "data-end": bar.end });
      piece.style.left = `${100 * bar.left}%`;
      piece.style.width = `max(1px, ${100 * bar.width}%)`;
      this.bar.append(piece);
    }
    this.bar.append(this.cursor);
  }

  moveCursor(atS) {
    const [from, to] = this.view;
    this.cursor.style.left = `${100 * fractionOf(from, to, atS)}%`;
    this.cursor.hidden = atS < from || atS > to;
  }
}

// Labelled moments along [from, to): every few hours on a day, every few minutes on an hour,
// counted from the view's start (a local midnight, a full hour) so the labels are round.
function ticks(from, to) {
  const stepS = to - from > 7200 ? HOUR_TICKS_DAY * 3600 : MINUTE_TICKS_HOUR * 60;
  const out = [];
  for (let t = from; t < to; t += stepS) out.push(t);
  return out;
}
