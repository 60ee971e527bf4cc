"""Host names and ids, on the real server: a request naming a Host outside
``server.allowed_hosts`` is refused before any route or the origin check sees it, and ids in
paths and queries are ASCII digits only."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from surveillance.api.hosts import allowed_hosts
from surveillance.api.security_headers import SECURITY_HEADERS
from surveillance.config.models import AppConfig
from tests.auth_helpers import bearer
from tests.security.conftest import SecureNode
from tests.service import ServiceProcess

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir: Path = tmp_path_factory.mktemp("hosts")
    server = {
        "data_dir": str(data_dir),
        "allowed_hosts": ["localhost", "127.0.0.1", "Wall.Example"],
    }
    running = ServiceProcess(AppConfig.model_validate({"server": server}))
    running.start()
    yield running
    running.stop()


def _get(service: ServiceProcess, host: str, path: str = "/api/auth/me", **headers: str) -> int:
    answer = httpx.get(f"{service.url}{path}", headers={"Host": host, **headers})
    return answer.status_code


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "localhost.", "[::2]"]
)
def test_a_host_not_allowed_is_refused(service: ServiceProcess, host: str) -> None:
    auth = bearer(service.node)
    answer = httpx.get(
        f"{service.url}/api/auth/me", headers={"Host": host.format(port=service.port), **auth}
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": "this service is not served under that host name"}


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "wall.example", "WALL.example:443"]
)
def test_allowed_hosts_are_served(service: ServiceProcess, host: str) -> None:
    assert _get(service, host.format(port=service.port), **bearer(service.node)) == 200


def test_a_forged_host_cannot_make_a_foreign_origin_look_like_ours(
    service: ServiceProcess,
) -> None:
    """DNS rebinding: a page on evil.example, now resolving to this node, posts with the
    cookie it obtained; its Origin matches a Host it chose. The Host check stops it first."""
    port = service.port
    answer = httpx.post(
        f"{service.url}/api/auth/login",
        json={"name": "admin", "password": "wrong, but it must not get that far"},
        headers={"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
    )
    assert answer.status_code == 400


def _websocket_handshake_status(service: ServiceProcess, host: str, token: str) -> int:
    request = (
        "GET /api/live/mse?camera=none HTTP/1.1\r\n"
        f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: {token}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split(b" ")[1])


def test_a_websocket_naming_a_host_not_allowed_is_refused(service: ServiceProcess) -> None:
    token = bearer(service.node)["Authorization"]
    assert _websocket_handshake_status(service, f"localhost:{service.port}", token) == 101
    assert _websocket_handshake_status(service, f"evil.example:{service.port}", token) == 403


def test_the_listening_address_is_allowed_when_it_is_one_address(tmp_path: Path) -> None:
    config = AppConfig.model_validate({"server": {"data_dir": str(tmp_path), "host": "10.1.2.3"}})
    assert "10.1.2.3" in allowed_hosts(config.server)
    anywhere = {"data_dir": str(tmp_path), "host": "0.0.0.0"}
    assert "0.0.0.0" not in allowed_hosts(AppConfig.model_validate({"server": anywhere}).server)


@pytest.mark.parametrize("before_id", ["١٢", "+12", " 12", "1_2", "12.0", "0"])
def test_an_id_in_a_query_is_ascii_digits_only(service: ServiceProcess, before_id: str) -> None:
    answer = httpx.get(
        f"{service.url}/api/audit", params={"before_id": before_id}, headers=bearer(service.node)
    )
    assert answer.status_code == 422


def test_an_item_id_in_a_path_is_ascii_digits_only(secure: SecureNode) -> None:
    admin = secure.headers["admin"]
    base = f"/api/cases/{secure.own_case}/items"
    assert secure.client.get(f"{base}/{secure.own_item}", headers=admin).status_code == 200
    arabic = str(secure.own_item).translate(ARABIC_INDIC)
    for ref in (arabic, f"{arabic}/content"):
        assert secure.client.get(f"{base}/{ref}", headers=admin).status_code == 422


def _raw_status(service: ServiceProcess, head_lines: list[str]) -> tuple[int, bytes]:
    """A request as sent, Host headers and all (an HTTP client sends one Host at most)."""
    request = "\r\n".join(["GET /api/health HTTP/1.1", *head_lines, "Connection: close"])
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall((request + "\r\n\r\n").encode())
        answer = b""
        while data := conn.recv(4096):
            answer += data
    return int(answer.split(b" ", 2)[1]), answer


def test_two_host_headers_are_refused(service: ServiceProcess) -> None:
    """RFC 9112 3.2: more than one Host is a 400, even when the first is allowed (a proxy
    and this service could each read a different one)."""
    port = service.port
    assert _raw_status(service, [f"Host: 127.0.0.1:{port}"])[0] == 200
    status, _ = _raw_status(service, [f"Host: 127.0.0.1:{port}", "Host: evil.example"])
    assert status == 400
    status, _ = _raw_status(service, [f"Host: 127.0.0.1:{port}", f"Host: 127.0.0.1:{port}"])
    assert status == 400


@pytest.mark.parametrize(
    "host", ["localhost:99999", "localhost:80x", "localhost:", "localhost:0", "127.0.0.1:+80"]
)
def test_a_host_with_an_invalid_port_is_refused(service: ServiceProcess, host: str) -> None:
    assert _get(service, host, "/api/health") == 400


def test_a_too_large_body_is_refused_with_the_security_headers(service: ServiceProcess) -> None:
    """The 413 for a Content-Length over the cap carries the headers every answer does."""
    huge = "Content-Length: 999999999"
    head = "\r\n".join(
        [
            "POST /api/auth/login HTTP/1.1",
            f"Host: 127.0.0.1:{service.port}",
            "Content-Type: application/json",
            huge,
            "Connection: close",
        ]
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall((head + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (data := conn.recv(4096)):
            answer += data
    status_line, _, headers = answer.partition(b"\r\n")
    assert b" 413 " in status_line
    names = {line.split(b":", 1)[0].strip().lower() for line in headers.split(b"\r\n") if line}
    for name in SECURITY_HEADERS:
        assert name.lower().encode() in names, (name, answer)
