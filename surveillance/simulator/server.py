"""Run the GStreamer RTSP camera simulator (``gst_server.py``) from the venv, and steer it.

The server runs under Debian's system Python, which has GStreamer's introspection bindings;
the venv does not. This module generates the clips, writes the JSON spec, spawns the server,
and talks to it over the JSON-lines control channel on its stdin/stdout.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import av

from surveillance.simulator.clips import ClipSpec, ensure_clip
from surveillance.simulator.ptz_scene import scene_size, view_crop

GST_PYTHON_ENV = "SURVEILLANCE_GST_PYTHON"  # interpreter with gi + GstRtspServer
DEFAULT_GST_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"
)
COMMAND_TIMEOUT_S = 10.0  # one control-channel round trip
STDERR_TAIL_CHARS = 2000  # of the server's stderr, quoted in a start failure

FaultKind = Literal["refuse", "drop", "stall", "resume"]

_GST_SERVER = Path(__file__).with_name("gst_server.py")
_PROBE = (
    "import gi\n"
    "gi.require_version('Gst', '1.0')\n"
    "gi.require_version('GstApp', '1.0')\n"
    "gi.require_version('GstRtsp', '1.0')\n"
    "gi.require_version('GstRtspServer', '1.0')\n"
    "from gi.repository import Gst, GstApp, GstRtsp, GstRtspServer\n"
    "Gst.init(None)\n"
    "missing = [e for e in ('appsrc', 'appsink', 'qtdemux', 'h264parse', 'h265parse',\n"
    "           'rtph264pay', 'rtph265pay') if Gst.ElementFactory.find(e) is None]\n"
    "assert not missing, missing\n"
)


class SimulatorError(RuntimeError):
    """The simulator failed to start, or a command to it failed."""


class SimulatorUnavailable(SimulatorError):
    """No Python with GStreamer's RTSP server bindings is installed on this machine."""


@dataclass(frozen=True)
class MountSpec:
    """One simulated camera: an RTSP path serving a generated or recorded clip in a loop, or
    a PTZ camera's live picture (``ptz_scene``: no clip)."""

    path: str
    # A generated spec, or a recorded file such as ../shared/footage/*.mp4; None with ptz_scene.
    clip: ClipSpec | Path | None = None
    username: str | None = None
    password: str | None = None
    params_in_sdp_only: bool = False  # SPS/PPS only in the SDP, never in the stream
    start_offset_s: float = 0.0  # start the loop at the first keyframe at/after this point
    # Serve it from one media (one pipeline, payloaded once) with every other shared mount
    # of the same clip, start offset and credentials: what lets one simulator process feed
    # hundreds of cameras. Its own "stall" is refused then, since it would stall them all.
    shared: bool = False
    # A PTZ camera: the wide scene's PNG (ptz_scene.write_scene), cropped live to the view
    # Simulator.view sets, scaled to ptz_size and encoded as H.264 at ptz_fps (always one
    # shared pipeline per mount; params_in_sdp_only, start_offset_s and shared do not apply).
    ptz_scene: Path | None = None
    ptz_size: tuple[int, int] = (640, 360)
    ptz_fps: int = 10

    def __post_init__(self) -> None:
        if (self.clip is None) == (self.ptz_scene is None):
            raise SimulatorError(f"mount {self.path!r}: give either a clip or a ptz_scene")
        width, height = self.ptz_size
        if width < 16 or height < 16 or width % 2 or height % 2 or not 1 <= self.ptz_fps <= 60:
            raise SimulatorError(
                f"mount {self.path!r}: ptz_size {self.ptz_size} must be even and at least "
                f"16x16, ptz_fps {self.ptz_fps} 1..60"
            )


@functools.cache
def _probe_gst_python(python: str) -> str | None:
    """None if ``python`` can run the server, else why not."""
    try:
        result = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {result.returncode}"
    return None


def find_gst_python() -> str:
    """The interpreter that runs ``gst_server.py``: $SURVEILLANCE_GST_PYTHON or Debian's python3."""
    override = os.environ.get(GST_PYTHON_ENV)
    if override:
        return override
    problem = _probe_gst_python(DEFAULT_GST_PYTHON)
    if problem is not None:
        raise SimulatorUnavailable(
            f"{DEFAULT_GST_PYTHON} cannot load GStreamer's RTSP server ({problem}); install "
            f"the Debian packages {DEBIAN_PACKAGES}, or set {GST_PYTHON_ENV} to a Python "
            "that has gi and GstRtspServer"
        )
    return DEFAULT_GST_PYTHON


def video_codec(path: Path) -> Literal["h264", "h265"]:
    """The codec of a recorded file's first video track, as the server names it."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise SimulatorError(f"{path} has no video track")
        name = container.streams.video[0].codec_context.name
    if name == "h264":
        return "h264"
    if name == "hevc":
        return "h265"
    raise SimulatorError(f"{path}: video codec {name!r} is not H.264 or H.265")


class Simulator:
    """A set of simulated RTSP cameras served by one GStreamer RTSP server process.

    Use as a context manager. Port 0 picks a free port on the first start; it then stays
    fixed, so :meth:`restart` looks to clients like a camera rebooting.
    """

    def __init__(
        self,
        mounts: Sequence[MountSpec],
        *,
        clip_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        python: str | None = None,
    ) -> None:
        paths = [m.path.strip("/") for m in mounts]
        if len(set(paths)) != len(paths):
            raise SimulatorError("mount paths must be unique")
        self._mounts = {m.path.strip("/"): m for m in mounts}
        # Each PTZ mount's last view (pan, tilt, zoom): sent to the running server, and
        # given to a server started later (a restart keeps where the camera looks).
        self._views: dict[str, tuple[float, float, float]] = {
            path: (0.0, 0.0, 0.0) for path, m in self._mounts.items() if m.ptz_scene is not None
        }
        # Views reach the server in the order they are set; a start holds it, so a view set
        # meanwhile goes to the new server (never into the spec just written, then lost, nor
        # as a command whose reply would be taken for the server's "ready").
        self._view_lock = threading.RLock()
        self._scene_sizes: dict[str, tuple[int, int]] = {}
        self._clip_dir = clip_dir
        self._host = host
        self._port = port
        self._python = python
        self._process: subprocess.Popen[str] | None = None
        self._workdir: Path | None = None
        self._lock = threading.Lock()  # one control-channel round trip at a time
        self._lines: queue.Queue[str] = queue.Queue()  # the server's stdout, line by line
        self._pump: threading.Thread | None = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port == 0:
            raise SimulatorError("the port is not known before the first start()")
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id (for measuring its CPU), None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, path: str, *, credentials: bool = True) -> str:
        """``rtsp://[user:password@]host:port/path``; credentials percent-encoded."""
        mount = self._mounts.get(path.strip("/"))
        if mount is None:
            raise SimulatorError(f"no mount {path!r}")
        userinfo = ""
        if credentials and mount.username:
            userinfo = quote(mount.username, safe="")
            if mount.password is not None:
                userinfo += ":" + quote(mount.password, safe="")
            userinfo += "@"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"rtsp://{userinfo}{host}:{self.port}/{mount.path.strip('/')}"

    def start(self, timeout_s: float = 30) -> None:
        with self._view_lock:
            self._start(timeout_s)

    def _start(self, timeout_s: float) -> None:
        if self.running:
            return
        python = self._python or find_gst_python()
        spec = self._server_spec()
        self._workdir = Path(tempfile.mkdtemp(prefix="rtsp-simulator-"))
        spec_path = self._workdir / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        stderr_path = self._workdir / "stderr.log"
        with stderr_path.open("w", encoding="utf-8") as stderr:
            self._process = subprocess.Popen(
                [python, str(_GST_SERVER), "--spec", str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
                # Own process group: a Ctrl-C meant for the parent reaches the server only
                # through the parent (stdin EOF), never half-way through a test.
                start_new_session=True,
            )
        assert self._process.stdout is not None
        self._lines = queue.Queue()
        self._pump = threading.Thread(
            target=_pump_lines,
            args=(self._process.stdout, self._lines),
            name="rtsp-simulator-stdout",
            daemon=True,
        )
        self._pump.start()
        try:
            ready = self._read_reply(timeout_s)
        except SimulatorError as exc:
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-STDERR_TAIL_CHARS:]
            self.stop()
            raise SimulatorError(f"{exc}; server stderr: {tail.strip() or '(empty)'}") from exc
        if not ready.get("ready"):
            self.stop()
            raise SimulatorError(f"simulator failed to start: {ready.get('error')}")
        self._port = int(ready["port"])

    def stop(self) -> None:
        """Kill the server outright, like a camera losing power: clients see the socket die."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
            if self._pump is not None:
                self._pump.join(timeout=5)  # ends at the pipe's EOF, now that the process is gone
                self._pump = None
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def stderr_tail(self) -> str:
        """The end of the running (or crashed, not yet stopped) server's stderr."""
        if self._workdir is None:
            return ""
        log = self._workdir / "stderr.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        return text[-STDERR_TAIL_CHARS:]

    def restart(self) -> None:
        self.stop()
        self.start()

    def fault(self, path: str, kind: FaultKind) -> None:
        """Inject a fault into one mount: refuse, drop, stall; resume clears refuse and stall."""
        if path.strip("/") not in self._mounts:
            raise SimulatorError(f"no mount {path!r}")
        self._command({"cmd": "fault", "path": path.strip("/"), "kind": kind})

    def view(self, path: str, pan: float, tilt: float, zoom: float) -> None:
        """Point a PTZ mount: pan -1..1 (left..right), tilt -1..1 (down..up), zoom 0..1
        (4x at 1); (0, 0, 0) is the scene's centre at the widest view (ptz_scene.view_crop).

        Thread-safe. Kept for the mount: applied to pipelines made later and after a
        restart. When the server is not running (or stops meanwhile), only kept."""
        key = path.strip("/")
        if key not in self._views:
            raise SimulatorError(f"no PTZ mount {path!r}")
        crop = self._crop(key, (pan, tilt, zoom))  # ValueError for NaN or infinity
        with self._view_lock:
            self._views[key] = (pan, tilt, zoom)
            if not self.running:
                return
            try:
                self._command({"cmd": "view", "path": key, "crop": crop})
            except SimulatorError:
                if self.running:
                    raise
                # Stopped meanwhile (a restart from another thread): kept for the next start.

    def status(self) -> dict[str, Any]:
        """Per mount: connected clients, whether it is refused, stalled, playing."""
        reply = self._command({"cmd": "status"})
        mounts: dict[str, Any] = reply["mounts"]
        return mounts

    # -- internals ------------------------------------------------------------------------

    def _server_spec(self) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for path, mount in self._mounts.items():
            if mount.ptz_scene is not None:
                entries.append(self._ptz_entry(path, mount))
                continue
            if isinstance(mount.clip, ClipSpec):
                file = ensure_clip(mount.clip, self._clip_dir)
                codec: str = mount.clip.codec
            else:
                assert mount.clip is not None  # MountSpec: a clip or a PTZ scene
                file = mount.clip
                if not file.is_file():
                    raise SimulatorError(f"recorded clip {file} does not exist")
                codec = video_codec(file)
            entries.append(
                {
                    "path": path,
                    "file": str(file.resolve()),
                    "codec": codec,
                    "username": mount.username,
                    "password": mount.password,
                    "params_in_sdp_only": mount.params_in_sdp_only,
                    "start_offset_s": mount.start_offset_s,
                    "shared": mount.shared,
                }
            )
        return {"host": self._host, "port": self._port, "mounts": entries}

    def _ptz_entry(self, path: str, mount: MountSpec) -> dict[str, Any]:
        assert mount.ptz_scene is not None
        if not mount.ptz_scene.is_file():
            raise SimulatorError(f"PTZ scene {mount.ptz_scene} does not exist")
        width, height = scene_size(mount.ptz_scene)
        with self._view_lock:
            view = self._views[path]
        return {
            "path": path,
            "username": mount.username,
            "password": mount.password,
            "ptz": {
                "scene": str(mount.ptz_scene.resolve()),
                "scene_width": width,
                "scene_height": height,
                "width": mount.ptz_size[0],
                "height": mount.ptz_size[1],
                "fps": mount.ptz_fps,
                "crop": self._crop(path, view),
            },
        }

    def _crop(self, path: str, view: tuple[float, float, float]) -> dict[str, int]:
        """The borders videocrop cuts off the mount's scene for a view."""
        mount = self._mounts[path]
        assert mount.ptz_scene is not None
        size = self._scene_sizes.get(path)
        if size is None:
            size = self._scene_sizes[path] = scene_size(mount.ptz_scene)
        return view_crop(size, mount.ptz_size, *view).borders(size)

    def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.poll() is not None:
                raise SimulatorError("the simulator is not running")
            try:
                process.stdin.write(json.dumps(command) + "\n")
                process.stdin.flush()
            except OSError as exc:
                raise SimulatorError(f"the simulator is gone: {exc}") from exc
            reply = self._read_reply(COMMAND_TIMEOUT_S)
        if not reply.get("ok"):
            raise SimulatorError(f"simulator refused {command}: {reply.get('error')}")
        return reply

    def _read_reply(self, timeout_s: float) -> dict[str, Any]:
        process = self._process
        if process is None:
            raise SimulatorError("the simulator was stopped")
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise SimulatorError(f"no reply from the simulator within {timeout_s:g} s") from None
        if not line:
            raise SimulatorError(f"the simulator exited (status {process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply


def _pump_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Copy the server's stdout into a queue, ending with "" at EOF (runs in its own thread)."""
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # the pipe was closed by stop()
        pass
    lines.put("")
