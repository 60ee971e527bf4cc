"""The pre-flight's pieces that need no server: Digest answers, redirect targets, /proc rows.

(Redirects themselves, against a real RTSP server, are in tests/services/test_ingest_redirects.py.)
"""

from __future__ import annotations

import pytest

from surveillance.media import preflight
from surveillance.media.connections import _peer


def test_digest_answer_matches_rfc_2617(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("secrets.token_hex", lambda _n: "0a4f113b")
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = preflight._authorizer([challenge], "Mufasa", "Circle Of Life", "/dir/index.html")
    assert header is not None
    answer = header("GET")
    assert 'response="6629fae49393a05397450978507c4ef1"' in answer
    assert "nc=00000001" in answer and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in answer


def test_basic_is_used_when_digest_is_not_offered() -> None:
    header = preflight._authorizer(['Basic realm="cam"'], "op", "pw", "rtsp://h/x")
    assert header is not None and header("DESCRIBE") == "Basic b3A6cHc="


def test_redirect_target_keeps_the_credentials_it_does_not_replace() -> None:
    assert (
        preflight._follow("rtsp://u:p@10.0.0.1/a", "rtsp://10.0.0.2/b") == "rtsp://u:p@10.0.0.2/b"
    )
    assert (
        preflight._follow("rtsp://u:p@10.0.0.1/a", "rtsp://x@10.0.0.2/b") == "rtsp://x@10.0.0.2/b"
    )
    assert preflight._follow("rtsp://10.0.0.1/a/b", "/c") == "rtsp://10.0.0.1/c"


def test_proc_net_tcp_addresses_are_decoded() -> None:
    assert _peer("0100007F:1F90") == ("127.0.0.1", 8080)
    assert _peer("0000000000000000FFFF00000200007F:0016") == ("127.0.0.2", 22)
