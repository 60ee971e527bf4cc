"""Many simulated cameras across several RTSP server processes.

One GStreamer RTSP server process stops keeping up somewhere past sixty TCP clients at
2 Mbit/s: measured here with one ``ffmpeg -c copy`` client per mount, 67 of 100 streams
arrived at full frame rate from one process, 99 of 100 from four processes of 25 mounts,
and 195 of 200 from eight. The server is not out of CPU when this happens; each process
serves its clients from one main loop. So large sets are split into processes of
``mounts_per_process`` mounts, each on its own port.

Shared mounts (``MountSpec.shared``) share a media only with mounts in the same process,
and one process serves hundreds of them (300 cameras at 2 Mbit/s, every one at full rate,
for a tenth of a core: ``python -m bench.simulator_cpu 300 --shared``): give them a
``mounts_per_process`` that keeps them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from surveillance.simulator.server import FaultKind, MountSpec, Simulator, SimulatorError

MOUNTS_PER_PROCESS = 25


class SimulatorFleet:
    def __init__(
        self,
        mounts: Sequence[MountSpec],
        *,
        clip_dir: Path,
        host: str = "127.0.0.1",
        mounts_per_process: int = MOUNTS_PER_PROCESS,
    ) -> None:
        if mounts_per_process < 1:
            raise SimulatorError("mounts_per_process must be at least 1")
        paths = [m.path.strip("/") for m in mounts]
        if len(set(paths)) != len(paths):
            raise SimulatorError("mount paths must be unique")
        chunks = [
            mounts[i : i + mounts_per_process] for i in range(0, len(mounts), mounts_per_process)
        ]
        self.servers = [Simulator(chunk, clip_dir=clip_dir, host=host) for chunk in chunks]
        self._server_of = {
            mount.path.strip("/"): server
            for server, chunk in zip(self.servers, chunks, strict=True)
            for mount in chunk
        }

    def __enter__(self) -> SimulatorFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server(self, path: str) -> Simulator:
        server = self._server_of.get(path.strip("/"))
        if server is None:
            raise SimulatorError(f"no mount {path!r}")
        return server

    def start(self, timeout_s: float = 60) -> None:
        try:
            for server in self.servers:
                server.start(timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server, even when stopping one of them fails."""
        errors: list[BaseException] = []
        for server in self.servers:
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise SimulatorError(f"{len(errors)} server(s) failed to stop: {errors[0]}")

    def url(self, path: str, *, credentials: bool = True) -> str:
        return self._server(path).url(path, credentials=credentials)

    def fault(self, path: str, kind: FaultKind) -> None:
        self._server(path).fault(path, kind)

    @property
    def pids(self) -> list[int]:
        """Process ids of the servers that are running (a dead one is left out)."""
        return [pid for server in self.servers if (pid := server.pid) is not None]

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def status(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for server in self.servers:
            merged.update(server.status())
        return merged
