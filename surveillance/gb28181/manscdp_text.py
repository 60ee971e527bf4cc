"""The characters of a MANSCDP body: which encoding its bytes are in, read from its XML
declaration, with the one fallback real platforms need.

GB/T 28181-2016 Annex A declares bodies GB2312; platforms also write GBK or GB18030, and
all three are read as GB18030, the superset of both (the same bytes mean the same
characters). UTF-8 is the XML default (no declaration). Any other declared encoding is
refused: nothing in the field sends one, and a decoder we do not know is one more thing for
hostile input to reach.

The fallback: many platforms declare GB2312 and send UTF-8. A body declared GB-something is
therefore read as UTF-8 when it is valid UTF-8, else as GB18030. Real GB2312 text is valid
UTF-8 only by accident: the lead bytes of the commonest 1,500-odd characters (0xB0-0xC1)
cannot start a UTF-8 sequence at all, and the others must line up with continuation bytes
character after character, so any name of a few characters settles it; the reverse test
(GB18030 first) would not work, since GB18030 decodes most UTF-8 Chinese text as other,
wrong characters without an error. The same holds the other way for a body with no
declaration: UTF-8 if it is valid, else GB18030 (a GB2312 platform that forgot to say so).
A body that declares UTF-8 explicitly and is not valid UTF-8 is refused.
"""

from __future__ import annotations

import re

GB_ENCODINGS = frozenset({"gb2312", "gbk", "gb18030", "gb_2312-80", "cp936", "euc-cn", "x-gbk"})
UTF8_ENCODINGS = frozenset({"utf-8", "utf8"})
UTF8_BOM = b"\xef\xbb\xbf"

# The encoding pseudo-attribute of an XML declaration (XML 1.0 s.4.3.3), within the first
# bytes; leading white space tolerated (some platforms send a CRLF first).
_DECLARATION = re.compile(
    rb"\s*<\?xml\s[^>]{0,200}?\bencoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]{0,39})[\"']"
)


class ManscdpError(ValueError):
    """A MANSCDP body that cannot be read; the message says what, quoting at most a few
    characters of it."""


def declared_encoding(body: bytes) -> str | None:
    """The encoding the XML declaration names, lower case; None when it names none."""
    match = _DECLARATION.match(body[:300])
    return match.group(1).decode("ascii").lower() if match else None


def decode_body(body: bytes) -> str:
    """The body's text (see the module's docstring for which encoding is used when)."""
    if body.startswith(UTF8_BOM):
        # The byte order mark is unambiguous; a declaration saying otherwise is the mistake.
        return _decode(body[len(UTF8_BOM) :], "utf-8")
    declared = declared_encoding(body)
    if body.isascii():
        if declared is not None and declared not in GB_ENCODINGS | UTF8_ENCODINGS:
            raise ManscdpError(f"encoding {declared!r} is not GB2312/GBK/GB18030 or UTF-8")
        return body.decode("ascii")
    if declared is None or declared in GB_ENCODINGS:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return _decode(body, "gb18030")
    if declared in UTF8_ENCODINGS:
        return _decode(body, "utf-8")
    raise ManscdpError(f"encoding {declared!r} is not GB2312/GBK/GB18030 or UTF-8")


def _decode(body: bytes, encoding: str) -> str:
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ManscdpError(f"not valid {encoding.upper()} at byte {exc.start}") from None
