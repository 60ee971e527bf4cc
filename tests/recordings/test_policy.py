"""Who records what: camera > platform > tags > default, field by field; among tags, the one
that keeps more wins; config mistakes named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.config import ConfigError, load_config
from surveillance.config.models import RecordingMode, RecordingStream
from surveillance.recordings.policy import CameraRecordingPolicy, policies

CONFIG = """\
server:
  data_dir: data
recording:
  dir: footage
  default: {mode: off, stream: main, retain_days: 7}
  tags:
    traffic: {mode: continuous, retain_days: 30}
    school-gate: {mode: off, stream: sub, retain_days: 60}
    flood-watch: {stream: main}
tags:
  - id: flood-watch
    name: Flood watch
platforms:
  - id: town
    name: Town
    recording: {retain_days: 14}
  - id: city
    name: City
cameras:
  - {id: plain, name: Plain, platform: city, url: "rtsp://10.0.0.1/a"}
  - {id: road, name: Road, platform: city, url: "rtsp://10.0.0.1/b", tags: [traffic]}
  - {id: both, name: Both, platform: city, url: "rtsp://10.0.0.1/c", tags: [school-gate, traffic]}
  - {id: both-rev, name: Both, platform: city, url: "rtsp://10.0.0.1/d",
     tags: [traffic, school-gate]}
  - {id: town-road, name: Town road, platform: town, url: "rtsp://10.0.0.1/e", tags: [traffic]}
  - id: private
    name: Private
    platform: town
    url: rtsp://10.0.0.1/f
    tags: [traffic]
    recording: {mode: off, retain_days: 3}
  - {id: gate, name: Gate, platform: city, url: "rtsp://10.0.0.1/g",
     tags: [school-gate, flood-watch]}
"""

C, OFF = RecordingMode.CONTINUOUS, RecordingMode.OFF
MAIN, SUB = RecordingStream.MAIN, RecordingStream.SUB


def test_each_field_comes_from_the_most_specific_level_that_sets_it(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    found = {camera: (p.mode, p.stream, p.retain_days) for camera, p in policies(config).items()}
    assert found == {
        "plain": (OFF, MAIN, 7),  # nothing set: the default
        "road": (C, MAIN, 30),  # its tag
        # Two tags: continuous beats off, the longer retention wins; only school-gate sets
        # the stream, so it is sub. Whatever order the tags are listed in.
        "both": (C, SUB, 60),
        "both-rev": (C, SUB, 60),
        "town-road": (C, MAIN, 14),  # the platform's retention beats the tag's
        "private": (OFF, MAIN, 3),  # the camera's own beats platform and tag
        "gate": (OFF, MAIN, 60),  # main (flood-watch) beats sub (school-gate)
    }
    assert policies(config)["road"] == CameraRecordingPolicy(C, MAIN, 30)
    assert policies(config)["road"].records and not policies(config)["plain"].records
    assert policies(config)["road"].retain_s == 30 * 86400
    # Relative to the config file, like data_dir; the default lives in data_dir.
    assert config.recording_root() == tmp_path / "footage"
    path.write_text(CONFIG.replace("  dir: footage\n", ""))
    assert load_config(path).recording_root() == tmp_path / "data" / "recordings"


def test_the_embedded_default_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(
        "platforms: [{id: p, name: P}]\n"
        "cameras: [{id: c, name: C, platform: p, url: 'rtsp://10.0.0.1/a', tags: [traffic]}]\n"
    )
    assert policies(load_config(path)) == {"c": CameraRecordingPolicy(OFF, MAIN, 7)}


@pytest.mark.parametrize(
    ("change", "line", "field", "message"),
    [
        (("traffic: {mode: continuous,", "traffic: {mode: sometimes,"), 7,
         "recording.tags.traffic.mode", "'continuous' or 'off'"),
        (("recording: {mode: off, retain_days: 3}", "recording: {mode: off, retain_days: -3}"),
         31, "cameras[5].recording.retain_days", "greater than 0"),
        (("    recording: {retain_days: 14}", "    recording: {stream: both}"), 16,
         "platforms[0].recording.stream", "'main' or 'sub'"),
        (("    flood-watch: {stream: main}", "    flood-wash: {stream: main}"), 9,
         "recording.tags.flood-wash", "unknown tag 'flood-wash'"),
        (("  dir: footage", "  dir: footage\n  segment_s: 0"), 5,
         "recording.segment_s", "greater than or equal to 1"),
        (("  default: {mode: off,", "  default: {colour: red, mode: off,"), 5,
         "recording.default.colour", "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_config_mistakes_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, field: str, message: str
) -> None:
    assert change[0] in CONFIG
    path = tmp_path / "node.yaml"
    path.write_text(CONFIG.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), line, field)
    assert message in problem.message
    assert str(problem).startswith(f"{path}:{line}: {field}: ")
