"""Path traversal: every identifier a route takes, given `../`, `..././`, `%2e%2e/`,
absolute paths and encoded variants, reaches nothing outside the stores.

Requests go over a raw socket, so no client library normalises the dot segments away
before the server sees them."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from surveillance.api.guards import served_routes
from tests.security.conftest import SecureNode

pytestmark = pytest.mark.rtsp

CANARY = "TRAVERSAL-CANARY-3f9d"
MARKERS = (CANARY.encode(), b"root:x:0:0", b"[build-system]")
PAYLOADS = [
    "../canary.txt",
    "../../canary.txt",
    "..././..././canary.txt",
    "....//....//canary.txt",
    "%2e%2e%2fcanary.txt",
    "%2e%2e/%2e%2e/canary.txt",
    "..%2f..%2fcanary.txt",
    "%252e%252e%252fcanary.txt",
    "..%5c..%5ccanary.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "..%c0%af..%c0%afetc/passwd",
    "%00../../etc/passwd",
]


def raw_request(port: int, method: str, target: str, authorization: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {authorization}\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        connection.sendall(request.encode())
        answer = b""
        while len(answer) < 1 << 20:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    match = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
    assert match, status_line
    return int(match.group(1)), answer


def test_no_identifier_reaches_outside_the_stores(secure: SecureNode) -> None:
    # A file beside the data directory, where "../" from any store would land.
    Path(secure.data_dir.parent / "canary.txt").write_text(CANARY)
    Path(secure.data_dir / "canary.txt").write_text(CANARY)
    app = secure.service._app
    assert app is not None
    authorization = secure.headers["admin"]["Authorization"]
    port = secure.service.port
    targets: list[tuple[str, str]] = []
    for path, route in served_routes(app):
        if not isinstance(route, APIRoute) or "{" not in path:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            for payload in PAYLOADS:
                # Each identifier in turn; the others get harmless real-looking values.
                for name in re.findall(r"{(\w+)}", path):
                    target = path
                    for other in re.findall(r"{(\w+)}", path):
                        value = payload if other == name else "x"
                        target = target.replace("{" + other + "}", value)
                    targets.append((method, target))
    targets += [("GET", f"/static/{payload}") for payload in PAYLOADS]
    targets += [("GET", f"/static/js/{payload}") for payload in PAYLOADS]
    problems = []
    for method, target in targets:
        status, answer = raw_request(port, method, target, authorization)
        leaked = [m.decode() for m in MARKERS if m in answer]
        # Pages (/wall/{layout}, /cases/{number}) are one static file whatever they name.
        is_page = not target.startswith(("/api/", "/static/", "/metrics"))
        if leaked or status >= 500 or (method == "GET" and status == 200 and not is_page):
            problems.append(f"{method} {target}: {status} {leaked}")
    assert len(targets) > 300
    assert not problems, "\n".join(problems)
