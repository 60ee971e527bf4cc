"""The pre-flight's pieces: Digest answers, redirect targets, /proc rows, and its requests
against FFmpeg's own (a local fake camera that keeps what it was sent).

(Redirects themselves, against a real RTSP server, are in tests/services/test_ingest_redirects.py.)
"""

from __future__ import annotations

import re

import av
import pytest

from surveillance.media import preflight
from surveillance.media.connections import _peer
from surveillance.media.source import SourceOptions, open_rtsp
from tests.rtsp_redirector import redirector


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


def _normalised(heads: list[bytes]) -> list[bytes]:
    """Request heads with what is random by design (Digest's cnonce and so its response)
    blanked; everything else must be byte for byte the same."""
    return [re.sub(rb'(cnonce|response)="[0-9a-f]+"', rb'\1="-"', head) for head in heads]


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="cam"',
        'Digest realm="cam", nonce="5f1e2d", qop="auth"',
        'Digest realm="cam", nonce="5f1e2d", algorithm="MD5", opaque="0bad"',
    ],
)
def test_preflight_requests_are_ffmpegs_byte_for_byte(challenge: str) -> None:
    """A camera must not tell the node's check from FFmpeg by what they send (it could
    answer the check with 200 and FFmpeg with a redirect): same OPTIONS, same DESCRIBE,
    same header order, CSeq and User-Agent, same Authorization after the 401."""
    with redirector("127.0.0.1", "", challenge=challenge) as camera:
        url = camera.url("cam/realmonitor?channel=1&subtype=0").replace(
            "rtsp://", "rtsp://camu:S3cret%40Pw@", 1
        )
        assert preflight.preflight(url, preflight.RedirectPolicy(), 5).url == url
        options = SourceOptions(transport="tcp", connect_timeout_s=5, read_timeout_s=5)
        with pytest.raises(av.error.FFmpegError):
            open_rtsp(url, options)
        ours, ffmpegs = camera.heads
    assert ffmpegs[0].startswith(b"OPTIONS rtsp://127.0.0.1:") and len(ffmpegs) == 3
    assert b"Authorization: " in ffmpegs[2]
    assert _normalised(ours) == _normalised(ffmpegs)


def test_control_uri_is_the_url_without_its_userinfo() -> None:
    assert preflight.control_uri("rtsp://u:p@h:554/a;b=c?x=1#f") == "rtsp://h:554/a;b=c?x=1#f"
    assert preflight.control_uri("rtsp://u@h?x") == "rtsp://h?x"
    assert preflight.control_uri("rtsps://[::1]:322/a") == "rtsps://[::1]:322/a"
