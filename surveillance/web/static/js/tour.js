// Tours: pages shown one after another, each for its own dwell time.
//
// Every screen showing a tour shows the same page at the same moment: the page up is where
// the server's clock falls in the cycle of the pages' dwells counted from the tour's epoch
// (GET /api/tours/{name}/schedule), not where each browser's own timer has got to. A screen
// whose clock is off corrects by the offset it measured against the server's answer.

import { isolated } from "./dom.js";

const BOUNDARY_MARGIN_MS = 20; // wake just after a page's end, never just before it

// The page up at nowMs in a cycle of dwells (seconds) that began at epochMs, and the
// milliseconds it has left.
export function pageAt(dwellsS, epochMs, nowMs) {
  const cycleMs = dwellsS.reduce((sum, dwell) => sum + dwell * 1000, 0);
  let into = (((nowMs - epochMs) % cycleMs) + cycleMs) % cycleMs;
  for (let index = 0; index < dwellsS.length; index += 1) {
    const dwellMs = dwellsS[index] * 1000;
    if (into < dwellMs) return { index, leftMs: dwellMs - into };
    into -= dwellMs;
  }
  return { index: 0, leftMs: dwellsS[0] * 1000 }; // float rounding at the cycle's very end
}

// How far the server's clock is ahead of this browser's (ms), from the server's time in an
// answer and this browser's clock just before the request and just after the answer: the
// server read its clock about half way through (good to the round trip's asymmetry).
export function clockOffsetMs(serverTime, sentAtMs, receivedAtMs) {
  return Date.parse(serverTime) - (sentAtMs + receivedAtMs) / 2;
}

export class TourPlayer {
  // showPage(grid) puts a page on the wall; showStatus(text, index) says where the tour is
  // (index null when no tour runs).
  constructor({ showPage, showStatus }) {
    this.showPage = showPage;
    this.showStatus = showStatus;
    this.tour = null;
  }

  get paused() {
    return !!this.tour && this.tour.paused;
  }

  stop() {
    if (this.tour) clearTimeout(this.tour.timer);
    this.tour = null;
    this.showStatus("", null);
  }

  // pages: [{grid, dwell_s}]; epochMs: when the cycle began, on the server's clock;
  // offsetMs: how far the server's clock is ahead of this browser's.
  start({ title, pages, epochMs, offsetMs = 0 }) {
    this.stop();
    this.tour = { title, pages, epochMs, offsetMs, index: null, paused: false, timer: null };
    this._follow();
  }

  // Pause holds the page up; resume goes back to the page every other screen shows.
  togglePause() {
    const tour = this.tour;
    if (!tour) return;
    tour.paused = !tour.paused;
    clearTimeout(tour.timer);
    if (tour.paused) this._status();
    else this._follow();
  }

  // Held by the page rather than the operator (an alarm holds the wall): pause() answers
  // whether it paused a running tour, so that only a tour it paused is resumed after.
  pause() {
    if (!this.tour || this.tour.paused) return false;
    this.togglePause();
    return true;
  }

  resume() {
    if (this.tour && this.tour.paused) this.togglePause();
  }

  // The next page, held until resumed: an operator who steps through pages takes this
  // screen out of step with the others until they resume.
  next() {
    const tour = this.tour;
    if (!tour) return;
    clearTimeout(tour.timer);
    tour.paused = true;
    this._show((tour.index + 1) % tour.pages.length);
  }

  _follow() {
    const tour = this.tour;
    const dwells = tour.pages.map((page) => page.dwell_s);
    const { index, leftMs } = pageAt(dwells, tour.epochMs, Date.now() + tour.offsetMs);
    if (index !== tour.index) this._show(index);
    else this._status();
    tour.timer = setTimeout(() => this._follow(), leftMs + BOUNDARY_MARGIN_MS);
  }

  _show(index) {
    const tour = this.tour;
    tour.index = index;
    this.showPage(tour.pages[index].grid);
    this._status();
  }

  _status() {
    const tour = this.tour;
    const paused = tour.paused ? " (paused)" : "";
    this.showStatus(`${isolated(tour.title)}: page ${tour.index + 1}/${tour.pages.length}${paused}`, tour.index);
  }
}
