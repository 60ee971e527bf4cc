"""Request bodies on the real server (uvicorn on a socket): a body over its route's cap is
refused with 413 before it is read whole, a 422 answer never echoes what was sent, and NaN or
Infinity in a JSON body is a 422, not a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from surveillance.api.schemas.auth import SIGN_IN_BODY_BYTES
from surveillance.api.schemas.base import DEFAULT_BODY_BYTES
from surveillance.config.models import AppConfig
from tests.auth_helpers import bearer
from tests.service import ServiceProcess

HUGE = 300 * 1024 * 1024  # the acceptance test's anonymous sign-in body
CHUNK = 64 * 1024
# The most a test sends of a huge body before it waits for the answer: if the server waited
# for the whole body instead of refusing it, the answer would never come.
SENT_AT_MOST = 2 * 1024 * 1024
ANSWER_WAIT_S = 10.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir: Path = tmp_path_factory.mktemp("bodies")
    running = ServiceProcess(AppConfig.model_validate({"server": {"data_dir": str(data_dir)}}))
    running.start()
    yield running
    running.stop()


def _status_after_partial_body(service: ServiceProcess, head: str, chunks: Iterator[bytes]) -> int:
    """Send the request head and at most SENT_AT_MOST bytes of body, then read the status
    line. A server that refuses early answers; one that reads on times out (fails)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=ANSWER_WAIT_S) as conn:
        conn.sendall(head.encode())
        sent = 0
        for chunk in chunks:
            try:
                conn.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server stopped reading: it has answered already
            sent += len(chunk)
            if sent >= SENT_AT_MOST:
                break
        answer = b""
        while b"\r\n" not in answer:
            data = conn.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1])


def _head(service: ServiceProcess, path: str, length_header: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
        f"Content-Type: application/json\r\n{length_header}\r\n\r\n"
    )


def test_a_huge_anonymous_sign_in_body_is_refused_before_it_is_read(
    service: ServiceProcess,
) -> None:
    head = _head(service, "/api/auth/login", f"Content-Length: {HUGE}")
    body = iter(lambda: b'{"name": "' + b"A" * (CHUNK - 10), None)
    assert _status_after_partial_body(service, head, body) == 413


def test_a_chunked_body_is_refused_once_it_passes_the_cap(service: ServiceProcess) -> None:
    """No Content-Length to judge by: the server counts what it reads and stops at the cap."""
    head = _head(service, "/api/auth/login", "Transfer-Encoding: chunked")
    piece = b"A" * CHUNK
    chunks = iter(lambda: b"%x\r\n%s\r\n" % (len(piece), piece), None)
    assert _status_after_partial_body(service, head, chunks) == 413


def test_every_route_has_a_cap(service: ServiceProcess) -> None:
    """A signed-in route with no cap of its own gets the app's."""
    headers = bearer(service.node)
    too_big = {"title": "x" * (DEFAULT_BODY_BYTES + 1)}
    answer = httpx.post(f"{service.url}/api/cases", json=too_big, headers=headers)
    assert answer.status_code == 413


def test_a_sign_in_within_its_cap_is_answered_as_usual(service: ServiceProcess) -> None:
    body = {"name": "nobody", "password": "p" * 1000}
    assert len(str(body)) < SIGN_IN_BODY_BYTES
    answer = httpx.post(f"{service.url}/api/auth/login", json=body)
    assert answer.status_code == 401


def test_a_422_answer_does_not_echo_the_input(service: ServiceProcess) -> None:
    sent = "Z" * 6_000  # twice, within the sign-in cap, far over the name's 64 characters
    answer = httpx.post(
        f"{service.url}/api/auth/login",
        json={"name": sent, "password": "x", sent: "an unknown field named by the client"},
    )
    assert answer.status_code == 422
    assert "Z" * 70 not in answer.text
    assert len(answer.content) < 2000
    detail = answer.json()["detail"]
    assert {"loc", "msg", "type"} == set(detail[0])
    assert ["body", "name"] in [error["loc"] for error in detail]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_422(service: ServiceProcess, constant: str) -> None:
    # In a field that wants text (anonymous) ...
    answer = httpx.post(
        f"{service.url}/api/auth/login",
        content=f'{{"name": {constant}, "password": "x"}}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    # ... and in one that wants a number (signed in; the case need not exist: the body is
    # judged first).
    answer = httpx.post(
        f"{service.url}/api/cases/1/items/clip",
        content=f'{{"camera": "cam", "pre_s": {constant}}}',
        headers={"Content-Type": "application/json", **bearer(service.node)},
    )
    assert answer.status_code == 422, answer.text
    assert "traceback" not in answer.text.lower()
