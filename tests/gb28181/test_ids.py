"""GB/T 28181 ids: types, camera ids, SSRCs."""

from __future__ import annotations

import pytest

from surveillance.gb28181 import ids


def test_ids_types_and_camera_ids() -> None:
    channel = "34020000001320000001"
    assert ids.is_gb_id(channel)
    assert not ids.is_gb_id("3402000000132000000")  # 19 digits
    assert not ids.is_gb_id("3402000000132000000x")
    assert not ids.is_gb_id("\uff13\uff14020000001320000001")  # full-width digits are not ASCII
    assert ids.type_code(channel) == 132
    assert ids.type_code("34020000001310000001") in ids.VIDEO_CHANNEL_TYPES
    assert ids.type_code("34020000002150000001") == ids.BUSINESS_GROUP
    with pytest.raises(ValueError):
        ids.type_code("340200")
    camera = ids.camera_id("town.east", channel)
    assert camera == f"town.east.{channel}"
    assert ids.split_camera_id(camera) == ("town.east", channel)
    assert ids.split_camera_id("lobby-1") is None
    assert ids.split_camera_id(f".{channel}") is None
    assert ids.split_camera_id("town.1234") is None


def test_ssrc_is_real_time_domain_and_serial() -> None:
    assert ids.ssrc("3402000000", 1) == "0200000001"
    assert ids.ssrc("3402000000", 12345) == "0200002345"
    assert len(ids.ssrc("1234567890", 9999)) == 10
    with pytest.raises(ValueError):
        ids.ssrc("34020", 1)
