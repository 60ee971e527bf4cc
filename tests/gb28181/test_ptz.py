"""PTZCmd (GB/T 28181-2016 Annex A.3) against worked examples derived by hand.

Byte layout (A.3.1), each example below written out byte by byte:
    0: A5   1: 0F = version 0 << 4 | (0xA + 0x5 + 0) mod 16   2: 01 address low 8 bits
    3: instruction (bit 5 zoom out, 4 zoom in, 3 up, 2 down, 1 left, 0 right; presets 81/82/83)
    4: pan speed / 00   5: tilt speed / preset number   6: zoom speed << 4 | address high 4 bits
    7: (byte 0 + ... + byte 6) mod 256
"""

from __future__ import annotations

import math

import pytest

from surveillance.gb28181.ptz import preset_command, ptz_command

WORKED_MOVES = [
    # stop:            A5 0F 01 00 00 00 00 -> 0xA5+0x0F+0x01 = 0xB5
    ((0.0, 0.0, 0.0), "A50F0100000000B5"),
    # right, full:     A5 0F 01 01 FF 00 00 -> 165+15+1+1+255 = 437 = 0x1B5 -> B5
    ((1.0, 0.0, 0.0), "A50F0101FF0000B5"),
    # left 0.2 (51 = 0x33) + up full (FF) + zoom out full (F -> F0):
    #   instruction 0x02 | 0x08 | 0x20 = 0x2A
    #   A5 0F 01 2A 33 FF F0 -> 165+15+1+42+51+255+240 = 769 = 3*256 + 1 -> 01
    ((-0.2, 1.0, -1.0), "A50F012A33FFF001"),
    # down 0.6 (153 = 0x99) + zoom in 0.4 (6 -> 0x60): instruction 0x04 | 0x10 = 0x14
    #   A5 0F 01 14 00 99 60 -> 165+15+1+20+0+153+96 = 450 = 256 + 194 -> C2
    ((0.0, -0.6, 0.4), "A50F0114009960C2"),
    # a tiny pan right still moves, at speed 1: A5 0F 01 01 01 00 00 -> 183 = 0xB7
    ((0.001, 0.0, 0.0), "A50F0101010000B7"),
]


@pytest.mark.parametrize(("axes", "expected"), WORKED_MOVES)
def test_moves_match_the_hand_derived_bytes(
    axes: tuple[float, float, float], expected: str
) -> None:
    pan, tilt, zoom = axes
    assert ptz_command(pan=pan, tilt=tilt, zoom=zoom) == expected


def test_presets_match_the_hand_derived_bytes() -> None:
    # go to 3:   A5 0F 01 82 00 03 00 -> 165+15+1+130+0+3 = 314 = 256 + 58 -> 3A
    assert preset_command("goto", 3) == "A50F01820003003A"
    # set 255:   A5 0F 01 81 00 FF 00 -> 165+15+1+129+255 = 565 = 512 + 53 -> 35
    assert preset_command("set", 255) == "A50F018100FF0035"
    # remove 1:  A5 0F 01 83 00 01 00 -> 165+15+1+131+1 = 313 = 256 + 57 -> 39
    assert preset_command("remove", 1) == "A50F018300010039"


def test_every_command_has_the_fixed_head_and_a_right_checksum() -> None:
    steps = [-1.0, -0.5, -0.01, 0.0, 0.3, 1.0]
    commands = [ptz_command(pan=p, tilt=t, zoom=z) for p in steps for t in steps for z in steps]
    commands += [preset_command(a, n) for a in ("set", "goto", "remove") for n in (1, 128, 255)]
    for command in commands:
        data = bytes.fromhex(command)
        assert len(data) == 8 and command == command.upper()
        assert data[:3] == b"\xa5\x0f\x01"
        assert data[6] & 0x0F == 0  # address high nibble
        assert data[7] == sum(data[:7]) % 256
        if data[3] < 0x40:  # a move: never both directions of one axis
            assert data[3] & 0x03 != 0x03 and data[3] & 0x0C != 0x0C and data[3] & 0x30 != 0x30


@pytest.mark.parametrize("bad", [1.01, -1.5, math.nan, math.inf, -math.inf])
def test_speeds_outside_minus_one_to_one_are_refused(bad: float) -> None:
    for axes in ({"pan": bad, "tilt": 0, "zoom": 0}, {"pan": 0, "tilt": bad, "zoom": 0}):
        with pytest.raises(ValueError, match=r"within -1\.\.1"):
            ptz_command(**axes)
    with pytest.raises(ValueError, match=r"within -1\.\.1"):
        ptz_command(pan=0, tilt=0, zoom=bad)


@pytest.mark.parametrize(
    ("action", "number"), [("goto", 0), ("set", 256), ("set", True), ("delete", 1)]
)
def test_bad_presets_are_refused(action: str, number: int) -> None:
    with pytest.raises(ValueError, match="preset"):
        preset_command(action, number)
