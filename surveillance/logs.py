"""Logging set-up for the command line: one handler, every record redacted."""

from __future__ import annotations

import logging

from surveillance.redact import RedactingFilter, Redactor

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# uvicorn writes each request's target, query string included ("WebSocket
# /api/live/mse?...&ticket=... [accepted]", the access log's "GET /x?token=..."): these
# loggers redact their records themselves too, so a handler added to them later (uvicorn's
# own, with a log config) never sees a ticket or a token either.
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def configure_logging(redactor: Redactor, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    # On the handler, not a logger: records from every library (uvicorn, aiortc) pass it.
    handler.addFilter(RedactingFilter(redactor))
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, RedactingFilter)]
        logger.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
