"""The simulated GB platform's plays: answering an INVITE's SDP offer and the streams it starts.

GB/T 28181-2016 s.9.2 and Annex F: the offer says where to send (c=, m=), how (RTP/AVP over
UDP, TCP/RTP/AVP with a=setup naming the offerer's TCP role, RFC 4145) and the SSRC (y=);
the 200's SDP answers with the opposite TCP role and the SSRC used. Media starts on the ACK.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from surveillance.simulator import gb_sip
from surveillance.simulator.gb_endpoint import Reply
from surveillance.simulator.gb_media import GbStream
from surveillance.simulator.gb_sip import Message
from surveillance.simulator.gb_xml import GbChannelSpec
from surveillance.simulator.ps_mux import ps_file
from surveillance.simulator.ps_units import PsClip, load_clip


class Plays:
    def __init__(self, local_host: str, clip_dir: Path | None) -> None:
        self.local_host = local_host
        self.clip_dir = clip_dir
        self.streams: dict[str, GbStream] = {}
        self._dialogs: dict[str, tuple[str, str]] = {}  # Call-ID -> (their From, our To)
        self._clips: dict[tuple[str, bool], asyncio.Task[PsClip]] = {}

    async def answer(
        self, request: Message, reply: Reply, channel: GbChannelSpec, faults: set[str], contact: str
    ) -> None:
        """100, then 200 with the SDP answer; the stream waits for the ACK."""
        try:
            offer = gb_sip.parse_offer(request.body.decode("utf-8", "replace"))
        except ValueError:
            reply(gb_sip.response(request, 488, "Not Acceptable Here", to_tag=gb_sip.new_tag()))
            return
        reply(gb_sip.response(request, 100, "Trying"))
        ssrc = offer.ssrc if offer.ssrc and offer.ssrc.isdigit() else _own_ssrc()
        transport = "udp"
        if offer.tcp:
            transport = "tcp-active" if offer.setup == "active" else "tcp-passive"
        call_id = request.header("call-id") or ""
        stream = GbStream(
            call_id=call_id,
            channel_id=channel.channel_id,
            ssrc=int(ssrc) & 0xFFFFFFFF,
            transport=transport,
            dest=(offer.host, offer.port),
            clip=await self._clip(channel.clip, "no-psm" in faults),
        )
        for name in faults - {"stop-media"}:  # stop-media stalls the plays running when set
            stream.faults.apply(name)
        await stream.prepare(self.local_host)
        await self.end(call_id, "replaced")
        self.streams[call_id] = stream
        sdp = gb_sip.answer_sdp(
            channel_id=channel.channel_id,
            host=self.local_host,
            port=stream.local_port or 9,  # 9: discard, for the side that connects (RFC 4145)
            tcp=offer.tcp,
            setup=offer.setup,
            ssrc=ssrc,
        )
        ok = gb_sip.response(
            request,
            200,
            "OK",
            to_tag=gb_sip.new_tag(),
            body=sdp.encode(),
            content_type="application/sdp",
            extra=[("contact", contact)],
        )
        self._dialogs[call_id] = (request.header("from") or "", ok.header("to") or "")
        reply(ok)

    def acked(self, call_id: str) -> None:
        stream = self.streams.get(call_id)
        if stream is not None:
            stream.start()

    async def end(self, call_id: str, reason: str) -> tuple[str, str] | None:
        """Stop a play; its dialog's (their From, our To), to send a BYE in it."""
        stream = self.streams.pop(call_id, None)
        if stream is not None:
            await stream.stop(reason)
        return self._dialogs.pop(call_id, None)

    def warm(self, names: set[str]) -> None:
        """Start making the named clips' PS now, so a first INVITE on a cold cache is
        answered within an upper platform's INVITE time-out."""
        for name in names:
            self._load(name, False)

    async def _clip(self, name: str, without_psm: bool) -> PsClip:
        return await asyncio.shield(self._load(name, without_psm))

    def _load(self, name: str, without_psm: bool) -> asyncio.Task[PsClip]:
        key = (name, without_psm)
        if key not in self._clips or self._clips[key].cancelled():
            self._clips[key] = asyncio.get_running_loop().create_task(self._make(name, without_psm))
        return self._clips[key]

    async def _make(self, name: str, without_psm: bool) -> PsClip:
        # Muxing runs a subprocess and reads files: off the event loop, once per clip.
        path = await asyncio.to_thread(ps_file, name, self.clip_dir)
        return await asyncio.to_thread(load_clip, path, without_psm=without_psm)

    async def close(self) -> None:
        for task in self._clips.values():
            task.cancel()
        await asyncio.gather(*self._clips.values(), return_exceptions=True)
        self._clips.clear()


def _own_ssrc() -> str:
    """An SSRC when the offer names none: 10 decimal digits, live streams start with 0."""
    return f"0{secrets.randbelow(10**9):09d}"
