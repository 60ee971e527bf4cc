"""SIP messages: parse bytes from the network into requests and responses, and build them.

RFC 3261 s.7 (message format) and s.20 (header fields), strictly and with bounds: the input
comes from any host that can reach the port, so every limit is checked before work is done
on it, and a refusal says what is wrong without echoing more than a short excerpt.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_HEADERS = 100
MAX_HEADER_LINE_BYTES = 8 * 1024
EXCERPT_CHARS = 80  # the most of the input an error message repeats

# RFC 3261 s.7.3.3 compact forms.
COMPACT_NAMES = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "v": "Via",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT_NAMES.values(),
        "CSeq",
        "Max-Forwards",
        "User-Agent",
        "Expires",
        "WWW-Authenticate",
        "Authorization",
        "Allow",
        "Date",
        "Subscription-State",
    )
}
# RFC 3261 s.8.1.1: what every request carries (Max-Forwards left out: GB devices omit it).
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    513: "Message Too Large",
}
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")  # RFC 3261 s.25.1 token
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
_REASON = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls except HTAB
_CSEQ = re.compile(r"(\d{1,10})[ \t]+([A-Za-z0-9.!%*_+`'~-]+)")
_CONTENT_LENGTH = re.compile(r"\d{1,10}")
CSEQ_MAX = 2**31 - 1  # RFC 3261 s.8.1.1.5


def excerpt(text: str | bytes) -> str:
    """A short, printable piece of untrusted input for an error message or a log line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    clipped = text[:EXCERPT_CHARS]
    return repr(clipped) + ("..." if len(text) > EXCERPT_CHARS else "")


class SipError(ValueError):
    """A message that is not acceptable SIP. ``partial`` is the request as far as it was
    read when its request line parsed (so a 400 can be answered), else None."""

    def __init__(self, message: str, *, partial: SipRequest | None = None) -> None:
        super().__init__(message)
        self.partial = partial


def canonical_name(name: str) -> str:
    """The full, conventionally spelled header name (compact forms expanded)."""
    if len(name) == 1 and name.lower() in COMPACT_NAMES:
        return COMPACT_NAMES[name.lower()]
    return _CANONICAL.get(name.lower(), name)


class Headers:
    """Header fields in order, several of one name allowed, names case-insensitive."""

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        for name, value in fields:
            self.add(name, value)

    def get(self, name: str) -> str | None:
        key = canonical_name(name).lower()
        return next((v for n, v in self._fields if n.lower() == key), None)

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        return [v for n, v in self._fields if n.lower() == key]

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one, where the first one was (else at the end)."""
        name, value = _checked_field(name, value)
        key = name.lower()
        at = next((i for i, (n, _) in enumerate(self._fields) if n.lower() == key), None)
        self.remove(name)
        self._fields.insert(len(self._fields) if at is None else at, (name, value))

    def add(self, name: str, value: str) -> None:
        self._fields.append(_checked_field(name, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _checked_field(name: str, value: str) -> tuple[str, str]:
    # A CR or LF in a value would let a caller's data inject header lines.
    if not _TOKEN.fullmatch(name):
        raise SipError(f"bad header name {excerpt(name)}")
    if _CTL.search(value):
        raise SipError(f"control character in the value of {excerpt(name)}")
    return canonical_name(name), value.strip(" \t")


@dataclass
class SipRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes = b""


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""


SipMessage = SipRequest | SipResponse


@dataclass(frozen=True)
class LocalParty:
    """Who this service is in the requests it sends: From, Via and Contact."""

    sip_id: str
    domain: str
    host: str
    port: int


def parse_message(data: bytes, max_bytes: int) -> SipMessage:
    """One SIP message from one datagram or one framed stream message; SipError if it is not
    one (RFC 3261 s.7: CRLF line ends, no folding here, Content-Length equal to the body)."""
    if len(data) > max_bytes:
        raise SipError(f"message of {len(data)} bytes is over the limit of {max_bytes}")
    head, separator, body = data.partition(b"\r\n\r\n")
    first, _, rest = head.partition(b"\r\n")
    message = _first_line(first)
    if not separator:
        raise _partial("no blank line ends the headers (truncated?)", message)
    # maxsplit: a message of thousands of lines is refused without splitting them all.
    for line in rest.split(b"\r\n", MAX_HEADERS) if rest else ():
        if len(message.headers) >= MAX_HEADERS:
            raise _partial(f"more than {MAX_HEADERS} header fields", message)
        try:
            name, value = _header_line(line)
            message.headers.add(name, value)
        except SipError as error:
            raise _partial(str(error), message) from None
    try:
        _check_headers(message, body)
    except SipError as error:
        raise _partial(str(error), message) from None
    # The body's length is the body's: to_bytes writes it, so no stale copy is kept.
    message.headers.remove("Content-Length")
    message.body = body
    return message


def _partial(reason: str, message: SipMessage) -> SipError:
    return SipError(reason, partial=message if isinstance(message, SipRequest) else None)


def _first_line(line: bytes) -> SipMessage:
    if len(line) > MAX_HEADER_LINE_BYTES:
        raise SipError(f"first line is over {MAX_HEADER_LINE_BYTES} bytes")
    text = _text(line, "first line")
    parts = text.split(" ", 2)
    if len(parts) == 3 and parts[0] == "SIP/2.0":
        status, reason = parts[1], parts[2]
        if not (len(status) == 3 and status.isascii() and status.isdigit()) or status[0] == "0":
            raise SipError(f"bad status code in {excerpt(text)}")
        if not _REASON.fullmatch(reason):
            raise SipError("bad reason phrase")
        return SipResponse(int(status), reason, Headers())
    if len(parts) == 3 and parts[2] == "SIP/2.0":
        method, uri = parts[0], parts[1]
        if not _TOKEN.fullmatch(method) or not _URI.fullmatch(uri):
            raise SipError(f"bad request line {excerpt(text)}")
        return SipRequest(method, uri, Headers())
    raise SipError(f"neither a request nor a status line: {excerpt(text)}")


def _header_line(line: bytes) -> tuple[str, str]:
    if len(line) > MAX_HEADER_LINE_BYTES:
        raise SipError(f"a header line is over {MAX_HEADER_LINE_BYTES} bytes")
    if line[:1] in (b" ", b"\t"):
        raise SipError("folded header lines are not accepted")
    text = _text(line, "header line")
    name, colon, value = text.partition(":")
    name = name.rstrip(" \t")
    if not colon or not _TOKEN.fullmatch(name):
        raise SipError(f"bad header line {excerpt(text)}")
    return name, value


def _text(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")  # RFC 3261 s.7.1: the first line and headers are UTF-8
    except UnicodeDecodeError:
        raise SipError(f"{what} is not UTF-8") from None
    if _CTL.search(text):
        raise SipError(f"control character in the {what}")
    return text


def _check_headers(message: SipMessage, body: bytes) -> None:
    for name in REQUIRED_HEADERS:
        count = len(message.headers.get_all(name))
        if count == 0:
            raise SipError(f"no {name} header")
        if count > 1 and name != "Via":
            raise SipError(f"more than one {name} header")
    _, method = cseq(message)
    if isinstance(message, SipRequest) and method != message.method:
        raise SipError(f"CSeq method {excerpt(method)} is not the request's")
    lengths = message.headers.get_all("Content-Length")
    if len(lengths) > 1:
        raise SipError("more than one Content-Length header")
    if lengths:
        if not _CONTENT_LENGTH.fullmatch(lengths[0]):
            raise SipError(f"bad Content-Length {excerpt(lengths[0])}")
        if int(lengths[0]) != len(body):
            raise SipError(f"Content-Length {int(lengths[0])} but the body has {len(body)} bytes")


def cseq(message: SipMessage) -> tuple[int, str]:
    """(sequence number, method) of the CSeq header (RFC 3261 s.20.16)."""
    value = message.headers.get("CSeq")
    match = _CSEQ.fullmatch(value or "")
    if match is None:
        raise SipError(f"bad CSeq {excerpt(value or '')}")
    number = int(match.group(1))
    if number > CSEQ_MAX:
        raise SipError("CSeq number over 2**31 - 1")
    return number, match.group(2)


def to_bytes(message: SipMessage) -> bytes:
    """The wire form; Content-Length always set from the body (required over TCP)."""
    if isinstance(message, SipRequest):
        first = f"{message.method} {message.uri} SIP/2.0"
    else:
        first = f"SIP/2.0 {message.status} {message.reason}"
    if _CTL.search(first):
        raise SipError("control character in the first line")
    lines = [first]
    lines += [f"{n}: {v}" for n, v in message.headers if n != "Content-Length"]
    lines.append(f"Content-Length: {len(message.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + message.body


def response_to(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> SipResponse:
    """A response to ``request`` (RFC 3261 s.8.2.6.2): its Via, From, To, Call-ID and CSeq,
    the To tag added when given and the To has none."""
    headers = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.get_all(name):
            if name == "To" and to_tag and header_param(value, "tag") is None:
                value = f"{value};tag={to_tag}"
            headers.add(name, value)
    if body or content_type:
        headers.add("Content-Type", content_type or "application/octet-stream")
    for name, value in extra:
        headers.add(name, value)
    return SipResponse(status, reason or REASONS.get(status, "Unknown"), headers, body)


def new_request(
    method: str,
    uri: str,
    *,
    local: LocalParty,
    to_uri: str,
    to_tag: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    transport: str = "UDP",
    body: bytes = b"",
    content_type: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> SipRequest:
    """A request from this service (RFC 3261 s.8.1.1): a new branch and From tag each time."""
    to = f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", f"SIP/2.0/{transport.upper()} {_hostport(local)};rport;branch={new_branch()}"),
            ("From", f"<sip:{local.sip_id}@{local.domain}>;tag={new_tag()}"),
            ("To", to),
            ("Call-ID", call_id or new_call_id()),
            ("CSeq", f"{cseq} {method}"),
            ("Max-Forwards", "70"),
            ("Contact", f"<sip:{local.sip_id}@{_hostport(local)}>"),
        ]
    )
    if body or content_type:
        headers.add("Content-Type", content_type or "application/octet-stream")
    for name, value in extra:
        headers.add(name, value)
    request = SipRequest(method, uri, headers, body)
    _first_line(f"{method} {uri} SIP/2.0".encode())  # refuses a bad method or URI now
    return request


def _hostport(local: LocalParty) -> str:
    host = f"[{local.host}]" if ":" in local.host else local.host
    return f"{host}:{local.port}"


def new_branch() -> str:
    """A Via branch: the RFC 3261 s.8.1.1.7 magic cookie, then enough randomness."""
    return "z9hG4bK" + secrets.token_hex(12)


def new_tag() -> str:
    return secrets.token_hex(8)


def new_call_id() -> str:
    return secrets.token_hex(16)


def name_addr_uri(value: str) -> str:
    """The URI of a From/To/Contact value: '"x" <sip:a@b>;tag=1' -> 'sip:a@b'."""
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end if end >= 0 else len(value)].strip()
    return value.split(";", 1)[0].strip()


def header_param(value: str, name: str) -> str | None:
    """A parameter of a header value (';tag=', ';branch=', ';expires='), unquoted; "" for one
    without a value, None when absent. Parameters inside <...> belong to the URI, not here."""
    close = value.rfind(">")
    params = value[close + 1 :] if close >= 0 else value.partition(";")[2]
    if close >= 0:
        params = params.partition(";")[2]
    for param in params.split(";"):
        key, equals, found = param.partition("=")
        if key.strip().lower() == name.lower():
            return found.strip().strip('"') if equals else ""
    return None


def uri_user(uri: str) -> str | None:
    """The user part of a SIP URI: 'sip:34020000001320000001@3402000000' -> the id."""
    scheme, colon, rest = name_addr_uri(uri).partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        return None
    user, at, _ = rest.partition("@")
    user = user.split(";", 1)[0].split(":", 1)[0]  # no password or user parameters
    return user if at and user else None
