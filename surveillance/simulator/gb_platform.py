"""A simulated GB/T 28181 lower platform (a DVR, NVR or another vendor's platform).

It registers with the upper platform under test (answering the 401 with an RFC 2617 digest),
keeps alive, answers Catalog queries in pages, answers INVITEs with 200 + SDP and sends its
clips as MPEG-PS over RTP (UDP, TCP passive or TCP active per the offer's a=setup), ends a play
on BYE, and plays faults on request. Its SIP code is its own (simulator/gb_sip.py), written
apart from surveillance.gb28181 on purpose: the tests make the two meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from surveillance.simulator import gb_sip, gb_xml
from surveillance.simulator.gb_endpoint import Reply, SipEndpoint
from surveillance.simulator.gb_media import GbStream
from surveillance.simulator.gb_plays import Plays
from surveillance.simulator.gb_sip import Message
from surveillance.simulator.gb_xml import MANSCDP, GbChannelSpec

__all__ = ["FAULTS", "GbChannelSpec", "GbPlatformSimulator"]

log = logging.getLogger(__name__)

# What fault() takes; each stays until "reset" (stop-keepalive also until resume-keepalive).
FAULTS = ("stop-keepalive", "resume-keepalive", "stop-media", "wrong-ssrc", "garbage-rtp",
          "refuse-invite", "drop-invite", "no-psm", "reset")  # fmt: skip
REQUEST_TIMEOUT_S = 10.0
REGISTER_RETRY_S = 2.0  # after a failed REGISTER
BYE_TIMEOUT_S = 2.0
# Keepalives unanswered in a row before it registers again: the upper platform's own
# count before it calls a platform offline (GB/T 28181-2016 s.9.6: three by default).
KEEPALIVE_FAILURES_TO_REGISTER = 3


class GbPlatformSimulator:
    """One lower platform: its SIP identity, its channels (each playing a clip), its faults.
    Runs on the event loop that calls start(); from other threads use GbPlatformThread."""

    def __init__(
        self,
        *,
        device_id: str,
        password: str,
        server_host: str,
        server_port: int,
        server_id: str,
        domain: str,
        transport: str = "udp",
        local_host: str = "127.0.0.1",
        channels: list[GbChannelSpec],
        keepalive_s: float = 5,
        expires_s: int = 3600,
        page_size: int = 20,
        encoding: str = "GB2312",
        clip_dir: Path | None = None,
    ) -> None:
        self.device_id = device_id
        self._password = password
        self.server = (server_host, server_port)
        self.server_id = server_id
        self.domain = domain
        self.transport = transport.lower()
        self.local_host = local_host
        self.channels = list(channels)
        self.keepalive_s = keepalive_s
        self.expires_s = expires_s
        self.page_size = page_size
        self.encoding = encoding
        self.clip_dir = clip_dir
        self.registered = False
        self.invites = 0
        self.byes = 0
        self.keepalives = 0
        self.ptz_commands: list[tuple[str, str]] = []
        self.faults: set[str] = set()
        self.register_status: int | None = None  # the last REGISTER's final status
        self._endpoint: SipEndpoint | None = None
        self._tag = gb_sip.new_tag()
        self._register_call_id = ""
        self._cseq = 0
        self._sn = 0
        self._plays = Plays(local_host, clip_dir)
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._subscription: tuple[str, str, str] | None = None  # call-id, their tag, our tag

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def streams(self) -> dict[str, GbStream]:
        """Active plays by Call-ID."""
        return self._plays.streams

    @property
    def sip_dropped(self) -> int:
        """Malformed SIP received and dropped."""
        return self._endpoint.dropped if self._endpoint else 0

    @property
    def local_port(self) -> int:
        return self._endpoint.local_port if self._endpoint else 0

    async def start(self, local_port: int = 0) -> None:
        """Bind, register (answering the digest challenge) and keep alive. An upper platform
        that does not answer or refuses is tried again every REGISTER_RETRY_S, as a device
        does: ``registered`` says when it took."""
        await self._open(local_port)
        self._plays.warm({channel.clip for channel in self.channels})
        self._register_call_id = gb_sip.new_call_id(self.local_host)
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await self._register(self.expires_s)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._keepalive_loop()),
            loop.create_task(self._refresh_loop()),
        ]

    async def stop(self) -> None:
        """End every play (BYE), de-register (Expires: 0), close."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(
            *[self._end_stream(call_id, bye=True) for call_id in list(self.streams)]
        )
        await self._plays.close()
        if self.registered:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                await self._register(0, timeout_s=BYE_TIMEOUT_S)
        self.registered = False
        if self._endpoint is not None:
            await self._endpoint.close()
            self._endpoint = None

    async def reregister_from(self, local_port: int) -> None:
        """Register again from another source port (a platform behind a NAT that re-mapped)."""
        if self._endpoint is not None:
            await self._endpoint.close()
        await self._open(local_port)
        self._register_call_id = gb_sip.new_call_id(self.local_host)
        await self._register(self.expires_s)

    def fault(self, name: str) -> None:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if name == "reset":
            self.faults.clear()
        elif name == "resume-keepalive":
            self.faults.discard("stop-keepalive")
        else:
            self.faults.add(name)
        for stream in self.streams.values():
            stream.faults.apply(name)
        self._wake.set()

    async def _open(self, local_port: int) -> None:
        self._endpoint = SipEndpoint(
            host=self.local_host,
            transport=self.transport,
            server=self.server,
            on_request=self._on_request,
        )
        await self._endpoint.open(local_port)

    # -- requests this platform sends --------------------------------------------------------

    def _new_request(
        self,
        method: str,
        *,
        to_user: str,
        body: bytes = b"",
        content_type: str | None = None,
        call_id: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Message:
        endpoint = self._require_endpoint()
        self._cseq += 1
        uri = f"sip:{to_user}@{self.domain}"
        message = Message(f"{method} {uri} SIP/2.0")
        message.headers += [
            ("via", endpoint.via()),
            ("from", f"<sip:{self.device_id}@{self.domain}>;tag={self._tag}"),
            ("to", f"<sip:{to_user}@{self.domain}>"),
            ("call-id", call_id or gb_sip.new_call_id(self.local_host)),
            ("cseq", f"{self._cseq} {method}"),
            ("contact", f"<sip:{self.device_id}@{self.local_host}:{endpoint.local_port}>"),
            ("max-forwards", "70"),
            ("user-agent", "surveillance-gb-simulator"),
            *(extra or []),
        ]
        if content_type:
            message.headers.append(("content-type", content_type))
        message.body = body
        return message

    def _require_endpoint(self) -> SipEndpoint:
        if self._endpoint is None:
            raise ConnectionError("the simulated platform is not started")
        return self._endpoint

    async def _register(self, expires: int, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        """REGISTER; a 401/407 is answered once with a digest (GB/T 28181-2016 s.9.1.2.1)."""
        endpoint = self._require_endpoint()
        request = self._register_request(expires)
        answer = await endpoint.request(request, timeout_s)
        if answer.status in (401, 407):
            challenge = answer.header("www-authenticate") or answer.header("proxy-authenticate")
            request = self._register_request(expires)
            request.headers.append(
                (
                    "authorization",
                    gb_sip.digest_answer(
                        challenge or "",
                        username=self.device_id,
                        password=self._password,
                        method="REGISTER",
                        uri=request.uri,
                    ),
                )
            )
            answer = await endpoint.request(request, timeout_s)
        self.register_status = answer.status
        self.registered = answer.status == 200 and expires > 0
        log.info("GB sim %s: REGISTER expires %d -> %d", self.device_id, expires, answer.status)

    def _register_request(self, expires: int) -> Message:
        request = self._new_request(
            "REGISTER",
            to_user=self.server_id,
            call_id=self._register_call_id,
            extra=[("expires", str(expires))],
        )
        # RFC 3261 s.10.2: To is the address of record being registered: this platform.
        request.replace("to", f"<sip:{self.device_id}@{self.domain}>")
        return request

    async def _message(self, body: bytes) -> int:
        request = self._new_request(
            "MESSAGE", to_user=self.server_id, body=body, content_type=MANSCDP
        )
        return (await self._require_endpoint().request(request, REQUEST_TIMEOUT_S)).status

    def _next_sn(self) -> int:
        self._sn += 1
        return self._sn

    async def _keepalive_loop(self) -> None:
        """MESSAGE Keepalive every keepalive_s (GB/T 28181-2016 s.9.6). As devices do, it
        registers again when the upper platform refuses one (it forgot us), when its SIP
        connection is gone (over TCP: the upper platform restarted), and after
        KEEPALIVE_FAILURES_TO_REGISTER unanswered in a row."""
        failures = 0
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.keepalive_s)
                continue  # a fault changed: wait a full interval from now
            if "stop-keepalive" in self.faults or not self.registered:
                continue
            try:
                if self._require_endpoint().closed:
                    log.info("GB sim %s: SIP connection gone: registering again", self.device_id)
                    await self._endpoint_reopen()
                    await self._register(self.expires_s)
                    continue
                status = await self._message(
                    gb_xml.keepalive(self._next_sn(), self.device_id, self.encoding)
                )
                self.keepalives += 1
                failures = 0
                if status in (401, 403, 404):
                    await self._register(self.expires_s)
            except (TimeoutError, ConnectionError, OSError) as exc:
                failures += 1
                log.info("GB sim %s: keepalive failed: %s", self.device_id, exc)
                if failures >= KEEPALIVE_FAILURES_TO_REGISTER:
                    failures = 0
                    with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                        await self._register(self.expires_s)

    async def _refresh_loop(self) -> None:
        """Register again at half the expiry, or soon when not registered; over TCP, on a new
        connection when the upper platform closed ours."""
        while True:
            wait = self.expires_s / 2 if self.registered else REGISTER_RETRY_S
            await asyncio.sleep(max(REGISTER_RETRY_S, wait))
            try:
                if self._require_endpoint().closed:
                    await self._endpoint_reopen()
                await self._register(self.expires_s)
            except (TimeoutError, ConnectionError, OSError) as exc:
                self.registered = False
                log.info("GB sim %s: REGISTER failed: %s", self.device_id, exc)

    async def _endpoint_reopen(self) -> None:
        if self._endpoint is not None:
            await self._endpoint.close()
        await self._open(0)

    async def notify_catalog(self, event: str, items: list[GbChannelSpec]) -> None:
        """NOTIFY Catalog with each item's Event (GB/T 28181-2016 s.9.6.3), in the
        subscription's dialog when there is one; the channel list follows the change."""
        self._apply_catalog_event(event, items)
        body = gb_xml.catalog(
            "Notify", self._next_sn(), self.device_id, len(items), items, self.encoding, event=event
        )
        extra = [("event", "Catalog"), ("subscription-state", "active")]
        request = self._new_request(
            "NOTIFY", to_user=self.server_id, body=body, content_type=MANSCDP, extra=extra
        )
        if self._subscription is not None:
            call_id, their_tag, our_tag = self._subscription
            request.replace("call-id", call_id)
            request.replace("from", f"<sip:{self.device_id}@{self.domain}>;tag={our_tag}")
            request.replace("to", f"<sip:{self.server_id}@{self.domain}>;tag={their_tag}")
        await self._require_endpoint().request(request, REQUEST_TIMEOUT_S)

    def _apply_catalog_event(self, event: str, items: list[GbChannelSpec]) -> None:
        ids = {item.channel_id for item in items}
        if event in ("DEL", "ADD", "UPDATE"):
            self.channels = [c for c in self.channels if c.channel_id not in ids]
        if event in ("ADD", "UPDATE"):
            self.channels += items
        if event in ("ON", "OFF"):
            for channel in self.channels:
                if channel.channel_id in ids:
                    channel.status = event

    async def send_alarm(
        self, channel_id: str, priority: int, method: int, description: str
    ) -> None:
        await self._message(
            gb_xml.alarm(self._next_sn(), channel_id, priority, method, description, self.encoding)
        )

    # -- requests this platform answers -----------------------------------------------------

    async def _on_request(self, request: Message, reply: Reply) -> None:
        try:
            await self._dispatch(request, reply)
        except Exception:
            log.exception("GB sim %s: failed to answer %s", self.device_id, request.method)
            reply(gb_sip.response(request, 500, "Server Internal Error"))

    async def _dispatch(self, request: Message, reply: Reply) -> None:
        method = request.method
        if method == "MESSAGE":
            await self._on_message(request, reply)
        elif method == "INVITE":
            await self._on_invite(request, reply)
        elif method == "ACK":
            self._plays.acked(request.header("call-id") or "")
        elif method == "BYE":
            self.byes += 1
            await self._end_stream(request.header("call-id") or "", bye=False)
            reply(gb_sip.response(request, 200, "OK"))
        elif method == "SUBSCRIBE":
            our_tag = gb_sip.new_tag()
            their_tag = gb_sip.param(request.header("from") or "", "tag") or ""
            self._subscription = (request.header("call-id") or "", their_tag, our_tag)
            expires = request.header("expires") or "3600"
            reply(gb_sip.response(request, 200, "OK", to_tag=our_tag, extra=[("expires", expires)]))
        else:
            reply(
                gb_sip.response(
                    request,
                    405,
                    "Method Not Allowed",
                    extra=[("allow", "INVITE, ACK, BYE, MESSAGE, SUBSCRIBE")],
                )
            )

    async def _on_message(self, request: Message, reply: Reply) -> None:
        try:
            query = gb_xml.parse_request(request.body)
        except ValueError:
            reply(gb_sip.response(request, 400, "Bad Request"))
            return
        if query.root == "Control" and "PTZCmd" in query.fields:
            self.ptz_commands.append((query.device_id, query.fields["PTZCmd"]))
        reply(gb_sip.response(request, 200, "OK"))
        if query.root == "Query" and query.cmd_type == "Catalog":
            await self._send_catalog(query.sn)
        elif query.root == "Query" and query.cmd_type == "DeviceInfo":
            channels = len(self.channels)
            await self._message(
                gb_xml.device_info(query.sn, self.device_id, channels, self.encoding)
            )

    async def _send_catalog(self, sn: int) -> None:
        """The catalog in pages of page_size items, each a MESSAGE with SumNum = the total
        (GB/T 28181-2016 A.2.6.1), one after the other as each is answered."""
        channels = list(self.channels)
        for start in range(0, max(1, len(channels)), self.page_size):
            page = channels[start : start + self.page_size]
            body = gb_xml.catalog(
                "Response", sn, self.device_id, len(channels), page, self.encoding
            )
            try:
                await self._message(body)
            except (TimeoutError, ConnectionError, OSError) as exc:
                log.info("GB sim %s: catalog page lost: %s", self.device_id, exc)

    async def _on_invite(self, request: Message, reply: Reply) -> None:
        self.invites += 1
        if "drop-invite" in self.faults:
            return
        if "refuse-invite" in self.faults:
            reply(gb_sip.response(request, 486, "Busy Here", to_tag=gb_sip.new_tag()))
            return
        channel_id = gb_sip.uri_user(request.uri) or ""
        channel = next((c for c in self.channels if c.channel_id == channel_id), None)
        if channel is None:
            reply(gb_sip.response(request, 404, "Not Found", to_tag=gb_sip.new_tag()))
            return
        contact = f"<sip:{channel_id}@{self.local_host}:{self.local_port}>"
        await self._plays.answer(request, reply, channel, self.faults, contact)

    async def _end_stream(self, call_id: str, *, bye: bool) -> None:
        dialog = await self._plays.end(call_id, "platform stopped" if bye else "bye")
        if bye and dialog is not None:
            # RFC 3261 s.15.1.1: a BYE in the dialog; From/To are the INVITE's, swapped.
            request = self._new_request("BYE", to_user=self.server_id, call_id=call_id)
            request.replace("from", dialog[1])
            request.replace("to", dialog[0])
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                await self._require_endpoint().request(request, BYE_TIMEOUT_S)
