"""`surveillance user` and `surveillance token`: the only way the first admin comes to be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.auth_helpers import TEST_PASSWORD


def run(config: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surveillance.cli", *args, "--config", str(config)],
        input=(password + "\n") if password is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_first_admin_scopes_tokens_and_the_last_admin_guard(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"data_dir": str(tmp_path / "data")},
                "platforms": [{"id": "town", "name": "Town"}],
            }
        )
    )
    added = run(config, "user", "add", "alice", "--role", "admin", password=TEST_PASSWORD)
    assert added.returncode == 0, added.stderr
    assert TEST_PASSWORD not in added.stdout + added.stderr
    weak = run(config, "user", "add", "bob", "--role", "viewer", password="short")
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    typo = run(
        config,
        "user",
        "add",
        "bob",
        "--role",
        "viewer",
        "--platform",
        "twon",
        password=TEST_PASSWORD,
    )
    assert typo.returncode == 2 and "unknown platform 'twon'" in typo.stderr
    scoped = run(
        config,
        "user",
        "add",
        "bob",
        "--role",
        "viewer",
        "--platform",
        "town",
        password=TEST_PASSWORD,
    )
    assert scoped.returncode == 0, scoped.stderr
    assert "bob\tviewer\ttown" in run(config, "user", "list").stdout
    lifted = run(config, "user", "update", "bob", "--all-cameras")
    assert lifted.returncode == 0 and "all cameras" in lifted.stdout
    for refused in (
        ("disable", "alice"),
        ("remove", "alice"),
        ("update", "alice", "--role", "viewer"),
    ):
        result = run(config, "user", *refused)
        assert result.returncode == 2 and "last enabled admin" in result.stderr, refused
    token = run(
        config, "token", "create", "alice", "--label", "prometheus", "--only", "system.read"
    )
    assert token.returncode == 0 and token.stdout.startswith("svt_")
    listed = run(config, "token", "list").stdout
    assert "prometheus" in listed and token.stdout.strip() not in listed
