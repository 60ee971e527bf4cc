"""Serve MP4 clips as RTSP cameras with GStreamer's RTSP server, looped with monotonic timestamps.

STANDALONE: run as ``/usr/bin/python3 gst_server.py --spec spec.json`` under Debian's system
Python (which has ``gi`` and GstRtspServer); it imports nothing from ``surveillance``.

Why not ``multifilesrc loop=true ! qtdemux ! ...``: every loop restarts the timestamps at 0
and the RTP timestamps stop advancing, which real cameras never do. Instead each clip is
demuxed once into memory as a list of access units, and a single GLib timer tops up every
mount's ``appsrc`` a little ahead of its pipeline clock, adding one loop length to PTS and DTS
on every pass. The RTSP server's sinks sync to the clock, so the stream plays in real time.

Shared mounts (``"shared": true`` in the spec) trade independence for cost: every shared
mount with the same clip, start offset and credentials is served by ONE media (one
pipeline, payloaded once) whose packets go to all their clients; see :class:`KeyframeGate`
for how each new client still starts at a keyframe. Unshared mounts get one pipeline per
client, as before.

Control channel: one JSON command per line on stdin, one JSON reply per line on stdout. The
first stdout line is ``{"ready": true, "port": N}``. EOF on stdin or SIGTERM ends the server.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtsp, GstRtspServer  # noqa: E402

# A sibling module (this script's directory is first on sys.path): the live PTZ picture.
from gst_ptz_mount import PtzPicture  # noqa: E402

FEED_INTERVAL_MS = 50  # how often the timer tops up every appsrc
FEED_AHEAD_NS = 250 * Gst.MSECOND  # media queued ahead of the clock; bounds how late a stall bites
RESYNC_LEAD_NS = 50 * Gst.MSECOND  # lead given to the first buffer after a start or a stall
MAX_QUEUED_BYTES = 2_000_000  # per mount; past this the server is behind and skips to a keyframe
PAYLOAD_TYPE = 96
KEEP_PREPARED_POLL_MS = 20  # a live PTZ media is looked at this often until its first PLAY
# One thread (and GLib main context) per client connection. With the default of one thread
# shared by every client, each TCP-interleaved RTP write waits its turn in that one loop and
# 200 clients got ~0.9 of their 2 Mbit/s while the CPU idled; unlimited threads send at rate.
CLIENT_THREADS = -1
# A shared media's new client is let in at a keyframe, GATE_LEAD_S before the keyframe is
# due at the RTSP server's sink: by then the frame before it, due a frame earlier, has long
# been sent to the clients already in, and the wait costs nothing, since the sink would
# wait for the keyframe's time anyway. A PLAY holds a shared media's frames back at most
# GATE_HOLD_MAX_S; a keyframe waits at most GATE_ADMIT_WAIT_S past that for clients'
# threads (a busy one is let in at the next keyframe instead; 40 ms, on a machine
# saturated by other work, left most new clients out at every keyframe).
GATE_LEAD_S = 0.005
GATE_HOLD_MAX_S = 0.5
GATE_ADMIT_WAIT_S = 0.2

# Flags, metadata and memory (shared, not copied): a buffer of its own to timestamp.
_COPY_SHALLOW = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META | Gst.BufferCopyFlags.MEMORY

# NAL unit types of parameter sets: H.264 SPS/PPS (7, 8); H.265 VPS/SPS/PPS (32, 33, 34).
_PARAM_NALS = {"h264": {7, 8}, "h265": {32, 33, 34}}


@dataclass
class AccessUnit:
    buffer: Gst.Buffer
    dts: int  # ns from the clip's first DTS
    pts: int  # ns from the clip's first DTS (>= dts; > dts when B-frames reorder)
    duration: int
    keyframe: bool


@dataclass
class Clip:
    caps: Gst.Caps
    units: list[AccessUnit]
    loop_ns: int  # one pass of the clip; added to PTS and DTS on every loop


@dataclass
class Source:
    """A looping clip and its clock: what the media of one mount, or of one group of shared
    mounts, are fed from."""

    clip: Clip
    # Where the clip stands at any moment, the same for every client, as a camera's
    # picture is: position = (monotonic now - epoch + offset) modulo the clip.
    epoch_ns: int
    offset_ns: int
    stalled: bool = False
    feeds: list[Feed] = field(default_factory=list)  # one per media being fed
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Mount:
    path: str
    source: Source | None  # None for a live PTZ picture
    codec: str
    params_in_sdp_only: bool
    factory: GstRtspServer.RTSPMediaFactory
    shared: bool  # its source and media serve other mounts too
    refused: bool = False
    picture: PtzPicture | None = None  # a PTZ camera's live picture, instead of a clip

    def media(self) -> list[GstRtspServer.RTSPMedia]:
        """The media serving the mount now."""
        if self.picture is not None:
            return self.picture.media()
        assert self.source is not None
        with self.source.lock:
            return [feed.media for feed in self.source.feeds]


@dataclass
class Feed:
    """Feeding state of one media: one client's pipeline, or a shared group's."""

    appsrc: GstApp.AppSrc
    media: GstRtspServer.RTSPMedia
    index: int = 0
    loops: int = 0
    base_ns: int | None = None  # running time that the clip's DTS 0 of loop 0 maps to
    resync: bool = True
    last_dts_ns: int = -1  # running time of the last buffer sent: timestamps never go back


class SharedMediaFactory(GstRtspServer.RTSPMediaFactory):
    """A factory mounted at several paths that makes one media for all of them.

    gst-rtsp-server keeps a shared factory's media under the key ``gen_key`` returns, by
    default the request's URL path (rtsp-media-factory.c, default_gen_key): with one key,
    every path this factory is mounted at gets the same media.
    """

    def do_gen_key(self, _url: GstRtsp.RTSPUrl) -> str:
        return "shared"


class KeyframeGate:
    """Lets each new client of a shared media in at a keyframe, as a camera starts a
    stream: keyframe first, parameter sets in front of it.

    The RTSP server adds a client's transports to the media's stream when it handles the
    PLAY, and from then on sends them whatever frame its sink hands over next, mid-GOP
    too (rtsp-stream.c, send_tcp_message). So right after the PLAY (the client's
    ``play-request`` signal) the new transports are taken out again, and a probe on that
    sink's pad, which runs in the streaming thread just before each frame is handed over,
    puts them back when a keyframe arrives. From ``pre-play-request`` until then the probe
    holds frames back, so none reaches the client while its transports are in.

    A transport is put back in its client's own thread (each client has one), where the
    server also tears the client down: put back after that, it would be sent to on a dead
    channel, which aborts the server (rtsp-client.c, get_data_seq). The keyframe waits for
    that at most GATE_ADMIT_WAIT_S; a client that misses it is let in at the next one.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # Clients in a PLAY -> monotonic deadline. Keyed by the wrapper itself, which keeps
        # it alive: PyGObject hands out the same wrapper for a client only while one lives.
        self._holds: dict[GstRtspServer.RTSPClient, float] = {}
        self._pending: list[_Admission] = []
        self._sink: Gst.Element | None = None
        self._last_pts = Gst.CLOCK_TIME_NONE  # of the frame before, as it reached the sink

    def hold(self, client: GstRtspServer.RTSPClient) -> None:
        """The client is about to PLAY (in its thread): frames stop short of the sink until
        its transports are out again.

        A frame already past the probe, waiting in the sink for its time, can still reach
        the client if that time comes within the PLAY: the client then starts with a frame
        or two before its keyframe (2 of 100 clients opening at once, none when they come
        one by one). Waiting for such a frame here would be exact, but PLAYs of one media
        are handled one at a time, and a hundred of them waiting up to a frame each kept
        clients without video for seconds."""
        with self._cond:
            self._holds[client] = time.monotonic() + GATE_HOLD_MAX_S

    def admit(
        self,
        client: GstRtspServer.RTSPClient,
        media: GstRtspServer.RTSPMedia,
        session_media: GstRtspServer.RTSPSessionMedia,
    ) -> None:
        """The client's PLAY is done (in its thread): its transports out until a keyframe."""
        context = GLib.main_current_source().get_context()
        with self._cond:
            self._holds.pop(client, None)
            self._cond.notify_all()
            if self._sink is None:
                # The media's first client, for which the sink was made: the server holds a
                # live media's first buffer, a keyframe (the feed starts at one), until the
                # first PLAY (rtsp-stream.c, rtp_pad_blocking), so that is what it gets first.
                self._sink = _rtp_sink(media)
                if self._sink is not None:
                    self._sink.get_static_pad("sink").add_probe(
                        Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._on_frame
                    )
                return
            # One by one: PyGObject frees the array get_transports() returns, and freeing a
            # GPtrArray someone else holds empties it (GLib, g_ptr_array_free), which
            # would leave the session no transports to take out at its teardown.
            streams = range(media.n_streams())
            transports = [t for i in streams if (t := session_media.get_transport(i)) is not None]
            taken = [t for t in transports if t.set_active(False)]
            if taken:
                self._pending.append(_Admission(client, context, taken))

    def forget(self, client: GstRtspServer.RTSPClient) -> None:
        """The client is going (in its thread): never put its transports back."""
        with self._cond:
            self._holds.pop(client, None)
            for admission in self._pending:
                if admission.client is client:
                    admission.cancelled = True
            self._pending = [a for a in self._pending if a.client is not client]
            self._cond.notify_all()

    def _on_frame(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        first = _first_buffer(info)
        keyframe = _is_keyframe(info)
        # This frame arrives as the one before is handed over (the queue in front of the
        # sink is a feed lead ahead), and is due one frame interval later.
        arrived = time.monotonic()
        interval_s = GATE_LEAD_S
        pts = first.pts if first is not None else Gst.CLOCK_TIME_NONE
        if Gst.CLOCK_TIME_NONE not in (pts, self._last_pts) and pts > self._last_pts:
            interval_s = min((pts - self._last_pts) / Gst.SECOND, GATE_HOLD_MAX_S)
        self._last_pts = pts
        with self._cond:
            while self._holds:
                now = time.monotonic()
                self._holds = {c: d for c, d in self._holds.items() if d > now}
                if self._holds:
                    self._cond.wait(min(self._holds.values()) - now)
            if not (keyframe and self._pending):
                return Gst.PadProbeReturn.OK
            admissions, self._pending = self._pending, []
            for admission in admissions:  # each waits in its client's thread for the go
                admission.schedule(self._cond)
        time.sleep(max(0.0, arrived + interval_s - GATE_LEAD_S - time.monotonic()))
        with self._cond:
            for admission in admissions:
                admission.go = True
            self._cond.notify_all()
            deadline = time.monotonic() + GATE_ADMIT_WAIT_S
            while not all(a.done or a.cancelled for a in admissions):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            for admission in admissions:
                if not (admission.done or admission.cancelled):  # its thread was busy
                    admission.cancelled = True
                    self._pending.append(_Admission(*admission.again()))
                    print("admission of a client put off to the next keyframe", file=sys.stderr)
        return Gst.PadProbeReturn.OK


@dataclass
class _Admission:
    """A client's transports waiting to be put back, and where (its thread's context)."""

    client: GstRtspServer.RTSPClient
    context: GLib.MainContext
    transports: list[GstRtspServer.RTSPStreamTransport]
    go: bool = False  # the keyframe is about to be handed over
    cancelled: bool = False
    done: bool = False

    def again(self) -> tuple[Any, ...]:
        return (self.client, self.context, self.transports)

    def schedule(self, cond: threading.Condition) -> None:
        """Put the transports back in the client's thread, once told to go."""

        def put_back(*_args: Any) -> bool:
            with cond:
                deadline = time.monotonic() + GATE_HOLD_MAX_S
                while not (self.go or self.cancelled) and time.monotonic() < deadline:
                    cond.wait(deadline - time.monotonic())
                if self.go and not self.cancelled:
                    # Only transports still in one of the client's sessions: a session can
                    # also end without a TEARDOWN or the connection closing (it times out),
                    # and a transport put back then would outlive its client in the stream.
                    held = _session_transports(self.client)
                    for transport in self.transports:
                        if transport in held:
                            transport.set_active(True)
                    self.done = True
                cond.notify_all()
            return False

        source = GLib.idle_source_new()
        source.set_priority(GLib.PRIORITY_HIGH)
        source.set_callback(put_back)
        source.attach(self.context)


def _peer_port(client: GstRtspServer.RTSPClient) -> int | None:
    """The client's TCP port on its own side of the connection; None once it is closing."""
    connection = client.get_connection()
    socket = connection.get_read_socket() if connection is not None else None
    if socket is None:
        return None
    try:
        port: int = socket.get_remote_address().get_port()
    except GLib.Error:  # the connection has just closed
        return None
    return port


def _session_transports(
    client: GstRtspServer.RTSPClient,
) -> list[GstRtspServer.RTSPStreamTransport]:
    """Every stream transport of the client's current sessions (one by one: see admit)."""
    found = []
    for session in client.session_filter(None):
        for session_media in session.filter(None):
            for index in range(session_media.get_media().n_streams()):
                transport = session_media.get_transport(index)
                if transport is not None:
                    found.append(transport)
    return found


def _first_buffer(info: Gst.PadProbeInfo) -> Gst.Buffer | None:
    if info.type & Gst.PadProbeType.BUFFER_LIST:
        return info.get_buffer_list().get(0)
    return info.get_buffer()


def _is_keyframe(info: Gst.PadProbeInfo) -> bool:
    """Whether a probed buffer (list) starts a keyframe: parameter sets, then the picture."""
    first = _first_buffer(info)
    return first is not None and not first.has_flags(Gst.BufferFlags.DELTA_UNIT)


def _rtp_sink(media: GstRtspServer.RTSPMedia) -> Gst.Element | None:
    """The appsink through which the media's RTP goes to TCP clients, None if none.

    rtsp-stream.c (create_sender_part) makes one appsink for RTP and one for RTCP, the
    RTCP one with async=false; both sit in the media's pipeline, the parent of its element.
    """
    pipeline = media.get_element().get_parent()
    found = []
    iterator = pipeline.iterate_recurse()
    while True:
        result, element = iterator.next()
        if result != Gst.IteratorResult.OK:
            break
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "appsink":
            found.append(element)
    rtp = [sink for sink in found if sink.get_property("async")]
    return rtp[0] if rtp else None


def _nal_length_size(codec: str, caps: Gst.Caps) -> int:
    value = caps.get_structure(0).get_value("codec_data")
    data = value.extract_dup(0, value.get_size()) if isinstance(value, Gst.Buffer) else b""
    if codec == "h264" and len(data) > 4:
        return (data[4] & 0x03) + 1
    if codec == "h265" and len(data) > 21:
        return (data[21] & 0x03) + 1
    return 4


def _strip_parameter_sets(data: bytes, codec: str, length_size: int) -> bytes:
    """Drop in-band parameter-set NAL units from a length-prefixed (avc/hvc1) access unit."""
    out = bytearray()
    pos = 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        nal = data[pos + length_size : pos + length_size + size]
        if nal:
            nal_type = nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F
            if nal_type not in _PARAM_NALS[codec]:
                out += data[pos : pos + length_size + size]
        pos += length_size + size
    return bytes(out)


def load_clip(location: str, codec: str, strip_params: bool) -> Clip:
    """Demux a file's video track into memory as access units in avc/hvc1 form.

    Length-prefixed (not byte-stream) output keeps the parameter sets in ``codec_data``,
    from which the payloader fills the SDP's sprop-parameter-sets and, unless told not to,
    repeats them in front of each keyframe.
    """
    parser, fmt = ("h264parse", "avc") if codec == "h264" else ("h265parse", "hvc1")
    media = "video/x-h264" if codec == "h264" else "video/x-h265"
    pipeline = Gst.parse_launch(
        f"filesrc name=src ! qtdemux name=demux demux.video_0 ! queue ! {parser} ! "
        f"{media},stream-format={fmt},alignment=au ! appsink name=sink sync=false"
    )
    pipeline.get_by_name("src").set_property("location", location)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    samples: list[tuple[Gst.Buffer, Gst.Caps]] = []
    try:
        while True:
            sample = sink.emit("pull-sample")
            if sample is None:
                break
            samples.append((sample.get_buffer(), sample.get_caps()))
        bus = pipeline.get_bus()
        error = bus.pop_filtered(Gst.MessageType.ERROR)
        if error is not None:
            err, debug = error.parse_error()
            raise RuntimeError(f"cannot load {location}: {err.message} ({debug})")
    finally:
        pipeline.set_state(Gst.State.NULL)
    if not samples:
        raise RuntimeError(f"no {codec} video in {location}")
    caps = samples[-1][1]
    length_size = _nal_length_size(codec, caps)
    first_dts = _dts(samples[0][0])
    units: list[AccessUnit] = []
    for buffer, _ in samples:
        dts, pts = _dts(buffer) - first_dts, buffer.pts - first_dts
        if strip_params:
            data = _strip_parameter_sets(
                buffer.extract_dup(0, buffer.get_size()), codec, length_size
            )
            new = Gst.Buffer.new_wrapped(data)
            new.set_flags(buffer.get_flags())
            buffer = new
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        units.append(AccessUnit(buffer, dts, pts, 0, keyframe))
    for this, following in itertools.pairwise(units):
        this.duration = following.dts - this.dts
    units[-1].duration = units[-2].duration if len(units) > 1 else 40 * Gst.MSECOND
    loop_ns = units[-1].dts + units[-1].duration
    return Clip(caps=caps, units=units, loop_ns=loop_ns)


def _dts(buffer: Gst.Buffer) -> int:
    return buffer.dts if buffer.dts != Gst.CLOCK_TIME_NONE else buffer.pts


def keyframe_at_or_after(clip: Clip, position_ns: int) -> tuple[int, int]:
    """(loop, index) of the first keyframe at or after ``position_ns`` into the looping
    clip, counted from loop 0."""
    loop, within = divmod(position_ns, clip.loop_ns) if clip.loop_ns else (0, 0)
    keyframes = [i for i, unit in enumerate(clip.units) if unit.keyframe] or [0]
    index = next((i for i in keyframes if clip.units[i].dts >= within), None)
    return (loop, index) if index is not None else (loop + 1, keyframes[0])


class Server:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.loop = GLib.MainLoop()
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(spec.get("host", "127.0.0.1"))
        self.server.set_service(str(spec.get("port", 8554)))
        self.mount_points = self.server.get_mount_points()
        self.server.get_thread_pool().set_max_threads(CLIENT_THREADS)
        self.mounts: dict[str, Mount] = {}
        self.gates: dict[GstRtspServer.RTSPMedia, KeyframeGate] = {}  # of shared media
        clips: dict[tuple[str, str, bool], Clip] = {}
        # Shared mounts with the same clip, start offset and credentials: one source, one
        # factory (so one media), mounted at each of their paths.
        groups: dict[tuple[Any, ...], tuple[Source, GstRtspServer.RTSPMediaFactory]] = {}
        auth = self._make_auth(spec["mounts"])
        self.pictures: dict[GstRtspServer.RTSPMedia, PtzPicture] = {}  # prepared PTZ media
        for entry in spec["mounts"]:
            if entry.get("ptz"):
                self._add_ptz_mount(entry, auth)
                continue
            codec = entry.get("codec", "h264")
            sdp_only = bool(entry.get("params_in_sdp_only", False))
            clip_key = (entry["file"], codec, sdp_only)
            if clip_key not in clips:
                clips[clip_key] = load_clip(entry["file"], codec, strip_params=sdp_only)
            offset_ns = int(float(entry.get("start_offset_s", 0.0)) * Gst.SECOND)
            shared = bool(entry.get("shared", False))
            group_key = (*clip_key, offset_ns, entry.get("username"), entry.get("password"))
            if shared and group_key in groups:
                source, factory = groups[group_key]
            else:
                source = Source(clips[clip_key], time.monotonic_ns(), offset_ns)
                factory = self._make_factory(codec, sdp_only, entry, auth, shared)
                factory.connect("media-configure", self._on_media_configure, source, shared)
                if shared:
                    groups[group_key] = (source, factory)
            path = entry["path"].strip("/")
            self.mounts[path] = Mount(path, source, codec, sdp_only, factory, shared)
            self.mount_points.add_factory("/" + path, factory)
        if auth is not None:
            self.server.set_auth(auth)
        self.server.connect("client-connected", self._on_client_connected)

    # -- setup ---------------------------------------------------------------------------

    def _add_ptz_mount(self, entry: dict[str, Any], auth: GstRtspServer.RTSPAuth | None) -> None:
        path = entry["path"].strip("/")
        picture = PtzPicture(path, entry["ptz"])
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(picture.launch())
        # Shared: one pipeline, encoding once for every client, as a camera does.
        factory.set_shared(True)
        self._add_roles(factory, entry, auth)
        factory.connect("media-configure", self._on_ptz_media_configure, picture)
        self.mounts[path] = Mount(path, None, "h264", False, factory, True, picture=picture)
        self.mount_points.add_factory("/" + path, factory)

    def _make_auth(self, entries: list[dict[str, Any]]) -> GstRtspServer.RTSPAuth | None:
        """One Basic-auth role per distinct (username, password); anonymous has its own role."""
        self.roles: dict[tuple[str, str], str] = {}
        for entry in entries:
            if entry.get("username"):
                creds = (entry["username"], entry.get("password") or "")
                self.roles.setdefault(creds, f"user{len(self.roles)}")
        if not self.roles:
            return None
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        for (username, password), role in self.roles.items():
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(username, password), token)
        anonymous = GstRtspServer.RTSPToken()
        anonymous.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
        auth.set_default_token(anonymous)
        return auth

    def _make_factory(
        self,
        codec: str,
        sdp_only: bool,
        entry: dict[str, Any],
        auth: GstRtspServer.RTSPAuth | None,
        shared: bool,
    ) -> GstRtspServer.RTSPMediaFactory:
        payloader = "rtph264pay" if codec == "h264" else "rtph265pay"
        # config-interval=-1: parameter sets in front of every keyframe, as most cameras do;
        # 0: only in the SDP (from codec_data), as some cameras do.
        interval = 0 if sdp_only else -1
        factory = SharedMediaFactory() if shared else GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            # The appsrc queue is unbounded here because _feed bounds it: by the clock
            # (FEED_AHEAD_NS) and by MAX_QUEUED_BYTES.
            "( appsrc name=src is-live=true format=time do-timestamp=false "
            "max-bytes=0 max-buffers=0 max-time=0 block=false "
            f"! {payloader} name=pay0 pt={PAYLOAD_TYPE} config-interval={interval} )"
        )
        # Unshared: one pipeline per client. A shared pipeline is cheaper, but a client that
        # arrives while the last one's shared pipeline is being torn down gets that pipeline
        # back, prepared again without "media-configure", and then never receives video:
        # under a test suite's connect/disconnect churn that left mounts dead for the
        # session. So a shared media, once prepared, is never torn down (_keep_prepared).
        factory.set_shared(shared)
        self._add_roles(factory, entry, auth)
        return factory

    def _add_roles(
        self,
        factory: GstRtspServer.RTSPMediaFactory,
        entry: dict[str, Any],
        auth: GstRtspServer.RTSPAuth | None,
    ) -> None:
        if auth is not None:
            everyone = ["anonymous", *self.roles.values()]
            constructors = everyone
            if entry.get("username"):
                constructors = [self.roles[(entry["username"], entry.get("password") or "")]]
            # Everyone may "access" the mount, only its own user may "construct" media from it:
            # rtsp-auth answers a denied access with 404 but a denied construct with 401 and a
            # WWW-Authenticate challenge, which is what a camera does and what clients expect.
            for role in everyone:
                construct = "true" if role in constructors else "false"
                factory.add_role_from_structure(
                    Gst.Structure.new_from_string(
                        f"{role}, media.factory.access=(boolean)true, "
                        f"media.factory.construct=(boolean){construct}"
                    )
                )

    # -- media lifecycle (called from the RTSP server's client threads) ------------------

    def _on_media_configure(
        self,
        _factory: GstRtspServer.RTSPMediaFactory,
        media: GstRtspServer.RTSPMedia,
        source: Source,
        shared: bool,
    ) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", source.clip.caps)
        media.connect("unprepared", self._on_media_unprepared, source)
        if shared:
            self.gates[media] = KeyframeGate()
            media.connect("prepared", self._on_shared_media_prepared)
        with source.lock:
            source.feeds.append(Feed(appsrc, media))

    def _on_ptz_media_configure(
        self,
        _factory: GstRtspServer.RTSPMediaFactory,
        media: GstRtspServer.RTSPMedia,
        picture: PtzPicture,
    ) -> None:
        picture.configure(media)
        # Like a shared clip's media, never torn down (_keep_ptz_prepared): a client
        # connecting while the last one's media is being unprepared is refused (503)
        # otherwise, which a client reconnecting at once (a test, an ingest retry) runs
        # into. The picture drops its frames while nobody watches. Each new client starts
        # at a keyframe (the gate), which it asks the encoder for (_on_play).
        self.pictures[media] = picture
        self.gates[media] = KeyframeGate()
        media.connect("prepared", self._on_ptz_media_prepared)
        media.connect("unprepared", self._on_ptz_media_unprepared)

    def _on_ptz_media_prepared(self, media: GstRtspServer.RTSPMedia) -> None:
        GLib.timeout_add(KEEP_PREPARED_POLL_MS, self._keep_ptz_prepared, media)

    @staticmethod
    def _keep_ptz_prepared(media: GstRtspServer.RTSPMedia) -> bool:
        # As _keep_prepared, but a live pipeline's media is SUSPENDED from its preroll
        # until its first PLAY (and cannot take another prepare then): wait for PREPARED.
        status = media.get_status()
        if status == GstRtspServer.RTSPMediaStatus.PREPARED:
            media.prepare(None)
            return False
        return status in (
            GstRtspServer.RTSPMediaStatus.PREPARING,
            GstRtspServer.RTSPMediaStatus.SUSPENDED,
        )

    def _on_ptz_media_unprepared(self, media: GstRtspServer.RTSPMedia) -> None:
        self.pictures.pop(media, None)
        self.gates.pop(media, None)

    def _on_media_unprepared(self, media: GstRtspServer.RTSPMedia, source: Source) -> None:
        self.gates.pop(media, None)
        with source.lock:
            source.feeds = [f for f in source.feeds if f.media is not media]

    def _on_shared_media_prepared(self, media: GstRtspServer.RTSPMedia) -> None:
        GLib.idle_add(self._keep_prepared, media)

    @staticmethod
    def _keep_prepared(media: GstRtspServer.RTSPMedia) -> bool:
        # One more prepare than clients: the media is unprepared when its count drops to 0
        # (rtsp-media.c, gst_rtsp_media_unprepare), so now it never is, and its last
        # client leaving keeps it playing (its frames then go nowhere) for the next one.
        if media.get_status() == GstRtspServer.RTSPMediaStatus.PREPARED:
            media.prepare(None)
        return False

    def _on_client_connected(
        self, _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        client.connect("pre-play-request", self._on_pre_play)
        client.connect("play-request", self._on_play)
        # Before the server takes the client's transports out (TEARDOWN, or the connection
        # closing): a transport put back after that would be sent to on a dead channel,
        # which aborts the server (rtsp-client.c, get_data_seq).
        client.connect("pre-teardown-request", self._on_pre_teardown)
        client.connect("closed", self._on_client_closed)

    def _on_pre_play(
        self, client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext
    ) -> GstRtsp.RTSPStatusCode:
        gate = self.gates.get(context.media)
        if gate is not None:
            gate.hold(client)
        return GstRtsp.RTSPStatusCode.OK

    def _on_play(
        self, client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext
    ) -> None:
        gate = self.gates.get(context.media)
        if gate is not None:
            gate.admit(client, context.media, context.sessmedia)
        picture = self.pictures.get(context.media)
        if picture is not None:
            picture.watch(context.media, client)

    def _on_pre_teardown(
        self, client: GstRtspServer.RTSPClient, _context: GstRtspServer.RTSPContext
    ) -> GstRtsp.RTSPStatusCode:
        self._on_client_closed(client)
        return GstRtsp.RTSPStatusCode.OK

    def _on_client_closed(self, client: GstRtspServer.RTSPClient) -> None:
        for gate in list(self.gates.values()):
            gate.forget(client)
        for mount in self.mounts.values():
            if mount.picture is not None:
                mount.picture.unwatch(client)

    # -- feeding --------------------------------------------------------------------------

    def feed_all(self) -> bool:
        sources = {id(m.source): m.source for m in self.mounts.values() if m.source is not None}
        for source in sources.values():
            with source.lock:
                for feed in source.feeds:
                    self._feed(source, feed)
        return True

    def _feed(self, source: Source, feed: Feed) -> None:
        appsrc = feed.appsrc
        clock = appsrc.get_clock()
        # A live source has no running time until PLAYING, and having a clock is no sign of
        # it: going to PLAYING (in a client's thread), the pipeline gives every element the
        # clock first, and each element its base time only just before its own state change
        # (gstpipeline.c; gstbin.c, gst_bin_element_set_state). Read in between, the base
        # time is still 0, "now" is the clock's absolute time, and the first keyframe was
        # timed hours ahead: never pushed, it left the media unprepared and the client's
        # DESCRIBE waiting until the client gave up (FFmpeg: "Invalid data found"); or,
        # pushed, it waited in the sink for hours.
        _, state, _ = appsrc.get_state(0)
        if clock is None or state != Gst.State.PLAYING:
            return
        now = clock.get_time() - appsrc.get_base_time()
        if source.stalled or appsrc.get_current_level_bytes() > MAX_QUEUED_BYTES:
            # Stalled, or the server cannot send as fast as the clock (overload): send nothing
            # now and restart at a keyframe later, as an encoder drops frames rather than
            # buffering without bound.
            feed.resync = True
            return
        clip = source.clip
        units = clip.units
        if feed.resync:
            # Start (or restart after a stall) at the keyframe the source's clock has just
            # reached, as a camera does: every client sees the same picture at the same
            # moment, and after a gap the picture has moved on, it never replays.
            position = time.monotonic_ns() - source.epoch_ns + source.offset_ns
            feed.loops, feed.index = keyframe_at_or_after(clip, position + RESYNC_LEAD_NS)
            feed.base_ns = now - position
            first = feed.base_ns + feed.loops * clip.loop_ns + units[feed.index].dts
            if first <= feed.last_dts_ns:  # a resync without a gap (overload): keep order
                feed.base_ns += feed.last_dts_ns - first + units[feed.index].duration
            feed.resync = False
        base = feed.base_ns
        assert base is not None
        while True:
            unit = units[feed.index]
            offset = base + feed.loops * clip.loop_ns
            if offset + unit.dts > now + FEED_AHEAD_NS:
                break
            # A new buffer sharing the unit's memory. Not Buffer.copy(): PyGObject copies a
            # GstBuffer as a boxed type, which is a ref (gstbuffer.h, GST_DEFINE_MINI_OBJECT_TYPE),
            # so the timestamps below were written into the clip's own buffer, shared by every
            # mount of the clip and by every queue still holding it: a media whose first
            # frames waited in its appsrc (blocked from DESCRIBE until PLAY, e.g. a node
            # opening many cameras after a failover) got them re-timed by another mount's
            # clock, seconds ahead, and its sink waited for them while the queue grew.
            buffer = unit.buffer.copy_region(_COPY_SHALLOW, 0, unit.buffer.get_size())
            buffer.dts = offset + unit.dts
            buffer.pts = offset + unit.pts
            buffer.duration = unit.duration
            appsrc.emit("push-buffer", buffer)
            feed.last_dts_ns = buffer.dts
            feed.index += 1
            if feed.index == len(units):
                feed.index = 0
                feed.loops += 1

    # -- control --------------------------------------------------------------------------

    def _clients_by_path(self) -> dict[str, list[GstRtspServer.RTSPClient]]:
        """The clients playing (or set up on) each mount, in one pass over every session."""
        mounts_of: dict[int, list[Mount]] = {}  # by the hash of a media being fed
        for mount in self.mounts.values():
            for media in mount.media():
                mounts_of.setdefault(hash(media), []).append(mount)
        found: dict[str, list[GstRtspServer.RTSPClient]] = {p: [] for p in self.mounts}
        for client in self.server.client_filter(None):
            paths: set[str] = set()
            for session in client.session_filter(None):
                for session_media in session.filter(None):
                    for mount in mounts_of.get(hash(session_media.get_media()), []):
                        # A shared media serves several paths: the session's own path tells
                        # which mount the client asked for.
                        if not mount.shared or _serves(session_media, mount.path):
                            paths.add(mount.path)
            for path in paths:
                found[path].append(client)
        return found

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command.get("cmd")
        if cmd == "status":
            clients = self._clients_by_path()
            return {
                "ok": True,
                "mounts": {
                    path: {
                        "clients": len(clients[path]),
                        # Each client's own TCP port: a test maps it to the process that
                        # holds the connection (which node ingests which camera).
                        "peer_ports": sorted(filter(None, map(_peer_port, clients[path]))),
                        "refused": mount.refused,
                        "shared": mount.shared,
                        **_feeding_status(mount),
                    }
                    for path, mount in self.mounts.items()
                },
            }
        if cmd == "quit":
            self.loop.quit()
            return {"ok": True}
        if cmd == "fault":
            mount = self.mounts.get(str(command.get("path", "")).strip("/"))
            if mount is None:
                return {"ok": False, "error": f"no mount {command.get('path')!r}"}
            return self._fault(mount, command.get("kind"))
        if cmd == "view":
            mount = self.mounts.get(str(command.get("path", "")).strip("/"))
            if mount is None or mount.picture is None:
                return {"ok": False, "error": f"no PTZ mount {command.get('path')!r}"}
            mount.picture.set_view(command.get("crop"))
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def _fault(self, mount: Mount, kind: Any) -> dict[str, Any]:
        if kind == "refuse":
            if not mount.refused:
                # Without the mount point, DESCRIBE and SETUP get 404 Not Found.
                self.mount_points.remove_factory("/" + mount.path)
                mount.refused = True
            closed = self._close_clients(mount)
        elif kind == "drop":
            closed = self._close_clients(mount)
        elif kind == "stall" and mount.source is None:
            return {
                "ok": False,
                "error": f"mount {mount.path!r} is a live PTZ picture: it has no stall",
            }
        elif kind == "stall":
            sharing = [m.path for m in self.mounts.values() if m.source is mount.source]
            if len(sharing) > 1:
                # Stalling a shared source would stall every camera sharing it.
                return {
                    "ok": False,
                    "error": f"mount {mount.path!r} shares its media with {len(sharing) - 1} "
                    "other mounts, which would stall too: serve it unshared to stall it",
                }
            with mount.source.lock:
                mount.source.stalled = True
            closed = 0
        elif kind == "resume":
            if mount.refused:
                self.mount_points.add_factory("/" + mount.path, mount.factory)
                mount.refused = False
            if mount.source is not None:
                with mount.source.lock:
                    mount.source.stalled = False
            closed = 0
        else:
            return {"ok": False, "error": f"unknown fault kind {kind!r}"}
        return {"ok": True, "closed": closed}

    def _close_clients(self, mount: Mount) -> int:
        clients = self._clients_by_path()[mount.path]
        for client in clients:
            client.close()
        return len(clients)

    # -- main loop ------------------------------------------------------------------------

    def _on_stdin(self, source: int, condition: GLib.IOCondition) -> bool:
        data = os.read(source, 65536) if condition & GLib.IOCondition.IN else b""
        if not data:  # EOF: the parent is gone, never outlive it
            self.loop.quit()
            return False
        self._stdin_buffer += data
        while b"\n" in self._stdin_buffer:
            line, self._stdin_buffer = self._stdin_buffer.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                reply = self.handle(json.loads(line))
            except Exception as exc:  # a bad command must not kill every camera
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _reply(reply)
        return True

    def run(self) -> None:
        self._stdin_buffer = b""
        if self.server.attach(None) == 0:
            raise RuntimeError("cannot listen: address in use or not permitted")
        GLib.timeout_add(FEED_INTERVAL_MS, self.feed_all)
        GLib.io_add_watch(
            sys.stdin.fileno(),
            GLib.PRIORITY_DEFAULT,
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            self._on_stdin,
        )
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self._on_sigterm)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self._on_sigterm)
        _reply({"ready": True, "port": self.server.get_bound_port()})
        self.loop.run()

    def _on_sigterm(self) -> bool:
        self.loop.quit()
        return False


def _feeding_status(mount: Mount) -> dict[str, Any]:
    """Whether the mount is stalled, playing, and what waits in its appsrc queues."""
    if mount.picture is not None:
        return {
            "stalled": False,
            "playing": mount.picture.watching() > 0,  # encoding now
            "queued_bytes": 0,
            "crop": mount.picture.borders(),
            "pipelines": len(mount.picture.media()),  # 1 however many clients: shared
        }
    source = mount.source
    assert source is not None
    with source.lock:
        return {
            "stalled": source.stalled,
            "playing": bool(source.feeds),
            # Bytes waiting in the appsrc: grows if the server cannot keep up.
            "queued_bytes": sum(f.appsrc.get_current_level_bytes() for f in source.feeds),
        }


def _serves(session_media: GstRtspServer.RTSPSessionMedia, path: str) -> bool:
    """Whether a session's media was set up through exactly this mount path."""
    ok, matched = session_media.matches("/" + path)
    return bool(ok) and matched == len(path) + 1


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON file describing host, port, mounts")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    Gst.init(None)
    try:
        server = Server(spec)
        server.run()
    except Exception as exc:
        _reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
