"""PTZ trials for ``bench.onvif``: command to device, and command to moved picture.

Every time is on this machine's monotonic clock, which the simulated devices (in this
process, engineer A's OnvifFleet) stamp each request they handle with
(``SimulatedDevice.commands()``); the service is another process on the same clock.

- :func:`command_trials`: a move, then a stop, then a move the other way... each timed from
  just before it is sent to the device's stamp of the matching ONVIF request.
- :func:`picture_trials`: the device jumps to the same start (AbsoluteMove straight to it,
  outside the timing), the picture settles, then a full-speed pan starts; timed to the first
  received picture that shows a moved view (bench/onvif_frames.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from bench.onvif_direct import DirectPtz
from bench.onvif_frames import FrameWatch

COMMAND_WAIT_S = 10.0  # a command the device never sees is reported, not waited for longer
GAP_S = 0.15  # between commands: a held button refreshes every 0.4 s, a click is sparser
PICTURE_WAIT_S = 5.0
SETTLE_S = 0.5  # after the jump: the new view reaches every reader
STILL_WINDOW_S = 0.4  # the pictures of this last while must all be the same view
STILL_TIMEOUT_S = 10.0
START = (-0.6, 0.0, 0.0)  # where each picture trial starts: room to pan right
SPEED = 0.5  # velocity of the command trials (any non-zero speed; stops alternate)

MOVE, STOP = "ContinuousMove", "Stop"


class Device(Protocol):
    """What the trials use of a simulated device (surveillance/simulator/onvif_device.py)."""

    def commands(self) -> list[Any]: ...


Sender = Callable[[float], None]  # sends a pan velocity (0 = stop)


def service_sender(client: httpx.Client, camera_id: str) -> Sender:
    """Steer as the wall does: ``POST /api/cameras/{id}/ptz`` (all zero = stop)."""

    def send(pan: float) -> None:
        response = client.post(f"/api/cameras/{camera_id}/ptz", json={"pan": pan, "tilt": 0.0,
                                                                       "zoom": 0.0})  # fmt: skip
        if response.status_code != 204:
            raise RuntimeError(f"PTZ command to {camera_id}: HTTP {response.status_code}: "
                               f"{response.text[:300]}")  # fmt: skip

    return send


def direct_sender(direct: DirectPtz) -> Sender:
    """Steer straight with onvif-zeep-async (the baseline)."""

    def send(pan: float) -> None:
        if pan:
            direct.move(pan, timeout_s=2.0)
        else:
            direct.stop()

    return send


def command_trials(send: Sender, device: Device, trials: int) -> list[float | None]:
    """Milliseconds from sending to the device having each command (None: never seen)."""
    found: list[float | None] = []
    for n in range(trials):
        pan = 0.0 if n % 2 else (SPEED if n % 4 == 0 else -SPEED)
        sent = time.monotonic()
        send(pan)
        at = _device_stamp(device, STOP if pan == 0 else MOVE, sent)
        found.append(None if at is None else (at - sent) * 1000)
        time.sleep(GAP_S)
    return found


def _device_stamp(device: Device, operation: str, after: float) -> float | None:
    deadline = time.monotonic() + COMMAND_WAIT_S
    while time.monotonic() < deadline:
        for command in device.commands():
            if command.operation == operation and command.at_monotonic >= after:
                return float(command.at_monotonic)
        time.sleep(0.002)
    return None


def picture_trials(
    send: Sender, watch: FrameWatch, direct: DirectPtz, trials: int
) -> list[float | None]:
    """Milliseconds from a full-speed pan command to the first moved picture ``watch``
    receives (None: no moved picture within PICTURE_WAIT_S)."""
    found: list[float | None] = []
    for _ in range(trials):
        direct.jump(*START)
        time.sleep(SETTLE_S)
        _wait_still(watch)
        sent = time.monotonic()
        send(1.0)
        moved = watch.moved_after(sent, PICTURE_WAIT_S)
        send(0.0)
        found.append(None if moved is None else moved * 1000)
    return found


def _wait_still(watch: FrameWatch) -> None:
    deadline = time.monotonic() + STILL_TIMEOUT_S
    while not watch.still(time.monotonic() - STILL_WINDOW_S):
        if watch.error:
            raise RuntimeError(f"the picture reader stopped: {watch.error}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the picture did not settle within {STILL_TIMEOUT_S:g} s")
        time.sleep(0.05)
