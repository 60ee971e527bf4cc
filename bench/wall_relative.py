"""How much later an fMP4/MSE tile shows a frame than a WebRTC tile of the same camera.

Usage::

    python -m bench.wall_relative                       # 1080p, 20 s
    python -m bench.wall_relative --player-js proposed/player.js

One simulated camera, one ``surveillance serve``, one headless Chromium page (signed in)
with two of the page's own ``LivePlayer`` objects on the same camera: one told it has MSE
and no WebRTC H.264 (so the plan is ``mse``), one the other way round (``webrtc``). The
frame grabber of :mod:`bench.wall_browser` reads the frame number of every frame each
presents; for every number both presented, the difference of presentation times is MSE's
extra latency over WebRTC's. Only the service reads the simulator (no reference reader),
so this holds while a mount's second client disturbs the first's timestamps (the fault
bench.wall's absolute latency depends on); add WebRTC's own latency from bench.wall to
get MSE's from the source.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import harness
from bench.cameras import staggered_mounts
from bench.procs import Children
from bench.service import CameraEntry, ServiceProcess, free_port, write_config
from bench.stats import percentile, rounded
from bench.wall_browser import START_GRABBER, TAKE_GRABS, Browsers
from bench.wall_latency import crop_for, number_in_grab
from surveillance.simulator import ClipSpec, SimulatorFleet, ensure_clip

CAMERA = "cam1"
SETTLE_S = 5.0
PULL_S = 1.0
MATCH_WITHIN_MS = 5000.0  # the clip loops every 10 s: nearest presentations only
TWO_PLAYERS = """
async (camera) => {
  const { LivePlayer } = await import("/static/js/player.js");
  const players = {};
  for (const [path, caps] of [
    ["mse", { webrtc_h264: false, mse_avc: true, mse_hevc: false }],
    ["webrtc", { webrtc_h264: true, mse_avc: false, mse_hevc: false }],
  ]) {
    const video = Object.assign(document.createElement("video"), { muted: true, autoplay: true });
    video.width = 640;
    video.height = 360;
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.camera = path;  // the grabber finds the video by its tile's camera
    tile.appendChild(video);
    document.body.appendChild(tile);
    players[path] = new LivePlayer(video, camera, "main", caps);
    players[path].start();
  }
  window.__benchPlayers = players;
  return true;
}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wall_relative", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="grabbing time (20)")
    parser.add_argument("--height", type=int, default=1080, choices=(720, 1080))
    parser.add_argument("--player-js", type=Path, help="serve this file as player.js")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def presented(page: Any, height: int, seconds: float) -> dict[str, dict[int, list[float]]]:
    """Per path, when each frame number was presented (ms, wall clock)."""
    sw, sh, dw, dh = crop_for(height, 1)
    for path in ("mse", "webrtc"):
        crop = {"camera": path, "sw": sw, "sh": sh, "dw": dw, "dh": dh}
        if not page.evaluate(START_GRABBER, crop):
            raise RuntimeError(f"no {path} video to grab frames from")
    seen: dict[str, dict[int, list[float]]] = {"mse": {}, "webrtc": {}}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(PULL_S)
        for path, batch in page.evaluate(TAKE_GRABS).items():
            for sample in batch["samples"]:
                number = number_in_grab(sample["pixels"], dw, dh, height, 1)
                if number is not None:
                    seen[path].setdefault(number, []).append(float(sample["presented"]))
    return seen


def differences(seen: dict[str, dict[int, list[float]]]) -> list[float]:
    found = []
    for number, times in seen["mse"].items():
        others = seen["webrtc"].get(number)
        for t in times if others else []:
            nearest = min(others or [], key=lambda o: abs(o - t))
            if abs(t - nearest) < MATCH_WITHIN_MS:
                found.append(t - nearest)
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    height = args.height
    clip = ClipSpec(width=height * 16 // 9, height=height, bitrate_kbps=4000 if height == 1080
                    else 2000, gop_s=2.0, seconds=10.0)  # fmt: skip
    ensure_clip(clip, harness.CLIP_CACHE)
    with (
        Children() as children,
        tempfile.TemporaryDirectory(prefix="bench-wall-relative-") as tmp_name,
        SimulatorFleet(staggered_mounts([CAMERA], clip), clip_dir=harness.CLIP_CACHE) as sim,
    ):
        tmp = Path(tmp_name)
        port = free_port()
        write_config(tmp / "s.yaml", [CameraEntry(CAMERA, sim.url(CAMERA))], tmp / "data", port)
        service = ServiceProcess(children, tmp / "s.yaml", port, tmp / "service.log")
        browsers = Browsers((1920, 1080), None, args.player_js)
        try:
            service.wait_ready(harness.SERVICE_READY_TIMEOUT_S)
            service.wait_online(1, 30.0)
            browsers.start()
            viewer = browsers.open(f"http://127.0.0.1:{port}/login", service.credentials)
            viewer.page.evaluate(TWO_PLAYERS, CAMERA)
            time.sleep(SETTLE_S)
            paths = viewer.page.evaluate("Object.keys(window.__benchPlayers).map("
                                         "(k) => window.__benchPlayers[k].path)")  # fmt: skip
            seen = presented(viewer.page, height, args.seconds)
        finally:
            browsers.close()
            service.stop()
    diffs = differences(seen)
    return {
        "source": f"{clip.width}x{clip.height} {clip.fps} fps, {clip.bitrate_kbps} kbit/s",
        "paths": paths,
        "player_js": str(args.player_js) if args.player_js else "as served",
        "frames": {path: sum(map(len, numbers.values())) for path, numbers in seen.items()},
        "matched": len(diffs),
        "mse_minus_webrtc_p50_ms": rounded(percentile(diffs, 50), 1),
        "mse_minus_webrtc_p95_ms": rounded(percentile(diffs, 95), 1),
        "mse_minus_webrtc_max_ms": rounded(max(diffs), 1) if diffs else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
