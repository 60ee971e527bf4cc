"""The simulated GB/T 28181 platform's own minimal SIP: message text, digest answers, SDP.

Deliberately independent of ``surveillance.gb28181``: the service's SIP stack and this one
are two implementations written apart, and the tests make them talk to each other, so a
misreading of RFC 3261 in one shows up as a failure instead of being shared by both.
Only what a lower platform needs: parse a message (RFC 3261 s.7), build requests and
responses, answer a digest challenge (RFC 2617 s.3.2.2, MD5, qop=auth), read an SDP offer
and write the answer (GB/T 28181-2016 Annex F).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
}
MAX_HEADERS = 100


class SipParseError(ValueError):
    """Not a SIP message this platform can read."""


@dataclass
class Message:
    """A request (``method`` set) or a response (``status`` set); headers in order, lowercase
    names; ``header`` returns the first value."""

    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def method(self) -> str | None:
        first = self.start.split(" ", 1)[0]
        return None if first.startswith("SIP/") else first

    @property
    def uri(self) -> str:
        return self.start.split(" ")[1]

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1]) if self.method is None else 0

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def replace(self, name: str, value: str) -> None:
        """Set every ``name`` header (lowercase) to ``value``, in place."""
        self.headers = [(n, value if n == name else v) for n, v in self.headers]

    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("cseq") or "0 ?").split()
        return int(number), method

    def to_bytes(self) -> bytes:
        lines = [self.start]
        lines += [f"{_title(n)}: {v}" for n, v in self.headers if n != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _title(name: str) -> str:
    special = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}
    return special.get(name, "-".join(part.capitalize() for part in name.split("-")))


def parse(data: bytes) -> Message:
    """One message; the body is what Content-Length says (RFC 3261 s.18.3)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no end of headers")
    lines = head.decode("utf-8", errors="replace").split("\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise SipParseError("too many headers")
    message = Message(lines[0])
    if not (lines[0].startswith("SIP/2.0 ") or lines[0].endswith(" SIP/2.0")):
        raise SipParseError("not a SIP start line")
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or line[:1] in (" ", "\t"):
            raise SipParseError("bad header line")
        name = name.strip().lower()
        message.headers.append((COMPACT.get(name, name), value.strip()))
    length = int(message.header("content-length") or 0)
    if length > len(rest):
        raise SipParseError("body shorter than Content-Length")
    message.body = rest[:length]
    return message


def frame_length(buffer: bytes) -> int | None:
    """How long the first message in a TCP byte stream is, or None if it is not all there."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", buffer[:end])
    total = end + 4 + (int(match.group(1)) if match else 0)
    return total if len(buffer) >= total else None


def new_tag() -> str:
    return secrets.token_hex(4)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)  # RFC 3261 s.8.1.1.7 magic cookie


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(8)}@{host}"


def response(
    request: Message,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Message:
    """A response copying Via, From, To (plus our tag), Call-ID, CSeq (RFC 3261 s.8.2.6.2)."""
    out = Message(f"SIP/2.0 {status} {reason}")
    for name in ("via", "from", "to", "call-id", "cseq"):
        for value in request.all(name):
            if name == "to" and to_tag and ";tag=" not in value:
                value = f"{value};tag={to_tag}"
            out.headers.append((name, value))
    out.headers.append(("user-agent", "surveillance-gb-simulator"))
    out.headers += extra or []
    if content_type:
        out.headers.append(("content-type", content_type))
    out.body = body
    return out


def param(value: str, name: str) -> str | None:
    match = re.search(rf";\s*{name}=([^;>\s]+)", value, re.IGNORECASE)
    return match.group(1) if match else None


def uri_user(value: str) -> str | None:
    match = re.search(r"sips?:([^@;>]+)@", value)
    return match.group(1) if match else None


def digest_answer(
    challenge: str, *, username: str, password: str, method: str, uri: str, nc: int = 1
) -> str:
    """The Authorization value answering a WWW-Authenticate challenge (RFC 2617 s.3.2.2)."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.removeprefix("Digest").strip()))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    algorithm = fields.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise SipParseError(f"digest algorithm {algorithm[:20]!r} is not supported")
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in fields.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        cnonce, count = secrets.token_hex(8), f"{nc:08x}"
        answer = _md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += [f'response="{answer}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:  # RFC 2069 compatibility, RFC 2617 s.3.2.2.1
        parts.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append("algorithm=MD5")
    if "opaque" in fields:
        parts.append(f'opaque="{fields["opaque"]}"')
    return "Digest " + ", ".join(parts)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Offer:
    """What the upper platform's INVITE asks for (GB/T 28181-2016 Annex F)."""

    session: str  # s=: "Play" (live), "Playback", "Download"
    host: str
    port: int
    tcp: bool
    setup: str | None  # "active" / "passive": the OFFERER's role (RFC 4145)
    ssrc: str | None


def parse_offer(text: str) -> Offer:
    values: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "a":
            name, _, attr = value.partition(":")
            attributes[name] = attr
        elif key and key not in values:
            values[key] = value
    media = values.get("m", "").split()
    connection = values.get("c", "").split()
    if len(media) < 3 or len(connection) < 3 or not media[1].isdigit():
        raise SipParseError("the offer has no usable m= or c= line")
    return Offer(
        session=values.get("s", ""),
        host=connection[2],
        port=int(media[1]),
        tcp=media[2].upper().startswith("TCP"),
        setup=attributes.get("setup"),
        ssrc=values.get("y"),
    )


def answer_sdp(
    *, channel_id: str, host: str, port: int, tcp: bool, setup: str | None, ssrc: str
) -> str:
    """The 200's SDP: sendonly PS at 90 kHz, the opposite TCP role, y= our SSRC."""
    proto = "TCP/RTP/AVP" if tcp else "RTP/AVP"
    lines = [
        "v=0",
        f"o={channel_id} 0 0 IN IP4 {host}",
        "s=Play",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=video {port} {proto} 96",
        "a=sendonly",
        "a=rtpmap:96 PS/90000",
    ]
    if tcp:
        lines += [f"a=setup:{'active' if setup == 'passive' else 'passive'}", "a=connection:new"]
    lines += [f"y={ssrc}", "f="]
    return "\r\n".join(lines) + "\r\n"
