"""What a loop that retries says when the database does not answer: once per outage.

A loop that touches the database every few seconds (re-checking live views, retention, the
node's heartbeat) would otherwise log a full traceback at every turn of an outage, and the
lines that matter (the outage began, the database is back) would be lost among them.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError


class OutageLog:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what  # "re-checking live views", say
        self._down = False

    def failed(self, error: SQLAlchemyError) -> None:
        """A turn failed on the database: a warning without traceback, once per outage."""
        if not self._down:
            self._down = True
            self._log.warning(
                "%s paused: the database does not answer (%s); retrying",
                self._what, type(error).__name__,
            )  # fmt: skip

    def worked(self) -> None:
        """A turn went through: says the outage ended, if there was one."""
        if self._down:
            self._down = False
            self._log.info("%s: the database answers again", self._what)
