"""The cluster section's problems name file, line and field, as every other section's do."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.config import ConfigError, load_config

NODE = """\
database:
  url: postgresql+psycopg://surveillance:secret@db.example/surveillance
server:
  allowed_hosts: [node-a.example, localhost]
cluster:
  enabled: true
  node_id: node-a
  url: {url}
  shared_dir: shared
  lease_s: {lease}
  renew_s: 3
"""


def problems_of(tmp_path: Path, url: str, lease: float = 10) -> dict[str, tuple[int | None, str]]:
    path = tmp_path / "node.yaml"
    path.write_text(NODE.format(url=url, lease=lease))
    try:
        load_config(path, env={})
    except ConfigError as error:
        return {p.field: (p.line, p.message) for p in error.problems}
    return {}


def test_a_good_node_loads_with_its_shared_dir_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(NODE.format(url="http://node-a.example:8080", lease=10))
    config = load_config(path, env={})
    assert config.cluster.shared_dir == tmp_path / "shared"
    assert config.cluster.host() == "node-a.example"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://node-z.example:8080", "host 'node-z.example' is not in server.allowed_hosts"),
        ("http://node-a.example:99999", "the port must be 1 to 65535"),
        ("http://node-a.example:0", "the port must be 1 to 65535"),
        ("http://admin:pw@node-a.example:8080", "should match pattern"),
        ("ftp://node-a.example", "should match pattern"),
    ],
)
def test_a_url_other_nodes_cannot_use_is_named_at_its_line(
    tmp_path: Path, url: str, says: str
) -> None:
    found = problems_of(tmp_path, url)
    line, message = found["cluster.url"]
    assert line == 8
    assert says in message


def test_a_renewal_too_slow_for_the_lease_is_a_problem(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "http://node-a.example:8080", lease=5)
    assert any("renew_s must be under half of lease_s" in m for _, m in found.values())


def test_cluster_mode_without_postgresql_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    text = NODE.format(url="http://node-a.example:8080", lease=10)
    path.write_text(text.replace("postgresql+psycopg://", "sqlite:///").replace(":secret@", "@"))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    [problem] = info.value.problems
    assert (problem.field, problem.line) == ("cluster.enabled", 6)
    assert "needs database.url on PostgreSQL" in problem.message
