// One live video in one <video> element, on the path the server chose for this browser:
// WebRTC pass-through, fragmented MP4 over MSE, or WebRTC with server-side transcoding.

import { api } from "./api.js";
import { FrameWatch } from "./frame-watch.js";

const ICE_GATHER_TIMEOUT_MS = 2000;
// WebRTC that does not suit a source: frames keep arriving but the element shows far fewer
// (a B-frame source shows its keyframes only: 1 in 25 at 25 fps, one-second GOPs).
const STUCK_WINDOW_MS = 2000; // judged over this much time
const STUCK_GRACE_MS = 2000; // after the start: the first picture may take a second
const STUCK_SHOWN_RATIO = 0.25; // shown/arrived below this is "far below the camera's rate"
const STUCK_MIN_ARRIVING_FPS = 2; // a camera sending less than this is not judged
// fMP4 playback chases the newest frame received: one fragment per frame arrives as the
// camera sends it, so the page's own delay is how far playback trails the buffer's end.
// It starts at the cached GOP's keyframe (up to a GOP old), so it seeks to the live edge
// while the stream starts; after that it speeds up to close a gap rather than seek, since
// a seek makes the browser decode again from the keyframe, and a browser short of CPU that
// seeks whenever it falls behind falls further behind with every seek.
const MSE_TARGET_LAG_S = 0.15; // a few frames of slack against network jitter
const MSE_CATCH_UP_RATE = 1.25; // playback speed while more than twice the target behind
const MSE_START_S = 2; // the stream's start: the cached GOP arrives in a burst
const MSE_START_MAX_LAG_S = 0.5; // behind more than this at the start: seek
const MSE_MAX_LAG_S = 3.0; // behind more than this later (a stall, a hidden tab): seek ...
const MSE_SEEK_GAP_MS = 5000; // ... but not again sooner than this
const MSE_KEEP_S = 20; // seconds of buffer kept behind the playhead

export function browserCaps() {
  const rtc = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities
    ? RTCRtpReceiver.getCapabilities("video") : null;
  const webrtcH264 = !!rtc && rtc.codecs.some((c) => c.mimeType.toLowerCase() === "video/h264");
  const ms = window.MediaSource;
  const supports = (type) => !!ms && MediaSource.isTypeSupported(type);
  return {
    webrtc_h264: webrtcH264,
    mse_avc: supports('video/mp4; codecs="avc1.640028"'),
    mse_hevc: supports('video/mp4; codecs="hvc1.1.6.L93.B0"') ||
      supports('video/mp4; codecs="hev1.1.6.L93.B0"'),
  };
}

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class LivePlayer {
  // avoid: paths ("webrtc", "mse") this page saw fail for this camera stream; the plan
  // takes them as paths the browser cannot decode.
  // purpose: "grid" (one tile of many: the cheapest path per viewer) or "single" (one
  // picture watched closely: the lowest latency).
  constructor(video, camera, stream, caps, avoid = [], purpose = "grid") {
    this.video = video;
    this.camera = camera;
    this.stream = stream;
    this.caps = caps;
    this.purpose = purpose;
    this.avoid = avoid;
    this.path = null;
    this.reason = "";
    this.closed = false;
    this.viewer = null; // the server's id of this WebRTC viewer, to end it by
    this.ended = false; // its connection closed or failed: a new player is needed
    this.startedAt = performance.now();
    this.frames = new FrameWatch(video);
    this._arrived = []; // [performance.now(), WebRTC framesReceived], oldest first
    this._pc = null;
    this._ws = null;
    this._mediaSource = null;
    this._objectUrl = null;
  }

  async start() {
    const plan = await api.post("/api/live/plan", {
      camera: this.camera, stream: this.stream, caps: this.caps, avoid: this.avoid,
      purpose: this.purpose,
    });
    if (this.closed) return;
    this.path = plan.path;
    this.reason = plan.reason;
    this.plan = plan;
    if (plan.path === "mse") this._startMse();
    else await this._startWebRtc(plan.path === "transcode");
  }

  get firstFrameMs() {
    const first = this.frames.firstFrameAt;
    return first === null ? null : first - this.startedAt;
  }

  // Called about once a second: true when WebRTC pass-through frames keep arriving but the
  // element presents far fewer of them, so this source needs another path.
  async webrtcStuck() {
    if (this.path !== "webrtc" || !this._pc || this.closed) return false;
    const now = performance.now();
    const arrived = (await this._inboundStats()).framesReceived;
    this._arrived.push([now, arrived]);
    while (this._arrived.length > 1 && now - this._arrived[1][0] >= STUCK_WINDOW_MS) this._arrived.shift();
    const [since, arrivedThen] = this._arrived[0];
    const span = now - since;
    if (now - this.startedAt < STUCK_GRACE_MS + STUCK_WINDOW_MS || span < STUCK_WINDOW_MS) return false;
    const arrivingFps = ((arrived - arrivedThen) * 1000) / span;
    if (arrivingFps < STUCK_MIN_ARRIVING_FPS) return false; // the camera is quiet, not the path
    return this.frames.fps(span, now) < arrivingFps * STUCK_SHOWN_RATIO;
  }

  // The element stops presenting while it is not rendered (a hidden tile, a background
  // tab): what it did meanwhile says nothing about the path.
  rest() {
    this.frames.rest();
    this._arrived.length = 0;
  }

  async _startWebRtc(transcode) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this._pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.video.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.ended = true;
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    if (this.closed) return;
    const answer = await api.post("/api/live/webrtc", {
      camera: this.camera, stream: this.stream, sdp: pc.localDescription.sdp, transcode,
    });
    this.viewer = answer.viewer || null;
    if (this.closed) {
      this._leave();
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  // A camera another node holds is planned there: its plan carries that node's URL with a
  // single-use ticket (the page has no sign-in there). Otherwise this page's own node.
  _mseUrl() {
    if (this.plan && this.plan.mse_url) return this.plan.mse_url;
    return this._ownMseUrl();
  }

  // This page's own node: it serves the cameras it holds and relays the others from
  // their owner with this page's sign-in.
  _ownMseUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ camera: this.camera, stream: this.stream });
    return `${scheme}//${location.host}/api/live/mse?${query}`;
  }

  _startMse(url = this._mseUrl()) {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    let heard = false;
    ws.addEventListener("close", () => {
      if (!heard && !this.closed && url !== this._ownMseUrl()) {
        // The owner's socket failed before a word (this browser cannot reach that node by
        // its cluster URL: a load balancer, another name, a TLS page): ask this page's own
        // node, which relays it.
        this._startMse(this._ownMseUrl());
        return;
      }
      this.ended = true;
    });
    let buffer = null;
    const queue = [];
    const pump = () => {
      if (!buffer || buffer.updating || queue.length === 0) return;
      try {
        buffer.appendBuffer(queue.shift());
      } catch (error) {
        queue.length = 0; // quota or decode error: drop what is queued, keep going live
      }
    };
    let openedAt = performance.now();
    let lastSeek = -Infinity;
    const keepLive = () => {
      const ranges = this.video.buffered;
      if (!ranges.length || buffer.updating) return;
      const end = ranges.end(ranges.length - 1);
      const lag = end - this.video.currentTime;
      const now = performance.now();
      const starting = now - openedAt < MSE_START_S * 1000;
      if (starting ? lag > MSE_START_MAX_LAG_S
        : lag > MSE_MAX_LAG_S && now - lastSeek > MSE_SEEK_GAP_MS) {
        lastSeek = now;
        this.video.currentTime = end - MSE_TARGET_LAG_S;
      }
      this.video.playbackRate = lag > 2 * MSE_TARGET_LAG_S ? MSE_CATCH_UP_RATE : 1;
      const start = ranges.start(0);
      if (this.video.currentTime - start > MSE_KEEP_S * 1.5) {
        buffer.remove(start, this.video.currentTime - MSE_KEEP_S);
      }
    };
    ws.addEventListener("message", (event) => {
      heard = true;
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        if (message.type === "init") {
          queue.length = 0;
          openedAt = performance.now(); // a new connection starts at its cached GOP again
          this._openMediaSource(message.mime, (sourceBuffer) => {
            buffer = sourceBuffer;
            buffer.addEventListener("updateend", () => { keepLive(); pump(); });
            pump();
          });
        } else if (message.type === "error") {
          this.error = message.detail;
        }
        return;
      }
      queue.push(event.data);
      pump();
    });
  }

  _openMediaSource(mime, onReady) {
    if (this._objectUrl) URL.revokeObjectURL(this._objectUrl);
    const mediaSource = new MediaSource();
    this._mediaSource = mediaSource;
    this._objectUrl = URL.createObjectURL(mediaSource);
    this.video.srcObject = null;
    this.video.src = this._objectUrl;
    mediaSource.addEventListener("sourceopen", () => {
      const sourceBuffer = mediaSource.addSourceBuffer(mime);
      sourceBuffer.mode = "segments";
      onReady(sourceBuffer);
      this.video.play().catch(() => {});
    }, { once: true });
  }

  decodedFrames() {
    if (this.path === "mse") {
      const quality = this.video.getVideoPlaybackQuality();
      return quality.totalVideoFrames - quality.droppedVideoFrames;
    }
    return this._lastStats ? this._lastStats.framesDecoded : 0;
  }

  async _inboundStats() {
    if (this._pc) {
      const report = await this._pc.getStats();
      report.forEach((entry) => {
        if (entry.type === "inbound-rtp" && entry.kind === "video") {
          this._lastStats = {
            framesDecoded: entry.framesDecoded || 0,
            framesReceived: entry.framesReceived || 0,
            keyFramesDecoded: entry.keyFramesDecoded || 0,
          };
        }
      });
    }
    return this._lastStats || { framesDecoded: 0, framesReceived: 0, keyFramesDecoded: 0 };
  }

  async stats() {
    await this._inboundStats();
    const quality = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    return {
      path: this.path,
      avoid: this.avoid,
      viewer: this.viewer,
      framesDecoded: this.decodedFrames(),
      videoFrames: quality ? quality.totalVideoFrames : 0,
      framesPresented: this.frames.presented,
      sinceLastFrameMs: Math.round(this.frames.sinceLastFrameMs()),
      firstFrameMs: this.firstFrameMs,
      width: this.video.videoWidth,
      height: this.video.videoHeight,
    };
  }

  // Resolves once the server has let go of this viewer (its transcode slot is free again),
  // as far as the page can tell: a new player started after it never competes with it.
  close() {
    if (!this.closed) {
      this.closed = true;
      this.frames.close();
      if (this._pc) this._pc.close();
      if (this._ws) this._ws.close();
      if (this._objectUrl) URL.revokeObjectURL(this._objectUrl);
      this.video.removeAttribute("src");
      this.video.srcObject = null;
      this._left = this._leave();
    }
    return this._left;
  }

  // Closing the peer connection here tells the server only through DTLS, which a closing
  // page may never send; without it the server notices by ICE consent's time-out (~30 s),
  // holding the viewer's transcode slot all that time. So the page also says so. keepalive:
  // the request goes out even while the page is being closed.
  _leave() {
    const viewer = this.viewer;
    this.viewer = null;
    if (!viewer) return Promise.resolve();
    return api.del(`/api/live/webrtc/${encodeURIComponent(viewer)}`, { keepalive: true, signInOn401: false })
      .catch(() => {}); // ended already (404), or signed out: nothing held either way
  }
}
