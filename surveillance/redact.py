"""Keep credentials on the server: strip them from URLs and from any text that may carry them.

Cameras take credentials in many places: the URL's userinfo (``rtsp://user:pw@host/``);
Dahua-style, the query string (``/cam/realmonitor?channel=1&user=admin&password=...``; other
makes use ``username=``, ``pwd=``, ``passwd=``, ``token=``, ``auth=``, ``key=``); ``;``
parameters (``/cam1;password=...``) and the fragment (``#password=...``); and, XMEye and
Uniview style, the path itself (``/user=admin_password=XXX_channel=1_stream=0.sdp``). All are
redacted by structure (any ``name=value`` pair after ``/ ? & ; # _`` whose name reads like a
credential), and every such value is also registered with :class:`Redactor` as a secret, so
a text that echoes one outside a URL is cleaned too.

Even redacted, a stream URL maps the camera network (host, port, path); texts shown to users
who may not read the configuration pass through :func:`hide_urls` as well.

FFmpeg error strings and exception messages can echo the URL they were given, credentials
included; every such text passes through :class:`Redactor` before it reaches a health
record, a log line or a response.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

REDACTED = "***"

# userinfo in any URL-looking text: scheme://user:pass@ or scheme://user@
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")

# A name=value pair anywhere in a text (a whole URL, or FFmpeg echoing only the request
# line): after '?' or '&' (query), ';' (RTSP/HTTP path parameters), '#' (fragment), '/' (a
# path segment) or '_' (XMEye/Uniview "/user=admin_password=XXX_channel=1_stream=0.sdp").
# Its value runs to the next delimiter, white space, quote or angle bracket, or to a '_' that
# starts the next pair ("admin_password=" ends "user=admin" but "Pa_ss" stays one value).
_NAME = r"[^=&#?;/\s'\"<>]+?"
_NEXT_PAIR = r"[&#?;/_][^=&#?;/_\s'\"<>]+="
_QUERY_PARAM = re.compile(
    rf"(?P<lead>[?&;#/_])(?P<name>{_NAME})=(?P<value>(?:(?!{_NEXT_PAIR})[^&#?;/\s'\"<>])*)"
)

# Any URL in a text: a scheme, "://", and everything up to white space, quote or bracket.
_ANY_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
URL_PLACEHOLDER = "<stream URL>"

# Parameter names that carry credentials: a name containing one of these words (any case,
# '_' and '-' ignored: "api_key", "access-token", "UserName"), or equal to a short one.
# Redacting a harmless parameter by mistake ("keyframe=") costs nothing; missing one leaks.
_CREDENTIAL_WORDS = (
    "user",
    "login",
    "account",
    "pass",
    "pwd",
    "token",
    "auth",
    "key",
    "secret",
    "credential",
    "session",
    "signature",
    "ticket",  # /api/live/mse's single-use tickets (services/mse_tickets.py)
)
_CREDENTIAL_NAMES = frozenset({"pw", "usr", "uid", "sig", "sid"})


def is_credential_parameter(name: str) -> bool:
    """Whether a query parameter of this name carries a user name, password or token."""
    plain = unquote(name).lower().replace("_", "").replace("-", "")
    return plain in _CREDENTIAL_NAMES or any(word in plain for word in _CREDENTIAL_WORDS)


def _redact_parameter(match: re.Match[str]) -> str:
    if not is_credential_parameter(match.group("name")) or not match.group("value"):
        return match.group(0)
    return f"{match.group('lead')}{match.group('name')}={REDACTED}"


def redact_url(url: str) -> str:
    """Credentials out of every URL in a text, by structure: the userinfo, and the values of
    name=value pairs (query, ``;`` parameters, fragment, path) named like users, passwords
    and tokens.

    ``rtsp://user:pw@host/x?channel=1&password=pw`` -> ``rtsp://***@host/x?channel=1&password=***``;
    a URL without credentials is unchanged.
    """
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", url)
    return _QUERY_PARAM.sub(_redact_parameter, text)


def hide_urls(text: str) -> str:
    """Every URL in a text replaced by a neutral placeholder: for who may see why a camera
    failed but not where it lives (host, port and path are the node's configuration)."""
    return _ANY_URL.sub(URL_PLACEHOLDER, text)


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


def url_secrets(url: str) -> set[str]:
    """Every credential a URL carries: userinfo user and password, and the values of
    name=value pairs named like credentials in its path, ``;`` parameters, query and fragment,
    each as written and decoded."""
    found = {value for value in url_credentials(url) if value}
    parts = urlsplit(url)
    after_host = url[url.find(parts.netloc) + len(parts.netloc) :] if parts.netloc else url
    for match in _QUERY_PARAM.finditer(after_host):
        value = match.group("value")
        if is_credential_parameter(match.group("name")) and value:
            found.update({value, unquote_plus(value)})
    return found


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
