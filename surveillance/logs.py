"""Logging set-up for the command line: one handler, every record redacted."""

from __future__ import annotations

import logging

from surveillance.redact import RedactingFilter, Redactor

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(redactor: Redactor, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    # On the handler, not a logger: records from every library (uvicorn, aiortc) pass it.
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
