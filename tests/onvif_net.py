"""Loopback addresses for simulated ONVIF devices, one subnet per pytest-xdist worker.

Every 127.x.y.z address is on ``lo``, so each device gets its own address and all can use
the same ports. Two workers may run fleets at once: each takes its own /24 (and a test
asserts on its own subnet's devices only, since another worker's devices may answer a
multicast probe too).
"""

from __future__ import annotations

import os

BASE_THIRD_OCTET = 76  # 127.0.76 without xdist, 127.0.77 for gw0, 127.0.78 for gw1, ...


def test_subnet() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    number = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    return f"127.0.{BASE_THIRD_OCTET + number}"


test_subnet.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
