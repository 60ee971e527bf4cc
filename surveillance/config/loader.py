"""Load a configuration file: YAML (safely), ``${VAR}`` secrets, CSV camera lists, checks.

Every problem is reported as ``file:line: field: message`` so that an administrator with
hundreds of cameras can go straight to the row at fault. All problems are collected, not
just the first one.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from surveillance.config.models import (
    BUILTIN_TAGS,
    CLUSTER_NEEDS_POSTGRESQL,
    DEFAULT_SIP_ID,
    MEDIA_HOST_REQUIRED,
    RTP_RANGE_REVERSED,
    WILDCARD_HOSTS,
    AppConfig,
    ClusterConfig,
    Gb28181Config,
    IngestConfig,
    ServerConfig,
    own_sip_id,
)
from surveillance.config.networks import AllowedHosts
from surveillance.errors import SurveillanceError

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(SurveillanceError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class _Origin:
    file: str
    line: int


class _Document:
    """Plain Python data plus where each value came from, keyed by its field path."""

    def __init__(self) -> None:
        self.origins: dict[FieldPath, _Origin] = {}

    def origin(self, path: FieldPath, default_file: str) -> _Origin:
        # Walk up the path until a known node: a missing field is reported at its parent.
        for cut in range(len(path), -1, -1):
            found = self.origins.get(path[:cut])
            if found:
                return found
        return _Origin(default_file, 0)


_ENV_REF = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def _interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; ``$$`` is a literal ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV_REF.sub(replace, text)


def _to_python(
    node: yaml.Node,
    path: FieldPath,
    doc: _Document,
    file: str,
    env: Mapping[str, str],
    problems: list[ConfigProblem],
) -> Any:
    doc.origins[path] = _Origin(file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            if key in result:
                problems.append(
                    ConfigProblem(
                        file, key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key"
                    )
                )
            result[key] = _to_python(value_node, (*path, key), doc, file, env, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*path, index), doc, file, env, problems)
            for index, item in enumerate(node.value)
        ]
    value = _scalar(node)
    if isinstance(value, str) and "$" in value:
        try:
            value = _interpolate(value, env)
        except KeyError as missing:
            problems.append(
                ConfigProblem(
                    file,
                    node.start_mark.line + 1,
                    _dotted(path),
                    f"environment variable {missing.args[0]} is not set "
                    f"(write ${{{missing.args[0]}:-default}} to give a default)",
                )
            )
    return value


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a plain value here", node.start_mark
        )
    # SafeConstructor resolves only standard YAML types: no Python object tags, ever.
    return yaml.constructor.SafeConstructor().construct_object(node)


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


CSV_COLUMNS = (
    "id", "name", "platform", "url", "sub_url", "tags", "lat", "lon", "place",
    "transport", "mode", "enabled", "username", "password", "onvif",
)  # fmt: skip


def _read_camera_csv(
    path: Path,
    shown: str,
    first_index: int,
    doc: _Document,
    env: Mapping[str, str],
    problems: list[ConfigProblem],
) -> list[dict[str, Any]]:
    """Rows of a camera CSV as camera dicts; ``tags`` are separated by ``;`` or spaces."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        problems.append(ConfigProblem(shown, None, "", f"cannot read: {exc.strerror}"))
        return []
    cameras: list[dict[str, Any]] = []
    with handle:
        reader = csv.DictReader(handle)
        unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
        if unknown:
            problems.append(
                ConfigProblem(
                    shown,
                    1,
                    "",
                    f"unknown column(s) {sorted(unknown)}; known: {', '.join(CSV_COLUMNS)}",
                )
            )
            return []
        for row in reader:
            index = first_index + len(cameras)
            base: FieldPath = ("cameras", index)
            line = reader.line_num
            doc.origins[base] = _Origin(shown, line)
            camera: dict[str, Any] = {}
            location: dict[str, Any] = {}
            for column, raw in row.items():
                if column is None or raw is None or raw.strip() == "":
                    continue
                value: Any = raw.strip()
                try:
                    value = _interpolate(value, env)
                except KeyError as missing:
                    problems.append(
                        ConfigProblem(
                            shown,
                            line,
                            column,
                            f"environment variable {missing.args[0]} is not set",
                        )
                    )
                    continue
                if column == "tags":
                    value = [t for t in re.split(r"[;\s]+", value) if t]
                if column in ("lat", "lon", "place"):
                    location[column] = value
                    doc.origins[(*base, "location", column)] = _Origin(shown, line)
                elif column == "onvif":  # the device service address; the rest defaulted
                    camera["onvif"] = {"url": value}
                    doc.origins[(*base, "onvif", "url")] = _Origin(shown, line)
                    doc.origins[(*base, "onvif")] = _Origin(shown, line)
                else:
                    camera[column] = value
                    doc.origins[(*base, column)] = _Origin(shown, line)
            if location:
                camera["location"] = location
            cameras.append(camera)
    return cameras


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> AppConfig:
    """Read, interpolate, validate and cross-check a config file; raise ConfigError."""
    env = os.environ if env is None else env
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(shown, None, "", f"cannot read: {exc.strerror}")]) from exc
    return parse_config(text, shown, base_dir=path.parent, env=env)


def parse_config(
    text: str, shown: str, *, base_dir: Path, env: Mapping[str, str] | None = None
) -> AppConfig:
    env = os.environ if env is None else env
    problems: list[ConfigProblem] = []
    doc = _Document()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(shown, line, "", f"invalid YAML: {exc.problem}")]) from exc
    try:
        data = {} if root is None else _to_python(root, (), doc, shown, env, problems)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([ConfigProblem(shown, line, "", str(exc.problem))]) from exc
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(shown, 1, "", "the file must be a mapping of sections")])

    csv_files = data.get("camera_files") or []
    if isinstance(csv_files, list):
        cameras = data.setdefault("cameras", [])
        if isinstance(cameras, list):
            for entry in csv_files:
                csv_path = base_dir / str(entry)
                cameras.extend(
                    _read_camera_csv(csv_path, str(csv_path), len(cameras), doc, env, problems)
                )

    config: AppConfig | None = None
    reported: set[FieldPath] = set()
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            reported.add(loc)
            origin = doc.origin(loc, shown)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "finite_number":  # .nan or .inf in YAML
                message = "not a number (NaN or infinity): give a finite number"
            problems.append(ConfigProblem(origin.file, origin.line or None, _dotted(loc), message))
    problems.extend(_cross_check(data, doc, shown, reported))
    if problems:
        # In the order of the files' lines, as an editor walks them.
        raise ConfigError(sorted(problems, key=lambda p: (p.file != shown, p.file, p.line or 0)))
    assert config is not None
    relative = {
        name: base_dir / path
        for name in ("data_dir", "tls_certfile", "tls_keyfile")
        if (path := getattr(config.server, name)) is not None and not path.is_absolute()
    }
    if relative:
        server = config.server.model_copy(update=relative)
        config = config.model_copy(update={"server": server})
    recording_dir = config.recording.dir
    if recording_dir is not None and not recording_dir.is_absolute():
        recording = config.recording.model_copy(update={"dir": base_dir / recording_dir})
        config = config.model_copy(update={"recording": recording})
    shared_dir = config.cluster.shared_dir
    if shared_dir is not None and not shared_dir.is_absolute():
        cluster = config.cluster.model_copy(update={"shared_dir": base_dir / shared_dir})
        config = config.model_copy(update={"cluster": cluster})
    return config


def _cross_check(
    data: dict[str, Any], doc: _Document, shown: str, reported: set[FieldPath]
) -> list[ConfigProblem]:
    """References between sections: unique ids, known platforms, known tags, allowed hosts.

    Read from the raw data rather than the validated model, so that they are reported in
    the same pass as each field's own problems (an administrator fixing a file of hundreds
    of cameras sees every problem at once). A value that is not yet of the right type is
    left to the field's own problem, and a field with a problem is not reported twice."""
    problems: list[ConfigProblem] = []

    def problem(path: FieldPath, message: str) -> None:
        if path in reported:
            return
        origin = doc.origin(path, shown)
        problems.append(ConfigProblem(origin.file, origin.line or None, _dotted(path), message))

    tag_ids = set(BUILTIN_TAGS)
    for index, tag in _entries(data, "tags"):
        if (tag_id := _text(tag, "id")) is not None:
            if tag_id in tag_ids:
                problem(("tags", index, "id"), f"tag {tag_id!r} is already defined")
            tag_ids.add(tag_id)
    platform_ids: set[str] = set()
    for index, platform in _entries(data, "platforms"):
        if (platform_id := _text(platform, "id")) is not None:
            if platform_id in platform_ids:
                problem(("platforms", index, "id"), f"duplicate platform id {platform_id!r}")
            platform_ids.add(platform_id)
    _cross_check_gb28181(data, platform_ids, tag_ids, problem, reported)
    cluster = data.get("cluster")
    if isinstance(cluster, dict) and cluster.get("enabled") is True:
        database = data.get("database")
        url = _text(database, "url") if isinstance(database, dict) else None
        if url is None or not url.lower().startswith("postgresql"):
            problem(("cluster", "enabled"), CLUSTER_NEEDS_POSTGRESQL)
        _cross_check_cluster_url(data, cluster, problem)
    recording = data.get("recording")
    recording_tags = recording.get("tags") if isinstance(recording, dict) else None
    for tag_id in recording_tags if isinstance(recording_tags, dict) else {}:
        if isinstance(tag_id, str) and tag_id not in tag_ids:
            problem(("recording", "tags", tag_id), f"unknown tag {tag_id!r}")
    events = data.get("events")
    diagnosis = events.get("diagnosis") if isinstance(events, dict) else None
    diagnosis_tags = diagnosis.get("tags") if isinstance(diagnosis, dict) else None
    for tag_id in diagnosis_tags if isinstance(diagnosis_tags, dict) else {}:
        if isinstance(tag_id, str) and tag_id not in tag_ids:
            problem(("events", "diagnosis", "tags", tag_id), f"unknown tag {tag_id!r}")
    allowed = _allowed_hosts(data)
    camera_ids: set[str] = set()
    onvif_devices: dict[tuple[str, str, int, str], tuple[int, str]] = {}
    for index, camera in _entries(data, "cameras"):
        for field_name in ("url", "sub_url"):
            url = _text(camera, field_name)
            if url and allowed is not None and not allowed.permits(url):
                problem(
                    ("cameras", index, field_name),
                    "stream host is outside ingest.allowed_networks",
                )
        if (camera_id := _text(camera, "id")) is not None:
            if camera_id in camera_ids:
                problem(("cameras", index, "id"), f"duplicate camera id {camera_id!r}")
            camera_ids.add(camera_id)
            device = _onvif_device(camera)
            first = onvif_devices.setdefault(device, (index, camera_id)) if device else None
            if first is not None and first[0] != index:
                at = doc.origin(("cameras", first[0], "onvif", "url"), shown)
                where = f"{at.file}:{at.line}" if at.line else at.file
                problem(
                    ("cameras", index, "onvif", "url"),
                    f"camera {camera_id!r} has the same ONVIF device as camera {first[1]!r} "
                    f"({where}): one device under two ids is steered under two "
                    "PTZ leases at once and its streams are pulled twice; keep one of them",
                )
        platform_ref = _text(camera, "platform")
        if platform_ref is not None and platform_ref not in platform_ids:
            problem(("cameras", index, "platform"), f"unknown platform {platform_ref!r}")
        tags = camera.get("tags")
        for tag_index, tag_id in enumerate(tags if isinstance(tags, list) else []):
            if isinstance(tag_id, str) and tag_id not in tag_ids:
                problem(
                    ("cameras", index, "tags", tag_index),
                    f"unknown tag {tag_id!r}; declare it under `tags` or use one of "
                    f"{', '.join(sorted(tag_ids))}",
                )
    return problems


def _cross_check_gb28181(
    data: dict[str, Any],
    platform_ids: set[str],
    tag_ids: set[str],
    problem: Callable[[FieldPath, str], None],
    reported: set[FieldPath],
) -> None:
    """GB/T 28181 platforms share the platform ids (their channels are cameras of a
    platform like any other); each registers with its own device id, not this service's;
    their tags exist; the section's own checks (Gb28181Config's, which pydantic skips while
    any field of it is wrong). Adds their ids to ``platform_ids``; problems go to ``problem``."""
    section = data.get("gb28181")
    if not isinstance(section, dict):
        return
    whole = ("gb28181",) not in reported  # the model's check said it already, else
    sip_id = _text(section, "sip_id") or DEFAULT_SIP_ID
    defaults = Gb28181Config.model_fields
    listen = _text(section, "listen") or defaults["listen"].default
    wildcard = listen in WILDCARD_HOSTS and not _text(section, "media_host")
    if whole and section.get("enabled") is True and wildcard:
        problem(("gb28181", "media_host"), MEDIA_HOST_REQUIRED)
    low = section.get("rtp_port_min", defaults["rtp_port_min"].default)
    high = section.get("rtp_port_max", defaults["rtp_port_max"].default)
    if whole and isinstance(low, int) and isinstance(high, int) and high < low:
        problem(("gb28181", "rtp_port_max"), RTP_RANGE_REVERSED)
    device_ids: set[str] = set()
    for index, platform in _entries(section, "platforms"):
        where = ("gb28181", "platforms", index)
        if (platform_id := _text(platform, "id")) is not None:
            if platform_id in platform_ids:
                problem((*where, "id"), f"duplicate platform id {platform_id!r}")
            platform_ids.add(platform_id)
        if (device_id := _text(platform, "device_id")) is not None:
            if device_id in device_ids:
                problem((*where, "device_id"), f"duplicate device id {device_id!r}")
            if whole and device_id == sip_id:
                problem((*where, "device_id"), own_sip_id(platform_id or str(index), device_id))
            device_ids.add(device_id)
        tags = platform.get("tags")
        for tag_index, tag_id in enumerate(tags if isinstance(tags, list) else []):
            if isinstance(tag_id, str) and tag_id not in tag_ids:
                problem((*where, "tags", tag_index), f"unknown tag {tag_id!r}")
        rules = platform.get("tag_rules")
        for rule_index, rule in enumerate(rules if isinstance(rules, list) else []):
            rule_tags = rule.get("tags") if isinstance(rule, dict) else None
            for tag_index, tag_id in enumerate(rule_tags if isinstance(rule_tags, list) else []):
                if isinstance(tag_id, str) and tag_id not in tag_ids:
                    problem(
                        (*where, "tag_rules", rule_index, "tags", tag_index),
                        f"unknown tag {tag_id!r}",
                    )


def _onvif_device(camera: dict[str, Any]) -> tuple[str, str, int, str] | None:
    """The camera's ONVIF device service as (scheme, host, port, path), the way two spellings
    of one URL compare equal; None without a readable ``onvif.url``."""
    onvif = camera.get("onvif")
    url = _text(onvif, "url") if isinstance(onvif, dict) else None
    try:
        parts = urlsplit(url or "")
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None  # the field's own problem
    scheme = parts.scheme.lower()
    if not host or scheme not in ("http", "https"):
        return None
    default = 443 if scheme == "https" else 80
    return scheme, host, port or default, parts.path.rstrip("/") or "/"


def _entries(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    """The mapping entries of a list section, with their positions."""
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [(index, entry) for index, entry in enumerate(value) if isinstance(entry, dict)]


def _text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _cross_check_cluster_url(
    data: dict[str, Any], cluster: dict[str, Any], problem: Callable[[FieldPath, str], None]
) -> None:
    """Other nodes forward requests to ``cluster.url`` naming its host: this node's Host
    check must let that name in, or every forwarded request is answered 400."""
    try:
        host = ClusterConfig.model_validate(cluster).host()
        server = ServerConfig.model_validate(data.get("server") or {})
    except ValidationError:
        return  # their own problems are reported
    if host is not None and host.lower() not in server.host_names():
        problem(
            ("cluster", "url"),
            f"host {host!r} is not in server.allowed_hosts: other nodes forward requests "
            "to this URL and the node would refuse them (add it there)",
        )


def _allowed_hosts(data: dict[str, Any]) -> AllowedHosts | None:
    """The ingest section's allowed networks, or None while that section has problems of
    its own (they are reported; checking hosts against a broken list would mislead)."""
    try:
        ingest = IngestConfig.model_validate(data.get("ingest") or {})
    except ValidationError:
        return None
    return AllowedHosts(ingest.allowed_networks)
