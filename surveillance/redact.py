"""Keep credentials on the server: strip them from URLs and from any text that may carry them.

FFmpeg error strings and exception messages can echo the URL they were given, userinfo
included; every such text passes through :class:`Redactor` before it reaches a health
record, a log line or a response.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REDACTED = "***"

# userinfo in any URL-looking text: scheme://user:pass@ or scheme://user@
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """``rtsp://user:pw@host/x`` -> ``rtsp://***@host/x``; a URL without userinfo is unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", url)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """Put credentials into a URL's userinfo (percent-encoded), replacing any already there."""
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """The (username, password) embedded in a URL's userinfo, decoded."""
    parts = urlsplit(url)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return username, password


class Redactor:
    """Replaces every known secret (and any URL userinfo) in a text with ``***``.

    Secrets are registered once, when the configuration is loaded; both the raw and the
    percent-encoded forms are removed because FFmpeg may print either.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            for secret in secrets:
                # Very short values ("a", "1") would shred ordinary words; they still never
                # appear because URLs are redacted by structure first.
                if secret and len(secret) >= 3:
                    self._secrets.add(secret)
                    self._secrets.add(quote(secret, safe=""))
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        text = redact_url(text)
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern else text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message of every record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception text is formatted later by the handler; format it now, redacted.
            formatter = logging.Formatter()
            record.exc_text = self._redactor(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
