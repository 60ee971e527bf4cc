"""Child processes of a benchmark, each in its own session, all killed however the run ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

STOP_GRACE_S = 8.0  # SIGTERM, then this long before SIGKILL
REPO_ROOT = Path(__file__).resolve().parents[1]


def python_env(**extra: str) -> dict[str, str]:
    """This environment, plus ``extra``, with this checkout first on PYTHONPATH.

    ``bench`` is not an installed package: a child running ``python -m bench.x`` must find
    it whatever its working directory.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Children:
    """Every process the bench started; ``stop_all`` (or leaving the ``with``) ends them.

    Each child gets a new session, so its process group id is its pid: killing the group
    also ends anything it forked, and a Ctrl-C on the terminal reaches only the bench,
    which then cleans up in order instead of every child dying half-way at once.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def spawn(
        self,
        args: Sequence[str],
        *,
        log: Path | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        env: dict[str, str] | None = None,
        text: bool = False,
    ) -> subprocess.Popen[Any]:
        """Start ``args``; stderr (and stdout unless piped) go to ``log`` or nowhere."""
        sink: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            sink = log.open("ab")
        try:
            proc = subprocess.Popen(
                list(args),
                stdin=stdin,
                stdout=sink if stdout is None else stdout,
                stderr=sink,
                env=env,
                start_new_session=True,
                text=text,
            )
        finally:
            if not isinstance(sink, int):
                sink.close()  # the child has its own copy of the descriptor
        self._procs.append(proc)
        return proc

    def stop(self, procs: Iterable[subprocess.Popen[Any]], grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM each process group, wait up to ``grace_s`` in all, then SIGKILL what is left."""
        targets = [p for p in procs if p.poll() is None]
        for proc in targets:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in targets:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for proc in procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        done = {id(p) for p in procs}
        self._procs = [p for p in self._procs if id(p) not in done]

    def stop_all(self) -> None:
        self.stop(list(self._procs))


def _signal_group(proc: subprocess.Popen[Any], sig: signal.Signals) -> None:
    # Only called before the leader is reaped: until then its pid (= the group id) cannot
    # have been reused by someone else's process.
    # ProcessLookupError: already gone; PermissionError: a zombie group on some kernels.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def unwind_on_termination() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` stops its processes."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
