"""check-config on the gb28181 section: a platform may not use this service's own SIP id;
the section's own checks (media_host, RTP range) come in the same pass as its fields'
problems; the summary counts GB/T 28181 platforms."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.cli import main
from surveillance.config import ConfigError, load_config

BAD = """\
gb28181:
  enabled: true
  listen: 0.0.0.0
  rtp_port_min: 40000
  rtp_port_max: 39000
  platforms:
    - id: city
      name: City
      device_id: "34020000002000000001"
      password: x
    - id: town
      name: Town
      device_id: "1234"
      password: x
"""

GOOD = """\
gb28181:
  enabled: true
  platforms:
    - id: city
      name: City
      device_id: "34020000002000000002"
      password: x
    - id: town
      name: Town
      device_id: "34020000002000000003"
      password: x
"""


def test_gb_section_problems_come_in_one_pass_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    by_field = {p.field: (p.line, p.message) for p in caught.value.problems}
    assert by_field["gb28181.platforms[0].device_id"][0] == 9
    assert "this service's own sip_id" in by_field["gb28181.platforms[0].device_id"][1]
    assert by_field["gb28181.media_host"][1].startswith("media_host is required")
    assert "rtp_port_max is below" in by_field["gb28181.rtp_port_max"][1]
    assert "gb28181.platforms[1].device_id" in by_field  # the field's own problem, same pass

    # Alone (every field valid: the model's own check speaks), still refused.
    alone = tmp_path / "alone.yaml"
    alone.write_text(GOOD.replace("34020000002000000002", "34020000002000000001"))
    with pytest.raises(ConfigError) as caught:
        load_config(alone, env={})
    assert ["own sip_id" in p.message for p in caught.value.problems] == [True]

    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["check-config", str(good)]) == 0
    assert "OK: 2 platforms (2 GB/T 28181), 0 cameras" in capsys.readouterr().out
