"""``surveillance-sim onvif`` serves devices until SIGTERM; bad arguments exit 2."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from onvif import ONVIFCamera

from tests.onvif_net import test_subnet

SUBNET = test_subnet()
COMMAND = [sys.executable, "-m", "surveillance.simulator.onvif_cli", "onvif"]


def test_bad_arguments_exit_2() -> None:
    for bad in (["--subnet", "10.0.0"], ["--fault", "0=melted"], ["--clock-offset", "x=1"]):
        done = subprocess.run([*COMMAND, *bad], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, bad


async def test_serves_devices_with_the_password_from_the_environment() -> None:
    env = {**os.environ, "ONVIF_SIM_PASSWORD": "from-env"}
    args = ["--subnet", SUBNET, "--first-host", "41", "--count", "2", "--port", "8084"]
    args += ["--no-pictures", "--fault", "1=hang", "--clock-offset", "0=-90"]
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        lines = [(await process.stdout.readline()).decode() for _ in range(3)]
        assert lines[0].startswith(f"http://{SUBNET}.41:8084/onvif/device_service ptz ")
        assert lines[1].startswith(f"http://{SUBNET}.42:8084/onvif/device_service hang ")
        assert lines[2].startswith("serving 2 ONVIF devices")
        assert "from-env" not in "".join(lines)
        camera = ONVIFCamera(
            f"{SUBNET}.41", 8084, "admin", "from-env", adjust_time=True, no_cache=True
        )
        try:
            await camera.update_xaddrs()
            assert camera.dt_diff is not None and camera.dt_diff.total_seconds() == pytest.approx(
                -90, abs=5
            )
            info = await (await camera.create_devicemgmt_service()).GetDeviceInformation()
            assert info.Model == "SimPTZ"
        finally:
            await camera.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
