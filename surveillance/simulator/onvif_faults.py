"""What a faulty simulated ONVIF device sends instead of a proper answer.

Each fault is something a real network has: a camera's web server answering with a DTD
(external entity, entity-expansion bomb), a truncated answer, another product's XML, an
endless answer. The client must refuse each without resolving, expanding or buffering it.
"""

from __future__ import annotations

import re

from aiohttp import web

from surveillance.simulator.onvif_specs import HUGE_ANSWER_BYTES

SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"
# An external entity pointing at a local file, and the "billion laughs" expansion bomb
# (10 levels of 10 references: 10^10 copies of "lol" if a parser expanded it).
HOSTILE_DTD = (
    b'<!DOCTYPE env:Envelope [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    b'<!ENTITY lol0 "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (level, b"".join(b"&lol%d;" % (level - 1) for _ in range(10)))
        for level in range(1, 10)
    )
    + b"]>\n"
)
_FIRST_TEXT = re.compile(rb">([^<>]+)</")
HUGE_CHUNK_BYTES = 1024 * 1024


def hostile(answer: bytes) -> bytes:
    """The proper answer with HOSTILE_DTD after the XML declaration and the first text value
    replaced by references to both entities."""
    declaration, _, rest = answer.partition(b"?>")
    rest = _FIRST_TEXT.sub(rb">&xxe;&lol9;</", rest, count=1)
    return declaration + b"?>\n" + HOSTILE_DTD + rest.lstrip()


def malformed(answer: bytes) -> bytes:
    """Cut in the middle of a tag: not XML any more."""
    cut = answer.rfind(b"<", 0, len(answer) // 2)
    return answer[: max(cut + 3, 1)]


NOT_ONVIF = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">'
    b'<env:Body><nv:DeviceStatus xmlns:nv="urn:example:not-onvif">'
    b"<nv:Uptime>12345</nv:Uptime><nv:Product>a printer</nv:Product>"
    b"</nv:DeviceStatus></env:Body></env:Envelope>"
)


async def stream_huge(request: web.Request) -> web.StreamResponse:
    """HUGE_ANSWER_BYTES of one never-ending text value, chunked (no Content-Length, so only
    a cap on what the client reads protects it)."""
    response = web.StreamResponse(headers={"Content-Type": SOAP_CONTENT_TYPE})
    await response.prepare(request)
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>'
        b"<tds:GetDeviceInformationResponse><tds:Manufacturer>"
    )
    tail = b"</tds:Manufacturer></tds:GetDeviceInformationResponse></env:Body></env:Envelope>"
    chunk = b"A" * HUGE_CHUNK_BYTES
    try:
        await response.write(head)
        chunks, rest = divmod(HUGE_ANSWER_BYTES - len(head) - len(tail), HUGE_CHUNK_BYTES)
        for _ in range(chunks):
            await response.write(chunk)
        await response.write(chunk[:rest] + tail)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client gave up reading, as it should
    return response
