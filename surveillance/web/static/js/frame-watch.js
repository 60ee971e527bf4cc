// Whether a <video> element's picture is moving, read from the element itself: when it last
// presented a new frame and how many it presented lately. The server's health says whether
// packets arrive; only the element knows whether they became pictures (a B-frame stream over
// WebRTC arrives whole but shows its keyframes only; a frozen decoder shows nothing new).

const KEEP_MS = 10000; // presentation times remembered, for rates over shorter windows

export class FrameWatch {
  constructor(video) {
    this.video = video;
    this.startedAt = performance.now();
    this.firstFrameAt = null; // performance.now() of the first presented frame
    this.lastFrameAt = null; // performance.now() of the newest presented frame
    this.presented = 0; // frames presented since the watch started
    this._times = []; // [performance.now(), frames presented by then], oldest first
    this._forgotten = 0; // frames presented by the newest time no longer remembered
    this._closed = false;
    this._lastTotal = null;
    this._handle = null;
    if (video.requestVideoFrameCallback) this._next();
  }

  _next() {
    this._handle = this.video.requestVideoFrameCallback((now, metadata) => {
      if (this._closed) return;
      // presentedFrames counts frames the compositor showed, including any it showed
      // between two callbacks (the callback runs at most once per rendering).
      this._count(metadata.presentedFrames, now);
      this._next();
    });
  }

  _count(total, now) {
    if (total === this._lastTotal) return; // the same frame again
    // A new source (a new MediaSource after new parameters) starts the element's count anew.
    const fresh = this._lastTotal === null || total < this._lastTotal;
    this.presented += fresh ? 1 : total - this._lastTotal;
    this._lastTotal = total;
    if (this.firstFrameAt === null) this.firstFrameAt = now;
    this.lastFrameAt = now;
    this._times.push([now, this.presented]);
    while (this._times.length && now - this._times[0][0] > KEEP_MS) {
      this._forgotten = this._times.shift()[1];
    }
  }

  // Without requestVideoFrameCallback, the element's own count of frames is the signal;
  // call sample() now and then (the tile does, on its watch tick).
  sample() {
    if (this._closed || this.video.requestVideoFrameCallback) return;
    const quality = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    if (quality) this._count(quality.totalVideoFrames, performance.now());
  }

  // Milliseconds since the newest frame (or since the watch started, if none came yet).
  sinceLastFrameMs(now = performance.now()) {
    return now - (this.lastFrameAt === null ? this.startedAt : this.lastFrameAt);
  }

  // Frames presented per second over the last windowMs.
  fps(windowMs, now = performance.now()) {
    const since = now - windowMs;
    let before = this._forgotten;
    for (const [at, count] of this._times) {
      if (at >= since) break;
      before = count;
    }
    return ((this.presented - before) * 1000) / windowMs;
  }

  // Forget the past: judge the picture from now on (the element was not rendered meanwhile).
  rest(now = performance.now()) {
    this.startedAt = now;
    this.lastFrameAt = null;
    this._times.length = 0;
    this._forgotten = this.presented;
  }

  close() {
    this._closed = true;
    if (this._handle !== null && this.video.cancelVideoFrameCallback) {
      this.video.cancelVideoFrameCallback(this._handle);
    }
  }
}
