"""What `surveillance demo --nodes N` and the nodes' logs check before anything runs: the node
count is a usage error, a busy port is found, every line is UTC with a Z and names its
node, and a start-up traceback already told in one line is not shown."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterator

import pytest

from surveillance.cli import build_parser
from surveillance.demo_cluster import MAX_NODES, busy_ports
from surveillance.logs import SERVER_LOGGERS, ToldAlready, configure_logging
from surveillance.redact import Redactor

UTC_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{3}Z INFO    \[node-b\] demo\.test: hello$"
)


@pytest.mark.parametrize("count", ["0", "-2", str(MAX_NODES + 1), "three"])
def test_a_bad_node_count_is_a_usage_error(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["demo", "--nodes", count])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and "--nodes" in err and "Traceback" not in err
    assert build_parser().parse_args(["demo", "--nodes", str(MAX_NODES)]).nodes == MAX_NODES


def test_busy_ports_finds_a_listener_and_not_a_free_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            free = int(other.getsockname()[1])
        assert busy_ports("127.0.0.1", range(port, port + 1)) == [port]
        assert busy_ports("127.0.0.1", range(free, free + 1)) == []


@pytest.fixture
def far_time_zone() -> Iterator[None]:
    """A time zone 14 hours from UTC, and the logging set-up put back afterwards."""
    saved = os.environ.get("TZ")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {name: logging.getLogger(name).filters[:] for name in SERVER_LOGGERS}
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
        root.handlers[:], root.level = handlers, level
        for name, kept in filters.items():
            logging.getLogger(name).filters[:] = kept


def test_lines_are_utc_with_a_z_and_name_the_node(
    far_time_zone: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Redactor(), node_id="node-b", told_already=["pkg.Refused"])
    before = time.time()
    logging.getLogger("demo.test").info("hello")
    line = capsys.readouterr().err.strip()
    match = UTC_LINE.match(line)
    assert match is not None, line
    assert match["at"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(before))) or (
        match["at"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(before) + 1))
    )
    assert time.localtime(before).tm_hour != time.gmtime(before).tm_hour  # the zone is far
    # Set up twice (a test's second app): one filter of each kind, not two.
    configure_logging(Redactor(), told_already=["pkg.Refused"])
    kinds = [type(f).__name__ for f in logging.getLogger("uvicorn.error").filters]
    assert kinds.count("ToldAlready") == 1 and kinds.count("RedactingFilter") == 1


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, None, None)


def test_told_already_drops_only_that_errors_start_up_traceback() -> None:
    told = ToldAlready(["surveillance.cluster.errors.NodeIdTaken"])
    # As uvicorn logs a failed start-up: the app's traceback as the message.
    traceback = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in start\n'
        "surveillance.cluster.errors.NodeIdTaken: node id 'node-a' is in use by a live node\n"
    )
    assert not told.filter(_record(traceback))
    other = traceback.replace("NodeIdTaken", "LeaseLost")
    assert told.filter(_record(other))  # a bug's traceback is shown
    assert told.filter(_record("Application startup failed. Exiting."))
    assert told.filter(_record("surveillance.cluster.errors.NodeIdTaken: not a traceback"))
