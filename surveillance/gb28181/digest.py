"""Digest authentication of the platforms that REGISTER (GB/T 28181-2016 s.9.1.2.1, which
uses SIP digest: RFC 3261 s.22.4 and RFC 2617 with MD5, qop "auth" or none).

Nonces are a time and a random part signed with an HMAC under a secret only this process
knows, together with the address the challenge was sent to: checking one needs no table that
a flood of REGISTERs could grow, and a nonce answered from another address is not ours. A
nonce older than ``nonce_ttl_s`` with an otherwise right answer is "stale" (RFC 2617 s.3.2.1):
the device retries with a fresh one without treating it as a wrong password.

Replays (RFC 2617 s.3.2.2, s.4.5): the highest nonce count answered rightly is kept per
nonce for its lifetime, only for right answers (so only devices that know a password add to
the table), in a table of at most MAX_NONCES; a count not above it (for qop "auth"), or any
second use of a nonce without qop, is a "replayed nonce", which the registry answers like a
stale one: a fresh challenge. A nonce pushed out of the full table counts as used, as does
every nonce issued before it, so a full table forgets nothing a replay could use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from surveillance.gb28181.sip_message import SipRequest

MAX_PARAMS = 20
MAX_NONCES = 10_000  # nonces whose count is remembered (right answers only)
MAX_CLOCK_SKEW_S = 5.0  # a nonce dated later than now by more than this was not ours
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)\s*(?:,|$)')
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_NONCE = re.compile(r"([0-9a-f]{1,16})\.([0-9a-f]{16})\.([0-9a-f]{32})")


@dataclass(frozen=True)
class DigestResult:
    ok: bool
    username: str | None
    # "no credentials", "malformed credentials", "unknown user", "wrong password",
    # "stale nonce", "replayed nonce" or "ok"
    reason: str


def digest_params(value: str) -> dict[str, str]:
    """The parameters of a ``Digest ...`` challenge or credentials, quotes removed;
    ValueError if it is not one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError("not a Digest header")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise ValueError("bad Digest parameter list")
        key, raw = match.group(1).lower(), match.group(2)
        if key in params or len(params) >= MAX_PARAMS:
            raise ValueError("repeated or too many Digest parameters")
        params[key] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        position = match.end()
    return params


def _md5(text: str) -> str:
    # MD5 because RFC 2617 and GB/T 28181 say so, not for its strength.
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")  # RFC 2617 s.3.2.2.1, no qop (RFC 2069 compatible)


class DigestAuthenticator:
    """Challenges and verifies digest credentials for one realm (the SIP domain)."""

    def __init__(
        self,
        realm: str,
        *,
        nonce_ttl_s: float = 300,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._realm = realm
        self._ttl_s = nonce_ttl_s
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock
        # nonce -> (issued ms, highest count answered rightly; 0: used without qop)
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._used_until_ms = -1  # nonces issued up to this time count as used (pushed out)

    def challenge(self, *, stale: bool = False, host: str = "") -> str:
        """A WWW-Authenticate value with a fresh nonce for the requester at ``host``."""
        issued = f"{int(self._clock() * 1000):x}.{secrets.token_hex(8)}"
        nonce = f"{issued}.{self._sign(issued, host)}"
        value = f'Digest realm="{self._realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        return value + (", stale=TRUE" if stale else "")

    def _sign(self, issued: str, host: str) -> str:
        signed = f"{issued}|{host}".encode()
        return hmac.new(self._secret, signed, hashlib.sha256).hexdigest()[:32]

    def verify(
        self, request: SipRequest, password_for: Callable[[str], str | None], *, host: str = ""
    ) -> DigestResult:
        """Whether the request's Authorization, from ``host``, answers one of our challenges
        to that host rightly, and for the first time."""
        header = request.headers.get("Authorization")
        if header is None:
            return DigestResult(False, None, "no credentials")
        try:
            params = digest_params(header)
        except ValueError:
            return DigestResult(False, None, "malformed credentials")
        username = params.get("username")
        issued_ms = self._issued_ms(params, host) if username else None
        if not username or issued_ms is None:
            return DigestResult(False, None, "malformed credentials")
        password = password_for(username)
        if password is None:
            return DigestResult(False, username, "unknown user")
        expected = _response(
            username=username, password=password, realm=self._realm, nonce=params["nonce"],
            method=request.method, uri=params["uri"], qop=params.get("qop"),
            nc=params.get("nc", ""), cnonce=params.get("cnonce", ""),
        )  # fmt: skip
        # The uri is not compared with the Request-URI: devices write it in their own way
        # (domain or address), and the hash covers the uri they wrote.
        if not hmac.compare_digest(expected, params["response"].lower()):
            return DigestResult(False, username, "wrong password")
        now_ms = self._clock() * 1000
        if now_ms - issued_ms > self._ttl_s * 1000:
            return DigestResult(False, username, "stale nonce")
        count = int(params["nc"], 16) if params.get("qop") else 0
        if not self._first_use(params["nonce"], issued_ms, count, now_ms):
            return DigestResult(False, username, "replayed nonce")
        return DigestResult(True, username, "ok")

    def _first_use(self, nonce: str, issued_ms: int, count: int, now_ms: float) -> bool:
        """Records a right answer's nonce count; False when it was answered with this count
        or a higher one before (or without qop at all)."""
        known = self._counts.get(nonce)
        if known is None and issued_ms <= self._used_until_ms:
            return False  # pushed out of the table: taken as used
        if known is not None and (count == 0 or count <= known[1]):
            return False
        self._counts[nonce] = (issued_ms, count)
        ttl_ms = self._ttl_s * 1000
        while self._counts:  # nonces past their lifetime are refused as stale anyway
            oldest_ms = next(iter(self._counts.values()))[0]
            if now_ms - oldest_ms <= ttl_ms and len(self._counts) <= MAX_NONCES:
                break
            _, (pushed_ms, _) = self._counts.popitem(last=False)
            if now_ms - pushed_ms <= ttl_ms:
                self._used_until_ms = max(self._used_until_ms, pushed_ms)
        return True

    def _issued_ms(self, params: dict[str, str], host: str) -> int | None:
        """When the credentials' nonce was issued; None if they are incomplete, not for this
        realm, or the nonce is not one we sent to ``host``."""
        if any(key not in params for key in ("realm", "nonce", "uri", "response")):
            return None
        if params["realm"] != self._realm or not _HEX32.fullmatch(params["response"]):
            return None
        if params.get("algorithm", "MD5").upper() != "MD5":
            return None
        qop = params.get("qop")
        if qop is not None and (
            qop != "auth" or not _NC.fullmatch(params.get("nc", "")) or not params.get("cnonce")
        ):
            return None
        match = _NONCE.fullmatch(params["nonce"])
        if match is None:
            return None
        issued = f"{match.group(1)}.{match.group(2)}"
        if not hmac.compare_digest(self._sign(issued, host), match.group(3)):
            return None
        issued_ms = int(match.group(1), 16)
        if issued_ms > (self._clock() + MAX_CLOCK_SKEW_S) * 1000:
            return None
        return issued_ms


def authorization(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """An Authorization value answering a challenge (the client side: tests and peers)."""
    nc_text = f"{nc:08x}"
    cnonce = cnonce or (secrets.token_hex(8) if qop else "")
    response = _response(
        username=username, password=password, realm=realm, nonce=nonce, method=method,
        uri=uri, qop=qop, nc=nc_text, cnonce=cnonce,
    )  # fmt: skip
    value = (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5'
    )
    if qop:
        value += f', qop={qop}, nc={nc_text}, cnonce="{cnonce}"'
    return value
