"""A retrying loop says a database outage once, and its end once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError

from surveillance.db.outage_log import OutageLog


def test_an_outage_is_said_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.outage")
    outage = OutageLog(log, "re-checking live views")
    refused = OperationalError("SELECT 1", {}, Exception("connection refused"))
    with caplog.at_level(logging.INFO, "test.outage"):
        outage.worked()  # no outage: nothing to say
        for _ in range(50):
            outage.failed(refused)
        outage.worked()
        outage.worked()
        outage.failed(refused)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        ("WARNING", "re-checking live views paused: the database does not answer "
                    "(OperationalError); retrying"),
        ("INFO", "re-checking live views: the database answers again"),
        ("WARNING", "re-checking live views paused: the database does not answer "
                    "(OperationalError); retrying"),
    ]  # fmt: skip
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
