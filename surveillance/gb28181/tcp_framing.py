"""Framing of SIP messages on a TCP stream by Content-Length (RFC 3261 s.18.3: required
over TCP), with a cap on a message's size and on how long the peer may stay silent."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

TCP_READ_CHUNK = 65536
_CONTENT_LENGTH_LINE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)
_DIGITS = re.compile(rb"[0-9]{1,10}")


class FramingLost(Exception):
    """The stream cannot be framed any more (``kind``: "oversized" or "malformed")."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


async def framed_messages(
    reader: asyncio.StreamReader, max_bytes: int, silence_s: Callable[[], float]
) -> AsyncIterator[bytes]:
    """Each whole message as it arrives, until the peer closes. FramingLost when the stream
    breaks the framing; TimeoutError when the peer stays silent ``silence_s()`` (asked
    before each read)."""
    buffer = bytearray()  # grows in place: a trickle of tiny segments costs no copies
    searched = 0  # the end of the headers is not before this offset
    while True:
        if buffer and buffer[0] in b"\r\n":  # keepalive CRLFs between messages
            del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]
            searched = 0
        end = buffer.find(b"\r\n\r\n", searched)
        if end < 0:
            if len(buffer) > max_bytes:
                raise FramingLost("oversized", "headers over the size limit")
            searched = max(0, len(buffer) - 3)  # not the whole buffer again each time
            if not await _read_more(reader, buffer, silence_s()):
                return
            continue
        length = content_length(bytes(buffer[: end + 2]))
        if length is None:
            raise FramingLost("malformed", "no valid Content-Length")
        size = end + 4 + length
        if size > max_bytes:
            raise FramingLost("oversized", f"a message of {size} bytes")
        while len(buffer) < size:
            if not await _read_more(reader, buffer, silence_s()):
                return
        data = bytes(buffer[:size])
        del buffer[:size]
        searched = 0
        yield data


async def _read_more(reader: asyncio.StreamReader, buffer: bytearray, within_s: float) -> bool:
    """Appends what the peer sends next; False when it closed. TimeoutError when it stayed
    silent ``within_s``."""
    if within_s <= 0:
        raise TimeoutError
    chunk = await asyncio.wait_for(reader.read(TCP_READ_CHUNK), within_s)
    buffer += chunk
    return bool(chunk)


def content_length(head: bytes) -> int | None:
    """The one Content-Length of a header block (ending in CRLF), None if absent, repeated
    or not a number."""
    values = _CONTENT_LENGTH_LINE.findall(head)
    if len(values) != 1 or not _DIGITS.fullmatch(values[0].strip()):
        return None
    return int(values[0].strip())
