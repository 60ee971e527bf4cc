"""GbPlayer: a GB/T 28181 channel's live video on demand, for the ingest's "gb28181" source.

The ingest worker of a channel camera (media/gb_worker.py) calls :meth:`GbPlayer.open` from
its own thread when a viewer, snapshot or recorder wants the camera. The player takes an RTP
port (services/gb_ports.py) and an SSRC, sends the platform an INVITE with our SDP offer
(GB/T 28181-2016 s.9.2.2 real-time play, Annex F SDP) to the address it registered from,
ACKs the 200 and checks its SDP answer, and hands the worker a ``GbFeed``: the RTP receiver,
the SSRC to keep, and a ``close`` that sends BYE and frees the port. The SIP work runs on
the event loop (the transport and its transactions live there); the worker thread waits for
it with a bound, and never waits for a BYE.

A BYE from the platform ends the feed: the receiver reports it closed, the worker reconnects
with a new INVITE while someone still wants the camera. At node stop every session still
open is ended with a BYE. Each session is a row in ``gb_sessions`` while it lasts, so
``surveillance gb status`` shows what plays even from another process, and a node that was
killed ends at its next start what it left (the row keeps what a BYE needs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import itertools
import logging
import secrets
import socket
import threading
import time

from surveillance.config.models import (
    Gb28181Config,
    GbPlatformConfig,
    GbTransport,
    RecordingMode,
)
from surveillance.gb28181 import ids
from surveillance.gb28181.records import GbSessionRecord
from surveillance.gb28181.sdp import SdpAnswer, parse_answer, play_offer
from surveillance.gb28181.sip_message import SipRequest, new_request
from surveillance.gb28181.store import GbStore
from surveillance.gb28181.transactions import SipTimeout
from surveillance.gb28181.transport import Peer
from surveillance.media.gb_worker import GbFeed
from surveillance.media.health import ErrorKind
from surveillance.media.rtp import (
    RtpReceiver,
    tcp_active_receiver,
    tcp_passive_receiver,
    udp_receiver,
)
from surveillance.media.source import StreamOpenError
from surveillance.services.gb_bye import ByeSender
from surveillance.services.gb_dialog import Dialog, EndableReceiver, PlaySession
from surveillance.services.gb_ports import NoFreePort, RtpPortPool, RtpPortUse, too_small_for
from surveillance.services.gb_signalling import Signalling

log = logging.getLogger(__name__)

# The worker thread waits for the INVITE's coroutine this much longer than its own time-out
# (the loop may be busy), then gives up on it; a 200 that still comes is ACKed and BYE'd.
LOOP_MARGIN_S = 3.0
# RFC 4145 s.4.1 (and RFC 4572): the active side of a TCP media connection offers port 9
# (discard): it connects out, it listens on nothing.
ACTIVE_OFFER_PORT = 9
SSRC_MAX = 0xFFFFFFFF  # RFC 3550 s.5.1: 32 bits
UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::")


class GbPlayer:
    """Implements media.gb_worker.GbOpener. ``open`` runs in worker threads, ``on_bye``,
    ``start`` and ``stop`` on the event loop; the sessions dict is shared under a lock."""

    def __init__(self, config: Gb28181Config, signalling: Signalling, store: GbStore) -> None:
        self._config = config
        self._signalling = signalling
        self._store = store
        self._platforms: dict[str, GbPlatformConfig] = {p.id: p for p in config.platforms}
        self._ports = RtpPortPool(config.listen, config.rtp_port_min, config.rtp_port_max)
        # A random first serial: a restarted node does not hand out the SSRCs of the last
        # run, whose streams a platform may still be sending (GB/T 28181-2016 Annex F lets
        # the 4-digit tail be any serial).
        self._serials = itertools.count(secrets.randbelow(ids.SSRC_SERIALS))
        self._sessions: dict[str, PlaySession] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._byes = ByeSender(signalling)
        self._ssrc_logged: set[str] = set()  # cameras whose differing answer SSRC was logged

    # -- life cycle (loop) ----------------------------------------------------------------
    async def start(self) -> None:
        """Ends the sessions a node that did not stop (killed, crashed) left: the platforms
        still stream them, into ports this run hands out again."""
        self._loop = asyncio.get_running_loop()
        self._byes.start(self._loop)
        for record in await asyncio.to_thread(self._store.clear_sessions):
            self._byes.end_left(record)
        await asyncio.to_thread(self._warn_if_ports_too_few)

    async def stop(self) -> None:
        """BYE every session still open (the ingest stopped first: most are closed already,
        their BYEs in flight), wait for the BYEs, bounded, and forget the rows."""
        await asyncio.sleep(0)  # BYEs the stopped workers handed over start now
        with self._lock:
            left = list(self._sessions.values())
        for session in left:
            session.end_from_node()  # a worker still reading it sees its feed closed
            bye = self._end(session)
            if bye is not None:
                self._byes.start_bye(*bye)
        await self._byes.stop()
        self._loop = None
        await asyncio.to_thread(self._store.clear_sessions)

    # -- status ---------------------------------------------------------------------------
    def streams(self, platform_id: str | None = None) -> list[GbSessionRecord]:
        """The streams playing now (of one platform)."""
        with self._lock:
            records = [s.record for s in self._sessions.values()]
        return [r for r in records if platform_id is None or r.platform_id == platform_id]

    @property
    def ports_in_use(self) -> int:
        return self._ports.in_use

    def port_use(self) -> RtpPortUse:
        """The RTP port range's use: what ``gb status`` and /api/gb/platforms show."""
        return self._ports.use()

    def _warn_if_ports_too_few(self) -> None:
        """Platforms recorded continuously (their own recording policy) play every channel
        the platform reports ON all the time: more than the range holds is said at start,
        not found out when an operator's live view is refused."""
        continuous = [
            p.id for p in self._config.platforms
            if p.recording is not None and p.recording.mode is RecordingMode.CONTINUOUS
        ]  # fmt: skip
        if not continuous:
            return
        counts = self._store.channel_counts()
        streams = sum(counts[p].online for p in continuous if p in counts)
        use = self._ports.use()
        warning = too_small_for(streams, use.total, "platforms " + ", ".join(continuous),
                                use.range)  # fmt: skip
        if warning is not None:
            log.warning("gb28181: %s", warning)

    # -- the opener (worker thread) -------------------------------------------------------
    def open(self, camera_id: str, timeout_s: float) -> GbFeed:
        """INVITE the channel and return its feed. Raises StreamOpenError: UNREACHABLE (not
        registered, node stopping), NOT_FOUND (no such channel or platform, 404), REFUSED
        (any other refusal), TIMEOUT (no answer), PROTOCOL (an answer this service cannot
        use), OTHER (no free RTP port)."""
        split = ids.split_camera_id(camera_id)
        platform = self._platforms.get(split[0]) if split else None
        if split is None or platform is None:
            raise StreamOpenError(
                ErrorKind.NOT_FOUND, f"{camera_id} is not a channel of a GB/T 28181 platform"
            )
        platform_id, channel_id = split
        loop = self._loop
        if loop is None or loop.is_closed():
            raise StreamOpenError(ErrorKind.UNREACHABLE, "the GB/T 28181 service is not running")
        peer = self._signalling.peer(platform_id)
        if peer is None:
            raise StreamOpenError(
                ErrorKind.UNREACHABLE, f"platform {platform_id} is not registered"
            )
        transport = platform.transport
        port: int | None = None
        sock: socket.socket | None = None
        if transport is not GbTransport.TCP_ACTIVE:
            try:
                port, sock = self._ports.take(tcp=transport is GbTransport.TCP_PASSIVE)
            except NoFreePort as exc:
                raise StreamOpenError(ErrorKind.OTHER, str(exc)) from exc
        try:
            return self._play(loop, platform, channel_id, peer, port, sock, timeout_s)
        except BaseException:
            if sock is not None:
                sock.close()
            if port is not None:
                self._ports.give_back(port)
            raise

    def _play(
        self,
        loop: asyncio.AbstractEventLoop,
        platform: GbPlatformConfig,
        channel_id: str,
        peer: Peer,
        port: int | None,
        sock: socket.socket | None,
        timeout_s: float,
    ) -> GbFeed:
        ssrc = self._new_ssrc()
        invite = self._invite_request(platform, channel_id, peer, port, ssrc)
        wait_s = min(self._config.invite_timeout_s, timeout_s)
        future = asyncio.run_coroutine_threadsafe(
            self._invite(invite, peer, platform.id, channel_id, wait_s), loop
        )
        try:
            dialog, answer = future.result(wait_s + LOOP_MARGIN_S)
        except concurrent.futures.TimeoutError as exc:
            future.add_done_callback(self._bye_if_late)
            raise StreamOpenError(
                ErrorKind.TIMEOUT, f"platform {platform.id} did not answer the INVITE in time"
            ) from exc
        try:
            inner = self._receiver(platform, answer, peer, sock, timeout_s)
        except StreamOpenError:
            self._byes.soon(*self._byes.of(platform.id, dialog, channel_id))
            raise
        camera_id = ids.camera_id(platform.id, channel_id)
        session = PlaySession(
            record=GbSessionRecord(
                call_id=dialog.call_id,
                camera_id=camera_id,
                platform_id=platform.id,
                transport=platform.transport.value,
                local_port=port or 0,  # 0: tcp-active, we connect out
                ssrc=answer.ssrc or ssrc,
                started_at=time.time(),
                dialog=dialog.saved().to_json(),
            ),
            dialog=dialog,
            port=port,
            sock=sock,
        )
        feed_ssrc = self._ssrc_to_keep(camera_id, ssrc, answer)
        receiver = EndableReceiver(inner)
        session.receiver = receiver
        with self._lock:
            self._sessions[session.call_id] = session
        self._remember(session.record)
        return GbFeed(
            receiver=receiver,
            ssrc=feed_ssrc,
            close=lambda: self._close(session),
            description=f"{channel_id} {platform.transport.value} {port or answer.port}",
        )

    def _receiver(
        self,
        platform: GbPlatformConfig,
        answer: SdpAnswer,
        peer: Peer,
        sock: socket.socket | None,
        timeout_s: float,
    ) -> RtpReceiver:
        transport = platform.transport
        if answer.tcp != (transport is not GbTransport.UDP):
            raise StreamOpenError(
                ErrorKind.PROTOCOL,
                f"platform {platform.id} answered with {'TCP' if answer.tcp else 'UDP'} media "
                f"where {transport.value} was asked",
            )
        # An unspecified address in its answer means "where my signalling comes from".
        host = peer.host if answer.host in UNSPECIFIED_HOSTS else answer.host
        # RTP is taken only from the platform: the answer's c= host or where it registered
        # from. Another platform's stream left on this port (or a stranger guessing port
        # and SSRC) must never become this camera's picture.
        media_hosts = media_addresses(host) | media_addresses(peer.host)
        if transport is GbTransport.UDP and sock is not None:
            return udp_receiver(sock, media_hosts)
        if transport is GbTransport.TCP_PASSIVE and sock is not None:
            return tcp_passive_receiver(sock, media_hosts)
        # tcp-active: we connect to the port the platform listens on.
        try:
            return tcp_active_receiver(host, answer.port, timeout_s)
        except OSError as exc:
            raise StreamOpenError(
                ErrorKind.UNREACHABLE,
                f"platform {platform.id}'s media port {answer.port} cannot be reached: "
                f"{exc.strerror or exc}",
            ) from exc

    def _ssrc_to_keep(self, camera_id: str, offered: str, answer: SdpAnswer) -> int:
        """GB/T 28181-2016 Annex F: the answer's y= is the SSRC the platform sends with. One
        that differs from the offer is followed (some platforms pick their own), logged once
        per camera; an answer without y= sends ours."""
        if answer.ssrc is None or answer.ssrc == offered:
            return int(offered)
        if camera_id not in self._ssrc_logged:
            self._ssrc_logged.add(camera_id)
            log.info(
                "gb28181: %s: the platform answered SSRC %s where %s was offered; following it",
                camera_id,
                answer.ssrc,
                offered,
            )
        return int(answer.ssrc)

    def _new_ssrc(self) -> str:
        with self._lock:
            taken = {s.record.ssrc for s in self._sessions.values()}
        while True:
            ssrc = ids.ssrc(self._config.domain, next(self._serials))
            if ssrc not in taken:
                return ssrc

    def _invite_request(
        self, platform: GbPlatformConfig, channel_id: str, peer: Peer, port: int | None, ssrc: str
    ) -> SipRequest:
        local = self._signalling.local
        domain = platform.device_id[:10]  # GB/T 28181-2016 Annex D: the id's centre code
        offer = play_offer(
            sip_id=local.sip_id,
            media_host=self._config.advertised_media_host(),
            port=port or ACTIVE_OFFER_PORT,
            ssrc=ssrc,
            transport=platform.transport,
        )
        return new_request(
            "INVITE",
            f"sip:{channel_id}@{domain}",
            local=local,
            to_uri=f"sip:{channel_id}@{domain}",
            transport=peer.transport.upper(),
            body=offer.encode("ascii"),
            content_type="application/sdp",
            # GB/T 28181-2016 s.9.2.2.1: sender id:its stream serial, receiver id:ours.
            extra=[("Subject", f"{channel_id}:{ssrc},{local.sip_id}:0")],
        )

    # -- signalling (event loop) ----------------------------------------------------------
    async def _invite(
        self, invite: SipRequest, peer: Peer, platform_id: str, channel_id: str, wait_s: float
    ) -> tuple[Dialog, SdpAnswer]:
        client = self._signalling.client
        try:
            response = await client.request(invite, peer, wait_s)
        except SipTimeout as exc:
            raise StreamOpenError(
                ErrorKind.TIMEOUT,
                f"platform {platform_id} did not answer the INVITE for {channel_id} "
                f"within {wait_s:g} s",
            ) from exc
        except OSError as exc:
            raise StreamOpenError(
                ErrorKind.UNREACHABLE,
                f"the INVITE to platform {platform_id} cannot be sent: {exc.strerror or exc}",
            ) from exc
        if response.status >= 300:
            kind = ErrorKind.NOT_FOUND if response.status == 404 else ErrorKind.REFUSED
            raise StreamOpenError(
                kind,
                f"platform {platform_id} refused to play {channel_id}: "
                f"{response.status} {response.reason[:80]}",
            )
        # RFC 3261 s.13.2.2.4: every 2xx is ACKed, even one whose answer is then refused.
        await client.ack(invite, response, peer)
        dialog = Dialog.of(invite, response, peer)
        try:
            answer = parse_answer(response.body.decode("utf-8", errors="replace"))
            if answer.ssrc is not None and not (
                answer.ssrc.isdigit() and int(answer.ssrc) <= SSRC_MAX
            ):
                raise ValueError(f"y= {answer.ssrc[:12]!r} is not a 32-bit SSRC")
        except ValueError as exc:
            await self._byes.send(peer, dialog.bye(self._signalling.local), channel_id)
            raise StreamOpenError(
                ErrorKind.PROTOCOL,
                f"platform {platform_id} answered the INVITE for {channel_id} with an SDP "
                f"this service cannot use: {str(exc)[:120]}",
            ) from exc
        return dialog, answer

    def _bye_if_late(self, future: concurrent.futures.Future[tuple[Dialog, SdpAnswer]]) -> None:
        """A 200 that came after the worker gave up: end that dialog at the platform."""
        if future.cancelled() or future.exception() is not None:
            return
        dialog, _ = future.result()
        log.info("gb28181: a late answer to INVITE %s ended with BYE", dialog.call_id)
        # The callback runs on the loop (the future's coroutine ran there).
        self._byes.start_bye(dialog.peer, dialog.bye(self._signalling.local), "a late INVITE")

    def on_bye(self, request: SipRequest, peer: Peer) -> bool:
        """The platform ended a dialog (RFC 3261 s.15.1.2). True when it was one of ours,
        from the platform's address: the registry answers 200, else 481."""
        call_id = request.headers.get("Call-ID") or ""
        with self._lock:
            session = self._sessions.get(call_id)
        if session is None:
            return False
        now_at = self._signalling.peer(session.record.platform_id)
        if peer.host not in {session.dialog.peer.host, now_at.host if now_at else ""}:
            return False
        log.info("gb28181: %s: the platform ended the stream (BYE)", session.record.camera_id)
        session.end_from_platform()  # the worker then closes the feed, freeing the port
        return True

    # -- ending (any thread) --------------------------------------------------------------
    def _close(self, session: PlaySession) -> None:
        """The feed's close (worker thread): end the session, BYE it from the loop without
        waiting, forget its row."""
        bye = self._end(session)
        if bye is not None:
            self._byes.soon(*bye)
        self._forget(session.call_id)

    def _end(self, session: PlaySession) -> tuple[Peer, SipRequest, str] | None:
        """Free what the session holds (once); the BYE to send (where, what, for which
        camera), None when the platform ended it or it had ended already."""
        with self._lock:
            if session.closed:
                return None
            session.closed = True
            self._sessions.pop(session.call_id, None)
        if session.receiver is not None:
            with contextlib.suppress(OSError):
                session.receiver.close()
        if session.sock is not None:
            session.sock.close()
        if session.port is not None:
            self._ports.give_back(session.port)
        if session.remote_ended:
            return None
        record = session.record
        return self._byes.of(record.platform_id, session.dialog, record.camera_id)

    def _remember(self, record: GbSessionRecord) -> None:
        try:
            self._store.add_session(record)
        except Exception:  # the row is for status only: the stream plays without it
            log.exception("gb28181: session row of %s not written", record.camera_id)

    def _forget(self, call_id: str) -> None:
        try:
            self._store.remove_session(call_id)
        except Exception:
            log.exception("gb28181: session row %s not removed", call_id)


def media_addresses(host: str) -> set[str]:
    """The source addresses RTP from ``host`` may show: an IPv4 address also as IPv6-mapped
    (a dual-stack socket reports it so) and the other way round; a name (an SDP c= may hold
    one, RFC 4566 s.5.7) as the addresses it resolves to now."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
        except OSError:
            return {host}
        return {host}.union(*(media_addresses(str(info[4][0])) for info in infos))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return {host, str(address.ipv4_mapped)}
    if isinstance(address, ipaddress.IPv4Address):
        return {host, f"::ffff:{host}"}
    return {host}
