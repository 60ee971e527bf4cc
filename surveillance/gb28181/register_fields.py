"""The fields of a REGISTER and its 200 that need more than a lookup: the seconds asked for
(RFC 3261 s.10.2.1.1, s.20.19) and the Date GB/T 28181 platforms set their clocks by."""

from __future__ import annotations

import re
from datetime import datetime

from surveillance.gb28181.sip_message import SipRequest, header_param

DEFAULT_EXPIRES_S = 3600  # RFC 3261 s.10.2.1.1: a REGISTER without Expires asks for 3600 s
MAX_EXPIRES_S = 2**32 - 1  # RFC 3261 s.20.19: larger values are taken as this
_DELTA_SECONDS = re.compile(r"[0-9]{1,30}")


def register_expires(request: SipRequest) -> tuple[int | None, str]:
    """The seconds a REGISTER asks for (RFC 3261 s.10.2.1.1: the Contact's expires parameter,
    else the Expires header, else 3600) and the text given; None when that text is not a
    number of seconds (negative, a word)."""
    for value in (header_param(request.headers.get("Contact") or "", "expires"),
                  request.headers.get("Expires")):  # fmt: skip
        if value is not None:
            text = value.strip()
            if not _DELTA_SECONDS.fullmatch(text):
                return None, text
            return min(int(text), MAX_EXPIRES_S), text
    return DEFAULT_EXPIRES_S, ""


def gb_date(now: float) -> str:
    """GB/T 28181-2016 s.9.10.2: the 200 to REGISTER carries the time platforms set their
    clocks by, local time without a zone (as the platforms of one region keep it)."""
    return datetime.fromtimestamp(now).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
