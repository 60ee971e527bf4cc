"""A camera that answers RTSP with ``302 Found`` and a ``Location`` pointing elsewhere.

A fake, by necessity: no real part here redirects on request (Debian's GStreamer RTSP
server has no redirect mode), and a redirect is all this peer must do. It speaks just
enough RTSP for a client to follow it: every request gets ``302`` with ``Location`` and the
request's ``CSeq``. With ``honest_connections=n``, the requests of the first n connections
get ``200`` instead (``OPTIONS`` with ``Public``, ``DESCRIBE`` with a small H.264 SDP): a
camera that tells a pre-flight check one thing and the client that follows another. With
``redirect_user_agent=ua``, only requests whose ``User-Agent`` is ``ua`` get the 302 and
all others the honest 200s: a camera that tells the check apart from FFmpeg by content.

With ``challenge=...`` it is not a redirector but a host that wants credentials: ``OPTIONS``
gets 200, any other request without ``Authorization`` gets ``401`` with that
``WWW-Authenticate``, and one with it ``403`` (so both FFmpeg and the check stop there).

It runs its own asyncio loop in a thread, counts the connections it accepted and keeps
every request head it received (``heads``, per connection).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SDP = (
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=redirector\r\n"
    "t=0 0\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=control:track1\r\n"
)


class Redirector:
    def __init__(
        self,
        host: str,
        location: str,
        *,
        honest_connections: int = 0,
        redirect_user_agent: str | None = None,
        challenge: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.host = host
        self._delay_s = delay_s  # before each answer: a host farther away than loopback
        self.port = 0
        self.location = location
        self.connections = 0
        self.requests: list[str] = []  # request lines, in order
        self.heads: list[list[bytes]] = []  # each connection's request heads, as received
        self._honest_left = honest_connections
        self._redirect_user_agent = redirect_user_agent
        self._challenge = challenge
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, path: str = "cam/realmonitor?channel=1&subtype=0") -> str:
        return f"rtsp://{self.host}:{self.port}/{path}"

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        honest = self._honest_left > 0
        self._honest_left -= 1
        heads: list[bytes] = []
        self.heads.append(heads)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                lines = head.decode("latin-1").split("\r\n")
                self.requests.append(lines[0])
                headers = dict(
                    (name.strip().lower(), value.strip())
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                )
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                method = lines[0].split(" ", 1)[0]
                cseq = headers.get("cseq", "0")
                if self._delay_s:
                    await asyncio.sleep(self._delay_s)
                if self._challenge is not None:
                    writer.write(self._challenge_answer(method, cseq, headers))
                    await writer.drain()
                    continue
                wanted = self._redirect_user_agent
                fooled = wanted is not None and headers.get("user-agent") != wanted
                writer.write(self._answer(method, cseq, honest or fooled))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _challenge_answer(self, method: str, cseq: str, headers: dict[str, str]) -> bytes:
        if method == "OPTIONS":
            public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
            return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{public}\r\n".encode()
        if "authorization" not in headers:
            return (
                f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n"
                f"WWW-Authenticate: {self._challenge}\r\n\r\n"
            ).encode()
        return f"RTSP/1.0 403 Forbidden\r\nCSeq: {cseq}\r\n\r\n".encode()

    def _answer(self, method: str, cseq: str, honest: bool) -> bytes:
        if honest:
            if method == "DESCRIBE":
                body = SDP.encode()
                extra = f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
                return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}\r\n".encode() + body
            public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n"
            return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{public}\r\n".encode()
        return (
            f"RTSP/1.0 302 Found\r\nCSeq: {cseq}\r\nLocation: {self.location}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()


@contextmanager
def redirector(
    host: str,
    location: str,
    *,
    honest_connections: int = 0,
    redirect_user_agent: str | None = None,
    challenge: str | None = None,
    delay_s: float = 0.0,
) -> Iterator[Redirector]:
    peer = Redirector(
        host,
        location,
        honest_connections=honest_connections,
        redirect_user_agent=redirect_user_agent,
        challenge=challenge,
        delay_s=delay_s,
    )
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()
