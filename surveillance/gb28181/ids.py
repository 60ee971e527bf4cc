"""GB/T 28181 identifiers: the 20-digit codes of platforms and channels, the camera ids this
service gives channels, and the SSRC an INVITE asks for.

GB/T 28181-2016 Annex D: an id is 20 digits: centre code (8, the civil code), industry (2),
type (3), network flag (1) and serial (6). Only the type decides what an item is.
"""

from __future__ import annotations

GB_ID_LENGTH = 20
VIDEO_CHANNEL_TYPES = frozenset({131, 132})  # camera, IP camera (Annex D.1)
BUSINESS_GROUP = 215
VIRTUAL_ORGANISATION = 216
CAMERA_ID_SEPARATOR = "."
SSRC_SERIALS = 10_000  # Annex F: the SSRC's last 4 digits


def is_gb_id(value: str) -> bool:
    """Exactly 20 ASCII digits (``str.isdigit`` alone would take other scripts' digits)."""
    return len(value) == GB_ID_LENGTH and value.isascii() and value.isdigit()


def type_code(gb_id: str) -> int:
    """Digits 11-13 of a 20-digit id: what the item is (131 camera, 215 business group...)."""
    if not is_gb_id(gb_id):
        raise ValueError("not a 20-digit GB/T 28181 id")
    return int(gb_id[10:13])


def camera_id(platform_id: str, channel_id: str) -> str:
    """The camera id a platform's channel gets: "<platform id>.<channel id>"."""
    return f"{platform_id}{CAMERA_ID_SEPARATOR}{channel_id}"


def split_camera_id(camera_id: str) -> tuple[str, str] | None:
    """(platform id, channel id) of a channel's camera id; None for any other camera id.

    Split at the last separator: a platform id may itself hold dots, a channel id never."""
    platform_id, separator, channel_id = camera_id.rpartition(CAMERA_ID_SEPARATOR)
    if not separator or not platform_id or not is_gb_id(channel_id):
        return None
    return platform_id, channel_id


def ssrc(domain: str, serial: int) -> str:
    """The 10-digit SSRC of a real-time stream (GB/T 28181-2016 Annex F): "0" for real time,
    digits 4-8 of the 10-digit domain, then a 4-digit serial."""
    if len(domain) != 10 or not (domain.isascii() and domain.isdigit()):
        raise ValueError("the SIP domain must be 10 digits")
    return "0" + domain[3:8] + f"{serial % SSRC_SERIALS:04d}"
