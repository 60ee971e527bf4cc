"""Logging set-up for the command line: one handler, every record redacted.

Times are UTC with a ``Z`` whatever the machine's time zone (``TZ``): the nodes of a
cluster, started from different shells, write lines one can put side by side. A node of a
cluster names itself on every line, so that the demo's nodes sharing one terminal (or
several nodes' logs gathered in one place) can be told apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from surveillance.redact import RedactingFilter, Redactor

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
NODE_LOG_FORMAT = "%(asctime)s %(levelname)-7s [{node}] %(name)s: %(message)s"
# uvicorn writes each request's target, query string included ("WebSocket
# /api/live/mse?...&ticket=... [accepted]", the access log's "GET /x?token=..."): these
# loggers redact their records themselves too, so a handler added to them later (uvicorn's
# own, with a log config) never sees a ticket or a token either.
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")
LIFESPAN_LOGGER = "uvicorn.error"


class UtcFormatter(logging.Formatter):
    """``2026-12-02T06:38:24.120Z``: ISO 8601 in UTC, unambiguous in any time zone."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.converter = time.gmtime


class ToldAlready(logging.Filter):
    """Drops the traceback uvicorn logs when the app's start-up fails with an error the
    app has already explained in one line (a refusal, not a bug: e.g. a node id in use)."""

    def __init__(self, errors: Collection[str]) -> None:
        super().__init__()
        self._errors = tuple(f"{name}:" for name in errors)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if not isinstance(message, str) or not message.startswith("Traceback"):
            return True
        last = message.rstrip().rsplit("\n", 1)[-1]
        return not last.startswith(self._errors)


def configure_logging(
    redactor: Redactor,
    level: int = logging.INFO,
    node_id: str | None = None,
    told_already: Collection[str] = (),
) -> None:
    """``node_id``: this node's id on every line; ``told_already``: the qualified names of
    exceptions whose start-up traceback is not shown (see :class:`ToldAlready`)."""
    handler = logging.StreamHandler()
    log_format = LOG_FORMAT
    if node_id is not None:
        log_format = NODE_LOG_FORMAT.format(node=node_id.replace("%", "%%"))
    handler.setFormatter(UtcFormatter(log_format))
    # On the handler, not a logger: records from every library (uvicorn, aiortc) pass it.
    handler.addFilter(RedactingFilter(redactor))
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.filters[:] = [
            f for f in logger.filters if not isinstance(f, RedactingFilter | ToldAlready)
        ]
        logger.addFilter(RedactingFilter(redactor))
    if told_already:
        logging.getLogger(LIFESPAN_LOGGER).addFilter(ToldAlready(told_already))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
