"""Imports flow one way (docs/architecture.md, "Packages and the import rule").

Each top-level part of the package has a rank; a part may import only parts of a lower
rank. This keeps the media core free of the web layer, the case and wall stores free of
video, and the whole free of import cycles between packages. Read from the source files
with ``ast``, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import surveillance

PACKAGE_DIR = Path(surveillance.__file__).parent

# Lower ranks are imported by higher ones, never the other way round.
RANKS = {
    "errors": 0,
    "config": 1,
    "redact": 1,
    "logs": 2,
    "catalog": 2,
    "db": 2,
    "media": 3,
    "cases": 3,
    "wall": 3,
    "auth": 3,
    "recordings": 3,
    "events": 3,
    "zones": 3,
    "gb28181": 3,  # GB/T 28181 signalling and its records: no media, no services
    "cluster": 3,  # membership and lease records and SQL: no services, no HTTP
    "onvif": 3,  # ONVIF discovery and device requests, their records: no services
    "services": 4,
    # The throwaway PostgreSQL of the demo and the tests: subprocesses only, imports nothing.
    "local_postgres": 4,
    "simulator": 4,
    "api": 5,
    "web": 5,  # static files only (its __init__ lets importlib.resources find them)
    "demo": 6,
    "demo_onvif": 6,  # the demo's simulated ONVIF PTZ cameras
    "demo_cluster": 6,  # `demo --nodes N`: node processes over a throwaway PostgreSQL
    "cli": 7,
}
# Importing the package root only reads its version string.
ROOT = "__init__"


def _part(module: str) -> str:
    """The top-level part of a dotted module name inside the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "surveillance" or name.startswith("surveillance.")}


def _source_files() -> list[tuple[str, Path]]:
    files = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        part = relative.parts[0].removesuffix(".py") if relative.parts else ROOT
        files.append((part, path))
    return files


def test_every_part_has_a_rank() -> None:
    parts = {part for part, _ in _source_files()} - {ROOT}
    assert parts - RANKS.keys() == set(), "give new parts of the package a rank here"


def test_imports_flow_from_higher_to_lower_ranks() -> None:
    wrong = []
    for part, path in _source_files():
        if part == ROOT:
            continue
        for module in _imports(path):
            target = _part(module)
            if target in (part, ROOT):
                continue
            if RANKS[target] >= RANKS[part]:
                wrong.append(f"{path.relative_to(PACKAGE_DIR)} imports {module}")
    assert wrong == []


# Parts held to less than their rank allows: the video core stays free of the service.
ONLY = {"media": {"errors"}}


def test_the_video_core_imports_only_errors() -> None:
    wrong = []
    for part, path in _source_files():
        allowed = ONLY.get(part)
        if allowed is None:
            continue
        for module in _imports(path):
            target = _part(module)
            if target not in ({part} | allowed):
                wrong.append(f"{path.relative_to(PACKAGE_DIR)} imports {module}")
    assert wrong == []


def test_web_holds_only_static_assets() -> None:
    code = [p for p in (PACKAGE_DIR / "web").rglob("*.py") if p.name != "__init__.py"]
    assert code == [], "page routes belong in surveillance/api; web/ is static files"
