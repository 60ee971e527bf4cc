"""Discovering a /24 through the service, and the bare UDP sweep beneath it, for ``bench.onvif``.

- :func:`discover_range`: an admin asks the running service to discover the /24
  (``POST /api/onvif/discovery``: unicast WS-Discovery probes at the configured rate, then
  every answering device inspected with the credentials given), then polls the run until
  it is done. The time is the client's, from the POST to the first poll that sees it done.
- :func:`udp_sweep`: the floor: the same WS-Discovery Probe sent from a plain UDP socket
  to every host of the /24 at the same rate, timed until the last probe is out and every
  simulated device's ProbeMatch is in (no parsing, no waiting for late answers, no
  inspection).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Collection
from typing import Any

import httpx
from wsdiscovery.actions.probe import constructProbe, createProbeMessage

POLL_S = 0.1
WSD_PORT = 3702  # WS-Discovery 1.1 s.2.4: the port probes go to
ANSWER_BYTES = 65_535


def discover_range(
    client: httpx.Client,
    subnet: str,
    credentials: tuple[str, str],
    timeout_s: float,
) -> dict[str, Any]:
    """One discovery run of ``subnet``.0/24 through the service's API, waited for."""
    body = {
        "targets": [f"{subnet}.0/24"],
        "multicast": False,
        "username": credentials[0],
        "password": credentials[1],
    }
    started = time.monotonic()
    response = client.post("/api/onvif/discovery", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"POST /api/onvif/discovery: HTTP {response.status_code}: "
                           f"{response.text[:300]}")  # fmt: skip
    run_id = response.json()["id"]
    run: dict[str, Any] = response.json()
    probing_s = None  # until the run stops probing: the sweep and the wait for late answers
    while run["state"] != "done":
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"discovery run {run_id} not done after {timeout_s:g} s")
        time.sleep(POLL_S)
        run = client.get(f"/api/onvif/discovery/{run_id}").json()
        if probing_s is None and run.get("phase") != "probing":
            probing_s = time.monotonic() - started
    seconds = time.monotonic() - started
    ours = [d for d in run["devices"] if _host(d).startswith(f"{subnet}.")]
    return {
        "seconds": seconds,
        "probing_s": probing_s,
        "service_elapsed_s": run.get("elapsed_s"),
        "probes_sent": run.get("probes_sent"),
        "devices": len(ours),
        "inspected_ok": sum(d.get("outcome") == "ok" for d in ours),
        "outcomes": sorted({str(d.get("outcome")) for d in ours}),
    }


def _host(device: dict[str, Any]) -> str:
    """The host of the device service URL the run reports."""
    return httpx.URL(str(device["device_url"])).host


def udp_sweep(
    subnet: str, expected: Collection[str], probes_per_s: float, answer_wait_s: float
) -> dict[str, Any]:
    """Probe hosts 1..254 of ``subnet`` at ``probes_per_s``; seconds until the last probe
    is out and every address of ``expected`` answered (None if some never did within
    ``answer_wait_s`` of the last probe)."""
    probe = createProbeMessage(constructProbe([], []))
    payload = probe.encode() if isinstance(probe, str) else probe
    answered: dict[str, float] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        started = time.monotonic()
        for n, host in enumerate(range(1, 255)):
            sock.sendto(payload, (f"{subnet}.{host}", WSD_PORT))
            _receive(sock, answered, until=started + (n + 1) / probes_per_s)
        last_probe = time.monotonic()
        while (
            not set(expected) <= answered.keys() and time.monotonic() < last_probe + answer_wait_s
        ):
            _receive(
                sock, answered, until=min(time.monotonic() + POLL_S, last_probe + answer_wait_s)
            )
    missing = set(expected) - answered.keys()
    return {
        "seconds": None if missing else max(last_probe, *(answered[a] for a in expected)) - started,
        "sweep_s": last_probe - started,
        "answered": len(set(expected) & answered.keys()),
        "probes_sent": 254,
    }


def _receive(sock: socket.socket, answered: dict[str, float], until: float) -> None:
    """Note each answer's source address and arrival until ``until``."""
    while (left := until - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            _, (address, _port) = sock.recvfrom(ANSWER_BYTES)
        except TimeoutError:
            return
        except ConnectionRefusedError:  # an ICMP port unreachable for an empty address
            continue
        answered.setdefault(address, time.monotonic())
