"""Config loading: every error names file, line and field; secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.catalog import Catalog
from surveillance.config import ConfigError, load_config

GOOD = """\
platforms:
  - id: town-cctv
    name: Town CCTV platform
    username: ${TOWN_USER}
    password: ${TOWN_PASSWORD:-fallback-pw}
tags:
  - id: flood-watch
    name: Flood watch
    color: "#1e88e5"
cameras:
  - id: gate-1
    name: School gate, No. 1 Primary
    platform: town-cctv
    url: rtsp://10.0.0.21:554/stream1
    sub_url: rtsp://10.0.0.21:554/stream2
    tags: [school-gate, public-order]
    location: {lat: 30.1, lon: 120.2, place: No. 1 Primary}
  - id: river-2
    name: River bank
    platform: town-cctv
    url: rtsp://cam:own-secret@10.0.0.22/live
    tags: [flood-watch]
    mode: on-demand
    transport: udp
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_config_loads_with_env_secrets_and_resolves_credentials(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={"TOWN_USER": "admin"})
    assert [c.id for c in config.cameras] == ["gate-1", "river-2"]
    catalog = Catalog.from_config(config)
    gate = catalog.cameras["gate-1"]
    # Platform credentials apply; the default from ${VAR:-default} is used.
    assert gate.stream_url() == "rtsp://admin:fallback-pw@10.0.0.21:554/stream1"
    assert gate.stream_url(sub=True) == "rtsp://admin:fallback-pw@10.0.0.21:554/stream2"
    assert gate.display_url() == "rtsp://***@10.0.0.21:554/stream1"
    # Credentials in the camera's own URL override the platform's password.
    assert catalog.cameras["river-2"].stream_url() == "rtsp://cam:own-secret@10.0.0.22/live"
    assert {"fallback-pw", "own-secret"} <= catalog.secrets()
    assert config.server.data_dir == tmp_path / "data"


def test_unset_variable_is_an_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 4, "platforms[0].username")
    assert "TOWN_USER" in problem.message


def test_every_problem_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("url: rtsp://10.0.0.21:554/stream1", "url: http://10.0.0.21/x")
    text = text.replace("    mode: on-demand\n", "    mode: on-demand\n    colour: red\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"TOWN_USER": "u"})
    found = {(p.line, p.field) for p in info.value.problems}
    assert (14, "cameras[0].url") in found
    assert (24, "cameras[1].colour") in found
    message = str(info.value)
    assert f"{path}:14: cameras[0].url: scheme 'http' is not allowed" in message


def test_cross_references_are_checked(tmp_path: Path) -> None:
    text = GOOD.replace(
        "platform: town-cctv\n    url: rtsp://cam", "platform: nope\n    url: rtsp://cam"
    )
    text = text.replace("tags: [school-gate, public-order]", "tags: [school-gate, bogus]")
    text += "  - id: gate-1\n    name: Dup\n    platform: town-cctv\n    url: rtsp://h/x\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    messages = {(p.field, p.line): p.message for p in info.value.problems}
    assert "unknown platform 'nope'" in messages[("cameras[1].platform", 20)]
    assert "unknown tag 'bogus'" in messages[("cameras[0].tags[1]", 16)]
    assert "duplicate camera id 'gate-1'" in messages[("cameras[2].id", 25)]


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "platforms: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 1


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "platforms:\n  - id: a\n   name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 3
    assert "invalid YAML" in info.value.problems[0].message


def test_csv_import_adds_cameras_and_names_csv_rows(tmp_path: Path) -> None:
    rows = ["id,name,platform,url,sub_url,tags,lat,lon,place,mode"]
    rows += [
        f"csv-{i},Camera {i},town-cctv,rtsp://10.1.0.{i}/main,rtsp://10.1.0.{i}/sub,"
        f"traffic;public-order,30.{i},120.{i},Road {i},always-on"
        for i in range(300)
    ]
    rows.append("csv-bad,Bad,town-cctv,ftp://10.9.9.9/x,,traffic,,,,")
    (tmp_path / "cams.csv").write_text("\n".join(rows) + "\n")
    text = GOOD + "camera_files: [cams.csv]\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    [problem] = info.value.problems
    assert problem.file == str(tmp_path / "cams.csv")
    assert problem.line == 302
    assert problem.field == "cameras[302].url"

    (tmp_path / "cams.csv").write_text("\n".join(rows[:-1]) + "\n")
    config = load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    assert len(config.cameras) == 302
    camera = config.cameras[2 + 7]
    assert camera.tags == ["traffic", "public-order"]
    assert camera.location is not None and camera.location.place == "Road 7"


def test_check_config_command_exits_non_zero_and_prints_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from surveillance.cli import main

    monkeypatch.setenv("TOWN_USER", "u")
    path = write(tmp_path, GOOD.replace("rtsp://cam:own-secret@", "rtmp://cam:own-secret@"))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "cameras[1].url" in err
    assert "own-secret" not in err
    assert "1 problem(s)" in err
    good = write(tmp_path, GOOD, "good.yaml")
    assert main(["check-config", str(good)]) == 0
    assert "2 cameras" in capsys.readouterr().out


def test_allowed_networks_limit_stream_hosts(tmp_path: Path) -> None:
    text = GOOD + "ingest:\n  allowed_networks: [10.0.0.20/31, nvr.example]\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    [problem] = info.value.problems
    assert problem.field == "cameras[1].url" and problem.line == 21
    assert "allowed_networks" in problem.message
    ok = text.replace("10.0.0.20/31", "10.0.0.0/24")
    assert len(load_config(write(tmp_path, ok), env={"TOWN_USER": "u"}).cameras) == 2


def test_redirects_are_refused_unless_allowed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={"TOWN_USER": "u"})
    assert config.ingest.allow_redirects is False
    text = GOOD + "ingest:\n  allow_redirects: true\n"
    assert load_config(write(tmp_path, text), env={"TOWN_USER": "u"}).ingest.allow_redirects


def test_query_string_credentials_are_secrets_and_hidden(tmp_path: Path) -> None:
    """Dahua-style URLs carry the credentials in the query string, not the userinfo."""
    text = GOOD.replace(
        "url: rtsp://cam:own-secret@10.0.0.22/live",
        "url: rtsp://10.0.0.22/cam/realmonitor?channel=1&subtype=0&user=cam&password=q-secret",
    )
    catalog = Catalog.from_config(load_config(write(tmp_path, text), env={"TOWN_USER": "admin"}))
    river = catalog.cameras["river-2"]
    assert "password=q-secret" in river.stream_url()
    shown = river.display_url()
    assert shown is not None and "q-secret" not in shown
    assert shown.endswith("?channel=1&subtype=0&user=***&password=***")
    assert "q-secret" in catalog.secrets()


def test_every_problem_is_reported_in_one_pass_in_line_order(tmp_path: Path) -> None:
    """Field problems and cross-references come together: an administrator fixing a file
    does not discover a second batch of problems after fixing the first."""
    path = write(
        tmp_path,
        """\
platforms:
  - id: p1
    name: P1
    bogus: 1
cameras:
  - id: c1
    name: C1
    platform: nope
    url: rtsp://10.0.0.1/x
    tags: [no-such-tag]
  - id: c1
    name: Duplicate
    platform: p1
    url: http://10.0.0.2/x
  - id: c3
    name: Bad port and known platform
    platform: p1
    url: rtsp://10.0.0.3/x
    transport: carrier-pigeon
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (4, "platforms[0].bogus"),
        (8, "cameras[0].platform"),
        (10, "cameras[0].tags[0]"),
        (11, "cameras[1].id"),
        (14, "cameras[1].url"),
        (19, "cameras[2].transport"),
    ]
    messages = {p.field: p.message for p in caught.value.problems}
    assert "unknown platform 'nope'" in messages["cameras[0].platform"]
    assert "duplicate camera id 'c1'" in messages["cameras[1].id"]
    assert "scheme 'http'" in messages["cameras[1].url"]


def test_bidirectional_controls_in_names_are_refused_naming_file_line_and_field(
    tmp_path: Path,
) -> None:
    # U+202E (right-to-left override) would draw "Gate \u202egnp.exe" as "Gate exe.png";
    # U+2067 (right-to-left isolate) and U+202A (left-to-right embedding) reorder too.
    text = GOOD.replace("name: School gate, No. 1 Primary", 'name: "Gate \\u202Egnp.exe"')
    text = text.replace("name: Town CCTV platform", 'name: "Town \\u2067CCTV"')
    text = text.replace("name: Flood watch", 'name: "Flood \\u202Awatch"')
    # The marks U+200E and U+200F only set neutral characters' direction: harmless, allowed.
    text = text.replace("name: River bank", 'name: "River \\u200Fbank"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"TOWN_USER": "u"})
    found = {(p.line, p.field): p.message for p in info.value.problems}
    assert set(found) == {(3, "platforms[0].name"), (8, "tags[0].name"), (12, "cameras[0].name")}
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in found[(12, "cameras[0].name")]
    assert "U+2067" in found[(3, "platforms[0].name")]
    assert "U+202A" in found[(8, "tags[0].name")]
    assert f"{path}:12: cameras[0].name: " in str(info.value)


def test_nan_and_infinity_are_refused_as_not_a_number_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from surveillance.cli import main

    monkeypatch.setenv("TOWN_USER", "u")
    # YAML reads .nan and .inf as floats; a range check would call NaN "too large".
    text = GOOD + (
        "recording:\n"
        "  fragment_s: .inf\n"
        "  default: {retain_days: .nan}\n"
        "  tags: {flood-watch: {retain_days: -.inf}}\n"
        "limits:\n"
        "  peer_connect_deadline_s: .NaN\n"
    )
    path = write(tmp_path, text)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    last = GOOD.count("\n")  # the added lines follow GOOD's
    for line, field in (
        (last + 2, "recording.fragment_s"),
        (last + 3, "recording.default.retain_days"),
        (last + 4, "recording.tags.flood-watch.retain_days"),
        (last + 6, "limits.peer_connect_deadline_s"),
    ):
        assert f"{path}:{line}: {field}: not a number (NaN or infinity)" in err, err
    assert "less than or equal" not in err and "4 problem(s)" in err


def test_the_events_section_defaults_and_its_problems_name_file_line_and_field(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, GOOD), env={"TOWN_USER": "u"})
    events = config.events
    assert (events.retain_days, events.offline_after_s, events.storm_cameras) == (90, 15, 3)
    assert (events.diagnosis.interval_s, events.diagnosis.hold_s, events.zones.fps) == (5, 15, 5)
    assert events.diagnosis.thresholds.dark_luma == 18
    text = GOOD + (
        "events:\n"
        "  storm_cameras: 1\n"
        "  diagnosis:\n"
        "    tags:\n"
        "      forest-fire: {hold_s: 30, thresholds: {dark_luma: 10}}\n"
        "      no-such-tag: {hold_s: 30}\n"
        "    thresholds: {darkness: 3}\n"
        "  zones: {fps: 0}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    last = GOOD.count("\n")
    found = {(p.line, p.field): p.message for p in info.value.problems}
    assert set(found) == {
        (last + 2, "events.storm_cameras"),
        (last + 6, "events.diagnosis.tags.no-such-tag"),
        (last + 7, "events.diagnosis.thresholds.darkness"),
        (last + 8, "events.zones.fps"),
    }, found
    assert "unknown tag 'no-such-tag'" in found[(last + 6, "events.diagnosis.tags.no-such-tag")]


def test_contradictory_luma_limits_are_problems_at_the_field_set_also_after_a_tags_merge(
    tmp_path: Path,
) -> None:
    # dark_luma at or above bright_luma makes every picture too dark and too bright at once.
    text = GOOD + (
        "events:\n"
        "  diagnosis:\n"
        "    hold_s: 0\n"  # raise at the first failed sample: allowed, not a contradiction
        "    clear_s: 0\n"
        "    tags:\n"
        "      forest-fire:\n"
        "        thresholds: {dark_luma: 245}\n"  # above the default bright_luma 240
        "      flood-watch:\n"
        "        thresholds: {bright_luma: 12}\n"  # below the default dark_luma 18
        "      school-gate:\n"
        "        thresholds: {dark_luma: 4, bright_luma: 250}\n"  # fine
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={"TOWN_USER": "u"})
    last = GOOD.count("\n")
    found = {(p.line, p.field): p.message for p in info.value.problems}
    assert set(found) == {
        (last + 7, "events.diagnosis.tags.forest-fire.thresholds.dark_luma"),
        (last + 9, "events.diagnosis.tags.flood-watch.thresholds.bright_luma"),
    }, found
    assert found[(last + 7, "events.diagnosis.tags.forest-fire.thresholds.dark_luma")] == (
        "must be below bright_luma (240): no picture could pass both checks"
    )
    assert "must be above dark_luma (18)" in str(info.value)
    both = GOOD + "events:\n  diagnosis:\n    thresholds: {dark_luma: 250, bright_luma: 10}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, both), env={"TOWN_USER": "u"})
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (last + 3, "events.diagnosis.thresholds.dark_luma")
    assert problem.message.startswith("must be below bright_luma (10)")


def test_two_cameras_on_one_onvif_device_are_a_problem_naming_both_and_where(
    tmp_path: Path,
) -> None:
    # One physical PTZ camera under two ids would hold two PTZ leases at once: the YAML's
    # camera and a CSV row (as discovery rows are added) naming the same device service,
    # spelled differently (upper-case host, explicit default port, trailing slash).
    onvif = "onvif: {url: http://10.0.0.21/onvif/device_service}"
    text = GOOD.replace("    location: {lat: 30.1", f"    {onvif}\n    location: {{lat: 30.1")
    rows = [
        "id,name,platform,url,onvif",
        "dup-1,Gate again,town-cctv,rtsp://10.0.0.21/x,HTTP://10.0.0.21:80/onvif/device_service/",
        "other,Elsewhere,town-cctv,rtsp://10.0.0.30/x,http://10.0.0.21:8080/onvif/device_service",
    ]
    (tmp_path / "cams.csv").write_text("\n".join(rows) + "\n")
    path = write(tmp_path, text + "camera_files: [cams.csv]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"TOWN_USER": "u"})
    [problem] = info.value.problems  # "other": another port, another device
    assert (problem.file, problem.line) == (str(tmp_path / "cams.csv"), 2)
    assert problem.field == "cameras[2].onvif.url"
    yaml_line = text.splitlines().index(f"    {onvif}") + 1
    assert problem.message.startswith(
        f"camera 'dup-1' has the same ONVIF device as camera 'gate-1' ({path}:{yaml_line}): "
    )
    assert "two PTZ leases" in problem.message
    (tmp_path / "cams.csv").write_text("\n".join(rows[::2]) + "\n")
    assert len(load_config(path, env={"TOWN_USER": "u"}).cameras) == 3
