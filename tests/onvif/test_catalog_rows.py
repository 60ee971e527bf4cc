"""Catalog rows from discovered devices load with the real configuration loader, whatever
the devices called themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.catalog import Catalog
from surveillance.config import load_config
from surveillance.onvif.catalog_rows import build_rows, display_name, to_csv, to_yaml
from surveillance.onvif.records import DeviceReport

BASE = """\
platforms:
  - id: site-a
    name: Site A
    username: viewer
    password: ${SITE_PASSWORD}
"""
ENV = {"SITE_PASSWORD": "platform-pw", "DB_PASSWORD": "must-not-appear"}

# Names a hostile or careless device may give (its scopes or GetDeviceInformation).
HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example","x")',
    "${DB_PASSWORD}",
    "invoice\u202egnp.exe",
    'line\nbreak,"quoted"; tab\there',
    "",
    "Caméra Entrée 1",
    "x" * 500,
    "Caméra Entrée 1",  # the same again: a second id, not a clash
    "@@@",
]


def report(i: int, name: str | None, **fields: object) -> DeviceReport:
    values: dict[str, object] = {
        "device_url": f"http://10.9.0.{i}:8080/onvif/device_service",
        "outcome": "ok",
        "name": name,
        "manufacturer": "Acme",
        "model": "M$1",
        "main_uri": f"rtsp://10.9.0.{i}:554/main",
        "sub_uri": f"rtsp://10.9.0.{i}:554/sub",
    }
    values.update(fields)
    return DeviceReport(**values)


def test_rows_from_hostile_names_load_as_csv_and_as_yaml(tmp_path: Path) -> None:
    reports = [report(i + 1, name) for i, name in enumerate(HOSTILE_NAMES)]
    reports.append(report(50, "no stream", main_uri=None))
    reports.append(report(51, "creds", main_uri="rtsp://u:p@10.9.0.51/main"))
    reports.append(report(52, "Fine", sub_uri="http://not-rtsp/"))
    rows, skipped = build_rows(
        reports, platform="site-a", tags=["traffic", "traffic"], id_prefix="disc-",
        taken_ids=["disc-cam"],
    )  # fmt: skip
    assert [url for url, _ in skipped] == [reports[-3].device_url, reports[-2].device_url]
    assert all(why == "it gave no RTSP stream" for _, why in skipped)
    assert len({row.id for row in rows}) == len(rows) == len(HOSTILE_NAMES) + 1
    assert "disc-cam" not in {row.id for row in rows}

    (tmp_path / "found.csv").write_text(to_csv(rows), encoding="utf-8")
    csv_config = tmp_path / "csv.yaml"
    csv_config.write_text(BASE + "camera_files: [found.csv]\n")
    yaml_config = tmp_path / "yaml.yaml"
    yaml_config.write_text(BASE + to_yaml(rows))
    for path in (csv_config, yaml_config):
        config = load_config(path, env=ENV)
        cameras = {c.id: c for c in config.cameras}
        assert list(cameras) == [row.id for row in rows]
        for row in rows:
            camera = cameras[row.id]
            assert camera.name == row.name
            assert camera.url == row.url
            assert camera.onvif is not None and camera.onvif.url == row.onvif
            assert camera.tags == ["traffic"]
            assert camera.username is None and camera.password is None  # the platform's
        names = [c.name for c in config.cameras]
        assert "must-not-appear" not in " ".join(names)
        assert "${DB_PASSWORD}" in names  # kept as written, not expanded
        assert not any(n[0] in "=+-@" for n in names)
        assert all("\u202e" not in n and "\n" not in n and len(n) <= 200 for n in names)
        assert cameras[rows[0].id].name.startswith("HYPERLINK(")
        # No name at all: maker, model and host; the sub stream that is not RTSP left out.
        assert cameras[rows[4].id].name == "Acme M$1 10.9.0.5"
        assert cameras[rows[-1].id].sub_url is None
        # The catalog speaks to the device with the platform's credentials.
        endpoint = Catalog.from_config(config).cameras[rows[0].id].onvif
        assert endpoint is not None and endpoint.url == rows[0].onvif
        assert (endpoint.username, endpoint.password) == ("viewer", "platform-pw")
    ids = [row.id for row in rows]
    assert ids[5] == "disc-camera-entree-1" and ids[7] == "disc-camera-entree-1-2"
    assert ids[6] == "disc-" + "x" * 59  # at most 64 characters
    assert ids[4] == "disc-10-9-0-5"  # no name: the address


def test_bad_platform_tag_or_prefix_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="platform 'Site A'"):
        build_rows([], platform="Site A")
    with pytest.raises(ValueError, match="tag 'Bad Tag'"):
        build_rows([], platform="site-a", tags=["Bad Tag"])
    with pytest.raises(ValueError, match="id prefix"):
        build_rows([], platform="site-a", id_prefix="-x")
    assert display_name("\x00\x1b[31m=cmd") == "[31m=cmd"
