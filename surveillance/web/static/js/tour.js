// Tours: pages shown one after another, each for its dwell time.

export class TourPlayer {
  // showPage(grid) puts a page on the wall; showStatus(text, index) says where the tour is
  // (index null when no tour runs).
  constructor({ showPage, showStatus }) {
    this.showPage = showPage;
    this.showStatus = showStatus;
    this.tour = null; // {title, pages, index, paused, dwell, timer}
  }

  get running() {
    return this.tour !== null;
  }

  get paused() {
    return !!this.tour && this.tour.paused;
  }

  stop() {
    if (this.tour && this.tour.timer) clearTimeout(this.tour.timer);
    this.tour = null;
    this.showStatus("", null);
  }

  start(title, pages, dwell) {
    this.stop();
    this.tour = { title, pages, index: 0, paused: false, dwell, timer: null };
    this._show();
  }

  togglePause() {
    if (!this.tour) return;
    this.tour.paused = !this.tour.paused;
    this._show();
  }

  next() {
    const tour = this.tour;
    if (!tour) return;
    tour.index = (tour.index + 1) % tour.pages.length;
    this._show();
  }

  _show() {
    const tour = this.tour;
    this.showPage(tour.pages[tour.index]);
    this.showStatus(`${tour.title}: page ${tour.index + 1}/${tour.pages.length}${tour.paused ? " (paused)" : ""}`, tour.index);
    if (tour.timer) clearTimeout(tour.timer);
    tour.timer = null;
    if (tour.paused || tour.pages.length < 2) return;
    tour.timer = setTimeout(() => this.next(), tour.dwell * 1000);
  }
}
