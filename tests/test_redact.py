"""Credentials never leave the server: URLs, free text and log records are redacted."""

from __future__ import annotations

import logging

import pytest

from surveillance.redact import RedactingFilter, Redactor, redact_url, with_credentials


def test_redact_url_hides_userinfo() -> None:
    assert redact_url("rtsp://admin:pw@10.0.0.1:554/x") == "rtsp://***@10.0.0.1:554/x"
    assert redact_url("failed: 'rtsps://u@h/x' (401)") == "failed: 'rtsps://***@h/x' (401)"
    assert redact_url("rtsp://10.0.0.1/x") == "rtsp://10.0.0.1/x"


def test_with_credentials_encodes_special_characters() -> None:
    url = with_credentials("rtsp://old:old@h:554/x", "op", "p@ss:w/rd")
    assert url == "rtsp://op:p%40ss%3Aw%2Frd@h:554/x"


def test_redactor_removes_known_secrets_in_any_form() -> None:
    redact = Redactor(["p@ss:w/rd"])
    assert "p@ss" not in redact("bad password p@ss:w/rd given")
    assert "p%40ss" not in redact("url had p%40ss%3Aw%2Frd inside")


def test_logging_filter_redacts_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    handler_filter = RedactingFilter(Redactor(["hunter22"]))
    record_holder: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record_holder.append(record)

    handler = Keep()
    handler.addFilter(handler_filter)
    logger.addHandler(handler)
    try:
        logger.warning("open %s failed", "rtsp://u:hunter22@h/x")
        try:
            raise RuntimeError("password hunter22 rejected")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = " ".join(r.getMessage() + (r.exc_text or "") for r in record_holder)
    assert "hunter22" not in text
    assert "rtsp://***@h/x" in text
