"""Credentials never leave the server: URLs, free text and log records are redacted."""

from __future__ import annotations

import logging

import pytest

from surveillance.redact import (
    RedactingFilter,
    Redactor,
    hide_urls,
    redact_url,
    url_secrets,
    with_credentials,
)


def test_redact_url_hides_userinfo() -> None:
    assert redact_url("rtsp://admin:pw@10.0.0.1:554/x") == "rtsp://***@10.0.0.1:554/x"
    assert redact_url("failed: 'rtsps://u@h/x' (401)") == "failed: 'rtsps://***@h/x' (401)"
    assert redact_url("rtsp://10.0.0.1/x") == "rtsp://10.0.0.1/x"


DAHUA = "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&user=admin&password=Pa55-word"


def test_redact_url_hides_credentials_in_the_query_string() -> None:
    assert redact_url(DAHUA) == (
        "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&user=***&password=***"
    )
    # Other makes' names, any case, in FFmpeg's quoting; harmless parameters stay.
    text = "failed: 'rtsp://h/live?UserName=op&PWD=x1&passwd=x2&token=t&auth=a&api_key=k&ch=2'"
    assert redact_url(text) == (
        "failed: 'rtsp://h/live?UserName=***&PWD=***&passwd=***&token=***&auth=***"
        "&api_key=***&ch=2'"
    )
    # Both places at once, and a request line without scheme or host.
    assert redact_url("rtsp://u:p@h/x?pwd=y") == "rtsp://***@h/x?pwd=***"
    assert redact_url("DESCRIBE /x?key=abc RTSP/1.0") == "DESCRIBE /x?key=*** RTSP/1.0"


def test_url_secrets_finds_userinfo_and_query_credentials_raw_and_decoded() -> None:
    assert url_secrets(DAHUA) == {"admin", "Pa55-word"}
    assert url_secrets("rtsp://me:s%40fe@h/x?channel=1&pwd=a%26b") == {"me", "s@fe", "a%26b", "a&b"}
    assert url_secrets("rtsp://h/x?channel=1&subtype=0") == set()


def test_redactor_learns_query_secrets_and_cleans_any_echo() -> None:
    redact = Redactor(url_secrets(DAHUA))
    # An error text that names the password without the URL around it.
    assert redact("camera said: bad password Pa55-word") == "camera said: bad password ***"


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


def test_redact_url_hides_credentials_in_path_parameters_and_fragment() -> None:
    # XMEye/Uniview put them in the path, '_'-separated; others after ';' or '#'.
    xmeye = "rtsp://h:554/user=admin_password=Pa_ss42_channel=1_stream=0.sdp"
    assert redact_url(xmeye) == "rtsp://h:554/user=***_password=***_channel=1_stream=0.sdp"
    assert url_secrets(xmeye) == {"admin", "Pa_ss42"}
    assert redact_url("rtsp://h/cam1;password=Semi43") == "rtsp://h/cam1;password=***"
    assert redact_url("rtsp://h/cam1?channel=1#password=Frag22") == (
        "rtsp://h/cam1?channel=1#password=***"
    )
    assert redact_url("rtsp://h/a&token=t1;pwd=p2") == "rtsp://h/a&token=***;pwd=***"
    assert url_secrets("rtsp://h/cam1;password=Semi43#pwd=F%2622") == {"Semi43", "F%2622", "F&22"}
    # An error text echoing the path only is cleaned by the learnt secret too.
    redact = Redactor(url_secrets(xmeye))
    assert "Pa_ss42" not in redact("DESCRIBE password=Pa_ss42 failed")


def test_hide_urls_leaves_the_reason_but_not_the_address() -> None:
    text = "error opening 'rtsps://***@10.0.0.9:554/cam/x?user=***': I/O error"
    assert hide_urls(text) == "error opening '<stream URL>': I/O error"
