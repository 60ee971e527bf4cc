"""Digest authentication of REGISTER (RFC 2617, RFC 3261 s.22, GB/T 28181-2016 s.9.1.2.1)."""

from __future__ import annotations

import hashlib

import pytest

from surveillance.gb28181.digest import (
    DigestAuthenticator,
    DigestResult,
    authorization,
    digest_params,
)
from surveillance.gb28181.sip_message import Headers, SipRequest

REALM = "3402000000"
DEVICE = "34020000001320000001"
PASSWORD = "s3cret-pass"
URI = "sip:34020000002000000001@3402000000"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def register(authorization_value: str | None) -> SipRequest:
    headers = Headers([("CSeq", "2 REGISTER")])
    if authorization_value is not None:
        headers.add("Authorization", authorization_value)
    return SipRequest("REGISTER", URI, headers)


def passwords(user: str) -> str | None:
    return PASSWORD if user == DEVICE else None


def answer(
    challenge: str, *, password: str = PASSWORD, user: str = DEVICE, qop: bool = True, nc: int = 1
) -> str:
    params = digest_params(challenge)
    return authorization(
        username=user, password=password, realm=params["realm"], nonce=params["nonce"],
        method="REGISTER", uri=URI, qop=params.get("qop") if qop else None, nc=nc,
    )  # fmt: skip


def test_right_wrong_unknown_and_stale() -> None:
    clock = Clock()
    auth = DigestAuthenticator(REALM, nonce_ttl_s=300, clock=clock)
    challenge = auth.challenge()
    params = digest_params(challenge)
    assert params["realm"] == REALM and params["algorithm"] == "MD5" and params["qop"] == "auth"
    assert "stale" not in params and digest_params(auth.challenge(stale=True))["stale"] == "TRUE"
    assert auth.challenge() != challenge  # every challenge a new nonce

    assert auth.verify(register(answer(challenge)), passwords) == DigestResult(True, DEVICE, "ok")
    no_qop = answer(auth.challenge(), qop=False)  # RFC 2069 style, still accepted
    assert auth.verify(register(no_qop), passwords).ok
    wrong = auth.verify(register(answer(challenge, password="guess")), passwords)
    assert wrong == DigestResult(False, DEVICE, "wrong password")
    unknown = auth.verify(register(answer(challenge, user="34020000001320000099")), passwords)
    assert unknown == DigestResult(False, "34020000001320000099", "unknown user")
    assert auth.verify(register(None), passwords) == DigestResult(False, None, "no credentials")
    # The answer was for REGISTER: the same credentials on another method do not match.
    other = SipRequest("MESSAGE", URI, Headers([("Authorization", answer(challenge))]))
    assert auth.verify(other, passwords).reason == "wrong password"

    clock.now += 301
    assert auth.verify(register(answer(challenge)), passwords).reason == "stale nonce"
    # A wrong password with an old nonce is a wrong password, not stale (RFC 2617 s.3.2.1).
    stale_wrong = auth.verify(register(answer(challenge, password="x")), passwords)
    assert stale_wrong.reason == "wrong password"
    assert auth.verify(register(answer(auth.challenge())), passwords).ok


def test_nonces_of_another_secret_or_forged_are_refused() -> None:
    clock = Clock()
    ours = DigestAuthenticator(REALM, clock=clock, secret=b"a" * 32)
    theirs = DigestAuthenticator(REALM, clock=clock, secret=b"b" * 32)
    assert ours.verify(register(answer(theirs.challenge())), passwords).reason == (
        "malformed credentials"
    )
    nonce = digest_params(ours.challenge())["nonce"]
    stamp, random_part, mac = nonce.split(".")
    later = f"{int(stamp, 16) + 10**9:x}.{random_part}.{mac}"  # extend its life: MAC fails
    forged = f'Digest realm="{REALM}", nonce="{later}", algorithm=MD5'
    assert ours.verify(register(answer(forged)), passwords).reason == "malformed credentials"
    # A secret never shows in what is sent.
    assert "a" * 8 not in ours.challenge()


def test_a_nonce_is_good_only_from_its_address_and_each_count_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 2617 s.3.2.2: a captured Authorization replayed (from anywhere) is refused, a
    higher nonce count of the same nonce is not; memory stays bounded."""
    clock = Clock()
    auth = DigestAuthenticator(REALM, clock=clock)
    challenge = auth.challenge(host="192.0.2.7")
    captured = register(answer(challenge))
    elsewhere = auth.verify(captured, passwords, host="192.0.2.99")
    assert elsewhere == DigestResult(False, None, "malformed credentials")  # not its nonce
    assert auth.verify(captured, passwords, host="192.0.2.7").ok
    replayed = DigestResult(False, DEVICE, "replayed nonce")
    assert auth.verify(captured, passwords, host="192.0.2.7") == replayed
    assert auth.verify(register(answer(challenge, nc=2)), passwords, host="192.0.2.7").ok
    for count in (2, 1):
        again = register(answer(challenge, nc=count))
        assert auth.verify(again, passwords, host="192.0.2.7") == replayed
    no_qop = register(answer(auth.challenge(host="192.0.2.7"), qop=False))
    assert auth.verify(no_qop, passwords, host="192.0.2.7").ok
    assert auth.verify(no_qop, passwords, host="192.0.2.7") == replayed
    # A wrong answer records nothing: the right one after it still counts as the first.
    fresh = auth.challenge(host="192.0.2.7")
    wrong = register(answer(fresh, password="guess"))
    assert auth.verify(wrong, passwords, host="192.0.2.7").reason == "wrong password"
    assert auth.verify(register(answer(fresh)), passwords, host="192.0.2.7").ok

    # A full table pushes out the oldest nonce; it and every nonce issued before it
    # count as used, so nothing a replay could use is forgotten.
    monkeypatch.setattr("surveillance.gb28181.digest.MAX_NONCES", 2)
    auth = DigestAuthenticator(REALM, clock=clock)
    unused = auth.challenge()
    clock.now += 1
    nonces = []
    for _ in range(3):
        nonces.append(auth.challenge())
        clock.now += 1
        assert auth.verify(register(answer(nonces[-1])), passwords).ok
    assert len(auth._counts) == 2
    assert auth.verify(register(answer(nonces[0], nc=2)), passwords) == replayed
    assert auth.verify(register(answer(unused)), passwords) == replayed
    assert auth.verify(register(answer(nonces[2], nc=2)), passwords).ok
    clock.now += 301  # past their lifetime: stale, and dropped from the table
    assert auth.verify(register(answer(auth.challenge())), passwords).ok
    assert len(auth._counts) == 1


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic dXNlcjpwYXNz",
        "Digest",
        'Digest username="a", username="b"',
        "Digest " + ", ".join(f"p{i}=1" for i in range(50)),
        'Digest username="unterminated',
        'Digest username="x" realm="y"',
        "Digest ===",
        "\x00\x01 binary",
    ],
)
def test_malformed_credentials(value: str) -> None:
    auth = DigestAuthenticator(REALM)
    request = SipRequest("REGISTER", URI, Headers())
    request.headers._fields.append(("Authorization", value))  # past Headers' own checks
    assert auth.verify(request, passwords) == DigestResult(False, None, "malformed credentials")


def test_malformed_fields_of_otherwise_good_credentials() -> None:
    auth = DigestAuthenticator(REALM)
    good = answer(auth.challenge())
    assert auth.verify(register(good), passwords).ok
    for old, new in (
        (f'realm="{REALM}"', 'realm="elsewhere"'),
        ("algorithm=MD5", "algorithm=SHA-256"),
        ("qop=auth", "qop=auth-int"),
        ("nc=00000001", "nc=1"),
        ('response="', 'response="zz'),
        (f'username="{DEVICE}", ', ""),
    ):
        broken = good.replace(old, new)
        assert broken != good
        assert auth.verify(register(broken), passwords).reason == "malformed credentials", old


def test_authorization_matches_rfc_2617_by_hand() -> None:
    value = authorization(
        username=DEVICE, password=PASSWORD, realm=REALM, nonce="n1", method="REGISTER",
        uri=URI, qop="auth", nc=1, cnonce="c1",
    )  # fmt: skip

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{DEVICE}:{REALM}:{PASSWORD}"), md5(f"REGISTER:{URI}")
    params = digest_params(value)
    assert params["response"] == md5(f"{ha1}:n1:00000001:c1:auth:{ha2}")
    assert params["nc"] == "00000001" and params["cnonce"] == "c1"
    assert PASSWORD not in value
