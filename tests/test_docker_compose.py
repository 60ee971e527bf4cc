"""docker/compose.yaml cannot run here (no Docker engine): its names are cross-checked
instead. Three nodes and PostgreSQL 16; each node's mounted config loads with the
project's loader given the secrets compose passes, and agrees with its service (port,
host name, volumes); node ids and URLs are distinct; one shared volume at the shared_dir
of every config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from surveillance.config import ConfigError, load_config

DOCKER = Path(__file__).resolve().parents[1] / "docker"
NODES = ("node-a", "node-b", "node-c")
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "CAMERAS_PASSWORD": "cam-secret"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a path relative to docker/)."""
    found = {}
    for entry in service["volumes"]:
        source, target, *_ = entry.split(":")
        found[target] = source
    return found


def test_compose_has_postgres_and_three_nodes_that_agree_with_their_configs() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"db", *NODES}
    db = services["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert mounts(db) == {"/var/lib/postgresql/data": "pgdata"}
    volumes = set(spec["volumes"])
    assert "pgdata" in volumes

    ids, urls, shared = set(), set(), set()
    for name in NODES:
        node = services[name]
        assert node["depends_on"] == {"db": {"condition": "service_healthy"}}
        build = node["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        mounted = mounts(node)
        config_file = DOCKER / mounted["/etc/surveillance/config.yaml"]
        assert config_file == DOCKER / "cluster" / f"{name}.yaml"
        # The camera list sits beside the config, where camera_files finds it.
        assert (DOCKER / mounted["/etc/surveillance/cameras.csv"]).is_file()
        env = node["environment"]
        assert set(SECRETS) <= set(env)
        config = load_config(config_file, env=SECRETS)
        cluster = config.cluster
        assert cluster.enabled and cluster.node_id == name
        assert cluster.url is not None and cluster.shared_dir is not None
        url = urlsplit(cluster.url)
        assert url.hostname == node["hostname"] == name
        assert url.port == config.server.port == int(env["NODE_PORT"])
        assert node["ports"] == [f"{config.server.port}:{config.server.port}"]
        assert set(NODES) <= set(config.server.allowed_hosts)
        assert config.server.host == "0.0.0.0"
        # Its own data volume holds data_dir; the one shared volume holds shared_dir.
        own = mounted["/var/lib/surveillance"]
        assert own == f"{name}-data" and own in volumes
        assert config.server.data_dir.is_relative_to("/var/lib/surveillance")
        assert mounted[str(cluster.shared_dir)] == "shared"
        database = urlsplit(config.database.url.get_secret_value())  # type: ignore[union-attr]
        assert database.hostname == "db" and database.password == SECRETS["POSTGRES_PASSWORD"]
        assert database.path == f"/{db['environment']['POSTGRES_DB']}"
        assert database.username == db["environment"]["POSTGRES_USER"]
        assert len(config.cameras) == 3
        ids.add(cluster.node_id)
        urls.add(cluster.url)
        shared.add(cluster.shared_dir)
    assert len(ids) == len(urls) == 3 and len(shared) == 1
    assert "shared" in volumes


def test_node_configs_take_their_secrets_from_the_environment() -> None:
    """No password is written in a config; without the variables a node refuses to start."""
    for name in NODES:
        text = (DOCKER / "cluster" / f"{name}.yaml").read_text()
        assert set(re.findall(r"\$\{(\w+)", text)) == set(SECRETS)
        with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
            load_config(DOCKER / "cluster" / f"{name}.yaml", env={})
    # The three differ only where a node must (see the comment in each file).
    lines = [
        [line for line in (DOCKER / "cluster" / f"{n}.yaml").read_text().splitlines()
         if not line.startswith("#")]
        for n in NODES
    ]  # fmt: skip
    differing = {
        line.split(":")[0].strip() for text in lines for line in text if line not in lines[0]
    }
    assert differing == {"port", "node_id", "url"}


def test_the_image_installs_the_postgresql_driver() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[postgresql]"' in dockerfile
    assert "/var/lib/surveillance-shared" in dockerfile
