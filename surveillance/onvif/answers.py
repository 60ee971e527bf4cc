"""What a device may send back, bounded and refused before any XML parser sees it.

onvif-zeep-async builds one aiohttp session and one zeep client per service, with zeep
settings of its own (``onvif.settings.DEFAULT_SETTINGS``: ``xml_huge_tree=True``,
``strict=False``, DTDs allowed) and reads every answer whole. :func:`harden` is applied to
each service it creates for us (``client.OnvifClient``), before the first request: the
answer is read at most :data:`MAX_ANSWER_BYTES`, a body declaring a DTD or entities is
refused unread, and the zeep clients parse with :data:`HARDENED_SETTINGS` (the library's
shared settings object is left alone: the WSDLs it loads from its own package are trusted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from zeep import Settings

if TYPE_CHECKING:
    from onvif.client import ONVIFService

# An ONVIF answer is a few kB (GetProfiles of a many-channel recorder: tens of kB); 2 MiB
# leaves room for any of them and bounds what a hostile or broken device makes us hold.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024

# strict: no "recover" mode, so a truncated answer is an error, not a half-read one (zeep
# passes recover=not strict to lxml; schema leniency stays with the WSDL document's own
# settings). No DTD, no entities, no external fetch, libxml2's size limits kept.
HARDENED_SETTINGS = Settings(
    strict=True,
    forbid_dtd=True,
    forbid_entities=True,
    forbid_external=True,
    xml_huge_tree=False,
)

# A SOAP envelope never needs a document type declaration (SOAP 1.2 part 1 s.5: "A SOAP
# message MUST NOT contain a Document Type Declaration"), so its mere presence refuses it.
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")


class AnswerRefused(aiohttp.ClientPayloadError):
    """The device's answer was not read further: too large, or it declares a DTD.

    A payload error to aiohttp's own handlers (onvif-zeep-async's subscription managers
    catch ``aiohttp.ClientError``), and mapped to ``BadAnswer`` by ``translate_errors``."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def check_answer(content: bytes) -> None:
    """Refuses a body that declares a DTD or entities, before anything parses it."""
    for marker in _DTD_MARKERS:
        if marker in content:
            raise AnswerRefused("its answer declares a DTD or entities (refused unread)")


async def read_capped(response: aiohttp.ClientResponse, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The body, or :class:`AnswerRefused` as soon as it passes ``limit`` (the connection is
    closed then, so a device streaming without end costs no more than ``limit``)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise AnswerRefused(f"its answer is too large ({declared} bytes, limit {limit})")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(_CHUNK_BYTES)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            response.close()
            raise AnswerRefused(f"its answer is too large (more than {limit} bytes)")
        parts.append(chunk)
    return b"".join(parts)


async def _capped_post(
    transport: Any, address: str, message: str | bytes, headers: dict[str, str]
) -> tuple[aiohttp.ClientResponse, bytes]:
    """``AIOHTTPTransport._post_internal`` with the body read by :func:`read_capped` and
    checked by :func:`check_answer` (the library's reads it whole and logs it at debug)."""
    headers = dict(headers or {})
    headers.setdefault("Content-Type", 'text/xml; charset="utf-8"')
    data = message.encode("utf-8") if isinstance(message, str) else message
    response = await transport.session.post(
        address, data=data, headers=headers, timeout=transport._client_timeout
    )
    try:
        content = await read_capped(response)
    finally:
        response.release()
    check_answer(content)
    return response, content


def harden(service: ONVIFService, *, authenticated: bool) -> None:
    """Makes one freshly created service safe to ask; idempotent.

    The transport object is shared by the service's two zeep clients, so replacing its
    ``_post_internal`` (the one method its post/post_xml/retry wrappers call) covers both.
    Without credentials the WS-Security header is left out rather than sent empty."""
    transport = service.transport
    if not getattr(transport, "_surveillance_hardened", False):

        async def post_internal(
            address: str, message: str | bytes, headers: dict[str, str]
        ) -> tuple[aiohttp.ClientResponse, bytes]:
            return await _capped_post(transport, address, message, headers)

        transport._post_internal = post_internal
        transport._surveillance_hardened = True
    for client in (service.zeep_client, service.zeep_client_authless):
        if client is not None:
            client.settings = HARDENED_SETTINGS
    if not authenticated and service.zeep_client is not None:
        service.zeep_client.wsse = None
