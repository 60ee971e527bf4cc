"""Ask the camera ourselves before FFmpeg does, and refuse the redirects the node may not follow.

FFmpeg's RTSP demuxer follows a 3xx answer by itself: in ``ff_rtsp_connect``
(libavformat/rtsp.c) a failed OPTIONS or DESCRIBE with a 3xx status copies the ``Location``
into the context's URL and jumps back to connecting, to whatever host it names. There is no
option to turn this off and no callback to veto it, so a camera (or whoever answers in its
place) could send the node to any host, past ``ingest.allowed_networks``.

So before FFmpeg opens a stream, :func:`preflight` sends the camera an OPTIONS and a
DESCRIBE of its own, with the same credentials (Basic or Digest, as FFmpeg would):

- no redirect: FFmpeg opens the URL as given;
- a redirect, with redirects not allowed: refused, the stream stays offline naming it;
- a redirect, allowed: its target must be permitted (``allowed_networks``); it is
  pre-flighted in turn, and FFmpeg opens the final URL directly (so FFmpeg itself follows
  nothing the node has not checked).

Only redirects are decided here. Any other answer (401, 404, a TLS or protocol failure) is
left to FFmpeg, which reports it as it always has; a connection that cannot be made at all
(refused, unreachable, silent) raises at once instead of being waited for twice.

The check must not be told apart from FFmpeg: a camera that answered the check with 200
and FFmpeg's own DESCRIBE with 302 would send FFmpeg, credentials and all, wherever it likes
(``ff_rtsp_connect`` keeps ``rt->auth`` across a redirect whose Location names no userinfo).
So the check's OPTIONS and DESCRIBE are byte for byte FFmpeg's
(``ff_rtsp_send_cmd_with_content_async`` and ``libavformat/httpauth.c``, checked against
what PyAV sends): the request URI without
userinfo, the extra headers (``Accept``) before ``CSeq``, ``CSeq`` counting from 1 across
the connection (a 401 and its retry included), ``User-Agent: Lavf<libavformat version>``,
and the Basic or Digest ``Authorization`` in FFmpeg's field order.

What is left: a camera can still answer differently on a later connection (the check's is
the first), so it can still redirect FFmpeg; the worker then names the redirect, by
checking where FFmpeg's connections went during and after the open
(:mod:`surveillance.media.connections`), but by then FFmpeg has sent the credentials. The
README's hardening section says so.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import av

from surveillance.media.health import ErrorKind
from surveillance.media.source import StreamOpenError

MAX_REDIRECTS = 3
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
MAX_HEADER_BYTES = 64 * 1024  # of one answer; a camera's are a few hundred bytes
# FFmpeg's default user_agent, LIBAVFORMAT_IDENT: "Lavf" and the library's version.
USER_AGENT = "Lavf{}.{}.{}".format(*av.library_versions["libavformat"])
# OSErrors that mean "no connection could be made": reported by the worker as refused,
# unreachable or timed out, exactly as FFmpeg's would be.
_CONNECT_ERRNOS = {
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EADDRNOTAVAIL,
    errno.ETIMEDOUT,
}


@dataclass(frozen=True)
class RedirectPolicy:
    """``ingest.allow_redirects``, and the host check of ``ingest.allowed_networks``."""

    allow: bool = False
    permits: Callable[[str], bool] = field(default=lambda _url: True)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        return cls(parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 554))


@dataclass(frozen=True)
class Checked:
    """What the pre-flight found: the URL FFmpeg may open, and whether the camera accepted
    this node's DESCRIBE there (with the credentials, if any)."""

    url: str
    accepted: bool


def preflight(url: str, policy: RedirectPolicy, timeout_s: float) -> Checked:
    """The URL FFmpeg may open: ``url`` itself, or a redirect's target the policy allows.

    Raises :class:`StreamOpenError` (kind ``redirect``) for a refused redirect, and the
    socket's own error when no connection can be made at all.
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        location, accepted = _redirect_of(url, deadline)
        if location is None:
            return Checked(url, accepted)
        target = _follow(url, location)
        if not policy.allow:
            raise StreamOpenError(
                ErrorKind.REDIRECT,
                f"the camera redirected to {location} (refused: redirects are not followed "
                "unless ingest.allow_redirects is set)",
            )
        if not policy.permits(target):
            raise StreamOpenError(
                ErrorKind.REDIRECT,
                f"the camera redirected to {location} (refused: the host is outside "
                "ingest.allowed_networks)",
            )
        url = target
    raise StreamOpenError(ErrorKind.REDIRECT, f"more than {MAX_REDIRECTS} redirects; refused")


def _follow(url: str, location: str) -> str:
    """The redirect's absolute URL, with the original credentials when it names none
    (FFmpeg keeps them across a redirect too)."""
    target = urljoin(url, location)
    original, new = urlsplit(url), urlsplit(target)
    if new.username is None and original.username is not None:
        userinfo = original.netloc.rsplit("@", 1)[0]
        target = urlunsplit(new._replace(netloc=f"{userinfo}@{new.netloc}"))
    return target


def _redirect_of(url: str, deadline: float) -> tuple[str | None, bool]:
    """The Location of the camera's 3xx answer to OPTIONS or DESCRIBE (or None), and
    whether it accepted the DESCRIBE (2xx)."""
    try:
        session = _Session.connect(url, deadline)
    except OSError as exc:
        if isinstance(exc, socket.gaierror | TimeoutError) or exc.errno in _CONNECT_ERRNOS:
            raise
        return None, False  # TLS and other failures: FFmpeg tries and names them
    with session:
        try:
            for method in ("OPTIONS", "DESCRIBE"):
                status, headers = session.ask(method)
                if 300 <= status < 400:
                    locations = headers.get("location")
                    return (locations[0] if locations else None), False
                if status >= 400:
                    return None, False  # FFmpeg reports it
        except TimeoutError:
            raise
        except (OSError, ValueError):
            return None, False
    return None, True


class _Session:
    """One RTSP control connection speaking just enough to see a redirect."""

    def __init__(self, sock: socket.socket, url: str, deadline: float) -> None:
        parts = urlsplit(url)
        self._sock = sock
        self._file = sock.makefile("rb")
        self._deadline = deadline
        self._uri = control_uri(url)  # never the userinfo
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self._cseq = 0
        self._authorization: Callable[[str], str] | None = None

    @classmethod
    def connect(cls, url: str, deadline: float) -> _Session:
        endpoint = Endpoint.of(url)
        sock = socket.create_connection(
            (endpoint.host, endpoint.port), timeout=max(0.01, deadline - time.monotonic())
        )
        if urlsplit(url).scheme == "rtsps":
            # Like FFmpeg's TLS default (tls_verify=0): the check is about where, not who.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
            except OSError:
                sock.close()
                raise
        return cls(sock, url, deadline)

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
        self._sock.close()

    def ask(self, method: str) -> tuple[int, dict[str, list[str]]]:
        status, headers = self._send(method)
        if status == 401 and self._user is not None and self._authorization is None:
            self._authorization = _authorizer(
                headers.get("www-authenticate", []), self._user, self._password, self._uri
            )
            if self._authorization is not None:
                status, headers = self._send(method)
        return status, headers

    def _send(self, method: str) -> tuple[int, dict[str, list[str]]]:
        # FFmpeg's order: request line, the method's own headers, CSeq, User-Agent, then
        # Authorization (ff_rtsp_send_cmd_with_content_async).
        self._cseq += 1
        lines = [f"{method} {self._uri} RTSP/1.0"]
        if method == "DESCRIBE":
            lines.append("Accept: application/sdp")
        lines += [f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self._authorization is not None:
            lines.append(f"Authorization: {self._authorization(method)}")
        self._sock.settimeout(max(0.01, self._deadline - time.monotonic()))
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self._read_answer()

    def _read_answer(self) -> tuple[int, dict[str, list[str]]]:
        status_line = self._file.readline(MAX_HEADER_BYTES).decode("latin-1").strip()
        match = re.match(r"RTSP/\d\.\d (\d{3})", status_line)
        if match is None:
            raise ValueError("not an RTSP answer")
        headers: dict[str, list[str]] = {}
        read = 0
        while True:
            line = self._file.readline(MAX_HEADER_BYTES).decode("latin-1")
            read += len(line)
            if not line.strip() or read > MAX_HEADER_BYTES:
                break
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(headers.get("content-length", ["0"])[0] or 0)
        if length:
            self._file.read(min(length, MAX_HEADER_BYTES))
        return int(match.group(1)), headers


def control_uri(url: str) -> str:
    """The request URI FFmpeg sends: ``ff_url_join(proto, NULL, host, port, path)`` of
    ``av_url_split``'s parts, i.e. the URL as written with its userinfo taken out (the port
    only if the URL names one; path, query and fragment as they are)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            cut = min(cut, found)
    authority, tail = rest[:cut], rest[cut:]
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{tail}"


def _authorizer(
    challenges: list[str], user: str, password: str, uri: str
) -> Callable[[str], str] | None:
    """An Authorization header maker for the camera's challenge: Digest if offered, else
    Basic (RFC 2617, as cameras and FFmpeg speak it)."""
    for challenge in challenges:
        scheme, _, rest = challenge.partition(" ")
        if scheme.lower() == "digest":
            params = {
                key.lower(): value.strip('"')
                for key, value in re.findall(r'(\w+)=("[^"]*"|[^,\s]*)', rest)
            }
            return _digest(params, user, password, uri)
    if any(c.lower().startswith("basic") for c in challenges):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return lambda _method: f"Basic {token}"
    return None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _digest(params: dict[str, str], user: str, password: str, uri: str) -> Callable[[str], str]:
    """FFmpeg's make_digest_auth (libavformat/httpauth.c): its fields, order and quoting."""
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    algorithm = params.get("algorithm", "")
    qop = "auth" if "auth" in [q.strip() for q in params.get("qop", "").split(",")] else ""
    count = 0

    def header(method: str) -> str:
        nonlocal count
        count += 1
        nc = f"{count:08x}"
        cnonce = secrets.token_hex(8)  # FFmpeg: "%08x%08x" of two random words
        ha1 = _md5(f"{user}:{realm}:{password}")
        if algorithm.lower() == "md5-sess":
            ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
        ha2 = _md5(f"{method}:{uri}")
        if qop:
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        text = (
            f'username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}"'
        )
        if algorithm:
            text += f', algorithm="{algorithm}"'
        if params.get("opaque"):
            text += f', opaque="{params["opaque"]}"'
        if qop:
            text += f', qop="{qop}", cnonce="{cnonce}", nc={nc}'
        return "Digest " + text

    return header
