"""Names people give things (cameras, platforms, tags, layouts, tours) that other people read.

Unicode's bidirectional embedding, override and isolate controls (UAX #9, section 2: U+202A
to U+202E and U+2066 to U+2069) reorder the text after them: "invoice\\u202Egnp.exe" is
drawn as "invoiceexe.png". A name has no use for them (right-to-left script is laid out
right to left without any), so they are refused where a name is made, and stripped from names
that come from other systems. The marks U+200E and
U+200F only set the direction of neutral characters next to them and are allowed.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def refuse_bidi_controls(value: str) -> str:
    """``value``, or ValueError naming the first bidirectional control character in it."""
    for char in value:
        if char in BIDI_CONTROLS:
            raise ValueError(
                f"contains U+{ord(char):04X} ({unicodedata.name(char)}), a bidirectional "
                "control that would reorder how the name is drawn; remove it"
            )
    return value


def strip_bidi_controls(value: str) -> str:
    """``value`` without its bidirectional controls: for names that come from elsewhere
    (a GB/T 28181 platform's catalog), where refusing would lose the whole item."""
    if not BIDI_CONTROLS.intersection(value):
        return value
    return "".join(char for char in value if char not in BIDI_CONTROLS)


DisplayName = Annotated[str, AfterValidator(refuse_bidi_controls)]
