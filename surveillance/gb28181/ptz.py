"""PTZCmd: the 8-byte front-end control command of GB/T 28181-2016 Annex A.3, written as
the 16 hex digits a DeviceControl body carries (manscdp.device_control).

The layout (A.3.1; the standard counts bytes from 1, the code below from 0):

    byte 1  0xA5        the command's first byte
    byte 2  0x0F        combination code 1: high nibble the version (0), low nibble a check
                        over the nibbles before it: (0xA + 0x5 + version) mod 16 = 0xF
    byte 3  0x01        the address's low 8 bits (1: the channel the SIP request names)
    byte 4  instruction (below)
    byte 5  data 1      PTZ: pan speed 0x00-0xFF;  preset: 0x00
    byte 6  data 2      PTZ: tilt speed 0x00-0xFF; preset: its number 0x01-0xFF
    byte 7  data 3 | combination code 2: high nibble the zoom speed 0x0-0xF, low nibble the
                        address's high 4 bits (0)
    byte 8  checksum    (byte 1 + ... + byte 7) mod 256

PTZ instruction byte (A.3.2): bits 7-6 are 00; bit 5 zoom out (wide), bit 4 zoom in (tele),
bit 3 tilt up, bit 2 tilt down, bit 1 pan left, bit 0 pan right; 0x00 stops every motion.
Preset instructions (A.3, the preset commands): 0x81 set, 0x82 go to, 0x83 remove.
"""

from __future__ import annotations

import math

PREFIX = 0xA5
VERSION = 0x0
ADDRESS = 0x001  # 12 bits over bytes 3 and 7; the SIP request already addresses the channel

ZOOM_OUT = 0x20
ZOOM_IN = 0x10
TILT_UP = 0x08
TILT_DOWN = 0x04
PAN_LEFT = 0x02
PAN_RIGHT = 0x01

PRESET_INSTRUCTIONS = {"set": 0x81, "goto": 0x82, "remove": 0x83}
PRESET_MAX = 255
PAN_TILT_SPEED_MAX = 0xFF
ZOOM_SPEED_MAX = 0xF


def ptz_command(*, pan: float, tilt: float, zoom: float) -> str:
    """Move continuously until the next command: each axis -1..1, its sign the direction
    (pan > 0 right, tilt > 0 up, zoom > 0 in/tele) and its size the speed; 0, 0, 0 stops."""
    instruction = (
        _bit(pan, PAN_RIGHT, PAN_LEFT)
        | _bit(tilt, TILT_UP, TILT_DOWN)
        | _bit(zoom, ZOOM_IN, ZOOM_OUT)
    )
    return _command(
        instruction,
        _speed(pan, PAN_TILT_SPEED_MAX),
        _speed(tilt, PAN_TILT_SPEED_MAX),
        _speed(zoom, ZOOM_SPEED_MAX),
    )


def preset_command(action: str, number: int) -> str:
    """Set, go to or remove preset ``number`` (1..255)."""
    instruction = PRESET_INSTRUCTIONS.get(action)
    if instruction is None:
        raise ValueError(f"preset action {action!r} is not one of {sorted(PRESET_INSTRUCTIONS)}")
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= PRESET_MAX:
        raise ValueError(f"preset number must be 1..{PRESET_MAX}")
    return _command(instruction, 0x00, number, 0x0)


def _command(instruction: int, data1: int, data2: int, data3: int) -> str:
    combination1 = (VERSION << 4) | ((PREFIX >> 4) + (PREFIX & 0xF) + VERSION) % 16
    combination2 = (ADDRESS >> 8) & 0xF
    head = bytes(
        [
            PREFIX,
            combination1,
            ADDRESS & 0xFF,
            instruction,
            data1,
            data2,
            (data3 << 4) | combination2,
        ]
    )
    return (head + bytes([sum(head) % 256])).hex().upper()


def _check(value: float) -> None:
    if not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise ValueError(f"a PTZ speed must be within -1..1, not {value!r}")


def _bit(value: float, positive: int, negative: int) -> int:
    _check(value)
    return positive if value > 0 else negative if value < 0 else 0


def _speed(value: float, top: int) -> int:
    # A small but non-zero request still moves: speed 0 with a direction bit set is
    # "move at speed 0", which cameras take as standing still.
    return 0 if value == 0 else max(1, round(abs(value) * top))
