// One camera's recorded video in one <video> element, fed over MSE by play.mp4 windows.
//
// The page's clock (playback-time.js PlaybackClock) says which wall time should be shown; the
// player fetches the window holding it, appends each window at its own wall time
// (MediaTimeline), fetches the next before the buffer runs out, lets go of what is far
// behind, and seeks only when its picture strays from the clock. A moment without footage
// is shown as "no recording: <reason>", and the player rejoins where footage resumes.
// No decoding or re-encoding anywhere: the server sends the recorded fragments as they are.

import { withoutBidiControls } from "./dom.js";
import { FrameWatch } from "./frame-watch.js";
import {
  bufferedTarget, DEFAULT_FRAME_S, footageAt, isoOf, leadS, MediaTimeline, nextWindow, parseIso,
  SEEK_WINDOW_S,
} from "./playback-time.js";

const KEEP_BEHIND_S = 30; // buffered media kept behind the playhead (a step or two back)
const RETRY_MS = 2000; // a window that failed (not readable yet, network) is asked again after this
const FORBIDDEN = 403;
// The picture may stray this far from the clock while playing before it is put back (in clock
// seconds, scaled by the speed): a seek decodes again from a keyframe, so not at every tick.
const PLAY_TOLERANCE_S = 0.3;
const LOADED_SLACK_S = 0.5; // a moment this near a window's edge counts as its (keyframes, rounding)

// The state a player is in at the clock's time, as the page and its tests read it.
export const State = Object.freeze({
  LOADING: "loading", // footage exists there but is not buffered yet
  READY: "ready", // the picture at the clock's time is buffered
  GAP: "gap", // nothing recorded there
  ERROR: "error", // refused, or cannot be played in this browser
});

function unsupportedText(codec) {
  const h265 = /^(hvc1|hev1)/i.test(codec);
  return h265 ? "H.265 footage cannot be played in this browser (export it to watch it elsewhere)"
    : `This browser cannot play this footage (${codec})`;
}

async function errorDetail(response) {
  const body = await response.json().catch(() => null);
  const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
  return withoutBidiControls(detail);
}

export class RecordedPlayer {
  // onFootage(): a window was appended (the page follows its clock at once, not at its
  // next tick: a seek's first picture comes sooner).
  constructor(video, cameraId, { onFootage = () => {} } = {}) {
    this.video = video;
    this.camera = cameraId;
    this.onFootage = onFootage;
    this.spans = [];
    this.gaps = [];
    this.error = null; // why the player cannot go on (refused, unplayable): its tile says it
    this.codec = null;
    this.frameS = DEFAULT_FRAME_S;
    this.frames = new FrameWatch(video);
    this.picture = null; // {wall, presentedAt}: the wall time of the newest presented frame
    this.reason = null; // why nothing is shown at the clock's time (a gap's reason)
    this._timeline = null;
    this._mediaSource = null;
    this._buffer = null;
    this._objectUrl = null;
    this._loaded = null; // {start, end} wall s: the run of footage appended around the playhead
    this._fetching = null; // AbortController of the window on its way (.window: which)
    this._failure = null; // why the last window could not be had
    this._asked = 0; // the wall time the clock last asked for
    this._queue = Promise.resolve(); // the buffer operations under way (_serial)
    this._retryAt = 0;
    this._watchFrames();
  }

  // The recorded spans and gaps (epoch s) the timeline shows: where to fetch, and why not.
  setFootage(spans, gaps) {
    this.spans = spans;
    this.gaps = gaps;
  }

  // Follow the clock: fetch what is needed for `at` (wall s) and say what can be shown there.
  state(at, rate, nowS) {
    this._asked = at;
    if (this.error) return State.ERROR;
    const where = footageAt(this.spans, this.gaps, at);
    if (where.kind === "gap") {
      this.reason = where.reason;
      // Fetch ahead where footage resumes, so the camera rejoins at once.
      if (where.resumesAt !== null && where.resumesAt - at < leadS(rate)) {
        this._fetchFor(where.resumesAt, rate, nowS);
      }
      return State.GAP;
    }
    this._fetchFor(at, rate, nowS);
    if (this._target(at) !== null) {
      this.reason = null;
      return State.READY;
    }
    if (this._failure) {
      this.reason = this._failure; // said why; asked again after RETRY_MS
      return State.GAP;
    }
    if (!this._fetching && this._loadedHolds(at)) {
      // Fetched, yet not in the buffer: a hole shorter than the API merges spans over, or
      // the last frame's end. Nothing to wait for: the clock runs on past it.
      this.reason = "nothing recorded";
      return State.GAP;
    }
    this.reason = null;
    return State.LOADING;
  }

  // Show `at` (a READY player): playing at `rate`, or paused exactly on the frame there.
  sync(at, rate, playing) {
    const target = this._target(at);
    const drift = this.video.currentTime - target;
    if (playing) {
      if (Math.abs(drift) > PLAY_TOLERANCE_S * Math.max(1, rate)) this.video.currentTime = target;
      if (this.video.playbackRate !== rate) this.video.playbackRate = rate;
      if (this.video.paused) this.video.play().catch(() => {});
    } else {
      if (!this.video.paused) this.video.pause();
      if (Math.abs(drift) > 0.001) this.video.currentTime = target;
    }
  }

  // Nothing to show at the clock's time (a gap, or footage still loading).
  rest() {
    if (!this.video.paused) this.video.pause();
  }

  // The wall time the element is at now (between presented frames too): the clock follows it.
  get wallNow() {
    return this._timeline ? this._timeline.wallOf(this.video.currentTime) : null;
  }

  // ---- fetching and appending ---------------------------------------------------------------

  // The media time to show for wall time `at`, if buffered (a frame's slack either side: a
  // window's first frame may sit a millisecond after the span's start).
  _target(at) {
    if (!this._timeline || !this._buffer) return null;
    return bufferedTarget(this.video.buffered, this._timeline.mediaOf(at), this.frameS);
  }

  _loadedHolds(at) {
    return this._loaded !== null && this._loaded.start <= at && at < this._loaded.end;
  }

  _fetchFor(at, rate, nowS) {
    if (!this._timeline || !this._timeline.holds(at)) this._reset(at);
    // Before the footage appended (a seek back past its first keyframe) or well after it:
    // a fresh window from `at`; within it or just at its end: the next window.
    const near = this._loaded !== null && this._loaded.start <= at
      && at <= this._loaded.end + LOADED_SLACK_S;
    const loadedEnd = near ? this._loaded.end : null;
    if (this._fetching) {
      // The window on its way is kept if it is the next one after the picture shown, or,
      // when nothing is shown at `at` (a seek), if `at` is near its start: a long window
      // far ahead of its start takes longer to come than a short one from `at`.
      const w = this._fetching.window;
      const keep = this._target(at) === null
        ? w.start - LOADED_SLACK_S <= at && at < Math.min(w.end, w.start + SEEK_WINDOW_S)
        : at >= w.start - leadS(rate) - LOADED_SLACK_S && at < w.end;
      if (keep) return;
      this._fetching.abort();
      this._fetching = null;
    }
    if (performance.now() < this._retryAt) return;
    const window = nextWindow(this.spans, at, loadedEnd, rate, nowS);
    if (window) this._fetchWindow(window, loadedEnd === null);
  }

  async _fetchWindow(window, fresh) {
    const controller = new AbortController();
    controller.window = window;
    this._fetching = controller;
    const query = new URLSearchParams({ start: isoOf(window.start), end: isoOf(window.end) });
    const url = `/api/cameras/${encodeURIComponent(this.camera)}/recordings/play.mp4?${query}`;
    try {
      const response = await fetch(url, { credentials: "same-origin", signal: controller.signal });
      if (!response.ok) {
        const detail = await errorDetail(response);
        if (response.status === FORBIDDEN) this._fail(detail);
        // Not readable (yet): the last fragments of an open segment, a race with retention.
        this._failure = detail;
        this._retryAt = performance.now() + RETRY_MS;
        return;
      }
      const codec = response.headers.get("X-Codec") || "";
      const firstAt = parseIso(response.headers.get("X-First-At") || "");
      const endAt = parseIso(response.headers.get("X-End-At") || "");
      const data = await response.arrayBuffer();
      if (controller.signal.aborted) return;
      if (firstAt === null || endAt === null) {
        this._fail("The server's answer did not say which moment its video shows");
        return;
      }
      await this._serial(() => (controller.signal.aborted ? null : this._append(codec, firstAt, data, fresh)));
      if (this._fetching !== controller || this.error) return; // replaced by a seek meanwhile
      this._failure = null;
      // A window that ends short of what was asked stops where its footage stops; the next
      // one starts there (nextWindow skips to where footage resumes).
      const end = Math.max(endAt, window.start + 0.001);
      this._loaded = fresh || !this._loaded ? { start: Math.min(firstAt, window.start), end }
        : { start: this._loaded.start, end: Math.max(this._loaded.end, end) };
      this._fetching = null;
      this.onFootage();
    } catch (error) {
      if (error.name !== "AbortError" && this._fetching === controller) {
        this._failure = "the recording could not be loaded";
        this._retryAt = performance.now() + RETRY_MS;
      }
    } finally {
      if (this._fetching === controller) this._fetching = null;
    }
  }

  // One window's buffer operations at a time: a window still being appended when a seek
  // brings another would otherwise meet it on the SourceBuffer (InvalidStateError).
  _serial(work) {
    const run = this._queue.then(work, work);
    this._queue = run.catch(() => {});
    return run;
  }

  async _append(codec, firstAt, data, fresh) {
    const mime = `video/mp4; codecs="${codec}"`;
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this._fail(unsupportedText(codec));
      return;
    }
    const buffer = await this._sourceBuffer(mime);
    if (this.codec !== null && this.codec !== codec && buffer.changeType) buffer.changeType(mime);
    this.codec = codec;
    // A seek elsewhere: what is buffered belongs to another moment (remove() throws while
    // nothing is buffered: the MediaSource has no duration yet).
    if (fresh && this.video.buffered.length) await this._whenIdle(() => buffer.remove(0, Infinity));
    buffer.timestampOffset = this._timeline.offsetFor(firstAt);
    try {
      await this._whenIdle(() => buffer.appendBuffer(data));
    } catch (error) {
      // A full buffer: let go of everything behind the playhead and try once more.
      const asked = this._timeline.mediaOf(this._asked);
      await this._whenIdle(() => buffer.remove(0, Math.max(0.001, asked - 1)));
      await this._whenIdle(() => buffer.appendBuffer(data));
    }
    // Behind the moment the clock asks for, not the element's own time: after a seek the
    // element is still at the old moment until this very window lets it move.
    const behind = this._timeline.mediaOf(this._asked) - KEEP_BEHIND_S;
    if (this.video.buffered.length && this.video.buffered.start(0) < behind) {
      await this._whenIdle(() => buffer.remove(0, behind));
      if (this._loaded) this._loaded.start = Math.max(this._loaded.start, this._timeline.wallOf(behind));
    }
  }

  _whenIdle(operation) {
    const buffer = this._buffer;
    return new Promise((resolve, reject) => {
      const done = () => { buffer.removeEventListener("error", failed); resolve(); };
      const failed = () => { buffer.removeEventListener("updateend", done); reject(new Error("append failed")); };
      buffer.addEventListener("updateend", done, { once: true });
      buffer.addEventListener("error", failed, { once: true });
      try {
        operation();
      } catch (error) {
        buffer.removeEventListener("updateend", done);
        buffer.removeEventListener("error", failed);
        reject(error);
      }
    });
  }

  // A new MediaSource whose media time 0 is a little before `at`.
  _reset(at) {
    if (this._fetching) this._fetching.abort();
    this._fetching = null;
    this._timeline = MediaTimeline.around(at);
    this._loaded = null;
    this._buffer = null;
    this._mediaSource = null;
    if (this._objectUrl) URL.revokeObjectURL(this._objectUrl);
    this._objectUrl = null;
  }

  _sourceBuffer(mime) {
    if (this._buffer) return Promise.resolve(this._buffer);
    if (!this._mediaSource) {
      const mediaSource = new MediaSource();
      this._mediaSource = mediaSource;
      this._objectUrl = URL.createObjectURL(mediaSource);
      this.video.src = this._objectUrl;
      this._opened = new Promise((resolve) => mediaSource.addEventListener("sourceopen", resolve, { once: true }));
    }
    const mediaSource = this._mediaSource;
    return this._opened.then(() => {
      if (this._mediaSource !== mediaSource) throw new Error("replaced");
      if (!this._buffer) {
        this._buffer = mediaSource.addSourceBuffer(mime);
        this._buffer.mode = "segments";
      }
      return this._buffer;
    });
  }

  _fail(text) {
    this.error = text;
  }

  // The wall time of each presented frame (what the clock shows), and the frame interval.
  _watchFrames() {
    if (!this.video.requestVideoFrameCallback) return;
    let last = null;
    this._shortestStep = Infinity;
    const next = () => this.video.requestVideoFrameCallback((now, metadata) => {
      if (this._timeline) {
        // The frame interval: the shortest step between two frames presented while playing
        // (a busy compositor skips frames, never adds any).
        const step = last === null ? 0 : metadata.mediaTime - last;
        if (step > 0.005 && step < 0.2 && !this.video.paused) {
          this._shortestStep = Math.min(step, this._shortestStep);
          this.frameS = this._shortestStep;
        }
        last = metadata.mediaTime;
        this.picture = { wall: this._timeline.wallOf(metadata.mediaTime), presentedAt: now };
      }
      next();
    });
    next();
  }
}
