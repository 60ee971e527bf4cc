"""A fleet splits mounts over server processes; each mount is reached on its own server."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from surveillance.simulator import ClipSpec, MountSpec, SimulatorFleet
from tests.conftest import CLIP_CACHE

pytestmark = pytest.mark.rtsp

CLIP = ClipSpec(width=320, height=180, bitrate_kbps=300, seconds=2.0, gop_s=1.0)


def first_packet_size(url: str) -> int:
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=5) as container:
        for packet in container.demux(video=0):
            if packet.size:
                return int(packet.size)
    raise AssertionError("no packet")


def test_fleet_spreads_mounts_over_processes_and_routes_urls(tmp_path: Path) -> None:
    mounts = [MountSpec(f"m{i}", CLIP) for i in range(5)]
    with SimulatorFleet(mounts, clip_dir=CLIP_CACHE, mounts_per_process=2) as fleet:
        assert len(fleet.servers) == 3 and len(set(fleet.pids)) == 3
        assert len(set(fleet.ports)) == 3
        urls = [fleet.url(m.path) for m in mounts]
        assert urls[0].rsplit(":", 1)[1].split("/")[0] == urls[1].rsplit(":", 1)[1].split("/")[0]
        assert urls[0] != urls[2]
        assert first_packet_size(urls[4]) > 0
        fleet.fault("m4", "refuse")
        with pytest.raises(av.FFmpegError):
            first_packet_size(urls[4])
        fleet.fault("m4", "resume")
        assert first_packet_size(fleet.url("m3")) > 0
    assert fleet.pids == []
