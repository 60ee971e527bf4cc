"""SDP offers and answers of a GB/T 28181 play (Annex F), over UDP and TCP (RFC 4145)."""

from __future__ import annotations

import random

import pytest

from surveillance.config.models import GbTransport
from surveillance.gb28181.sdp import SdpAnswer, parse_answer, play_offer

SIP_ID = "34020000002000000001"


def test_offers_round_trip_through_the_answer_parser() -> None:
    udp = play_offer(
        sip_id=SIP_ID,
        media_host="10.0.0.5",
        port=30002,
        ssrc="0200000001",
        transport=GbTransport.UDP,
    )
    assert udp.endswith("\r\n") and "\n" not in udp.replace("\r\n", "")
    lines = udp.split("\r\n")
    assert lines[:3] == ["v=0", f"o={SIP_ID} 0 0 IN IP4 10.0.0.5", "s=Play"]
    assert "m=video 30002 RTP/AVP 96" in lines and "a=rtpmap:96 PS/90000" in lines
    assert "y=0200000001" in lines and "a=recvonly" in lines
    assert not any(line.startswith("a=setup") for line in lines)
    assert parse_answer(udp) == SdpAnswer("10.0.0.5", 30002, "0200000001", False, None)

    passive = play_offer(
        sip_id=SIP_ID,
        media_host="10.0.0.5",
        port=30004,
        ssrc="0200000002",
        transport=GbTransport.TCP_PASSIVE,
    )
    assert "m=video 30004 TCP/RTP/AVP 96" in passive
    assert "a=setup:passive\r\na=connection:new" in passive
    assert parse_answer(passive) == SdpAnswer("10.0.0.5", 30004, "0200000002", True, "passive")

    active = play_offer(
        sip_id=SIP_ID,
        media_host="::1",
        port=30006,
        ssrc="0200000003",
        transport=GbTransport.TCP_ACTIVE,
    )
    assert "c=IN IP6 ::1" in active and "a=setup:active" in active
    assert parse_answer(active) == SdpAnswer("::1", 30006, "0200000003", True, "active")

    for bad in (
        {"ssrc": "123"},
        {"port": 0},
        {"port": 70000},
        {"media_host": "a b"},
        {"sip_id": "x\r\ny"},
    ):
        kwargs = {
            "sip_id": SIP_ID,
            "media_host": "10.0.0.5",
            "port": 30002,
            "ssrc": "0200000001",
            "transport": GbTransport.UDP,
            **bad,
        }
        with pytest.raises(ValueError):
            play_offer(**kwargs)  # type: ignore[arg-type]


def test_a_platforms_answer_with_media_level_address_and_lf_line_ends() -> None:
    answer = (
        "v=0\no=34020000001320000001 0 0 IN IP4 192.168.1.64\ns=Play\n"
        "c=IN IP4 192.168.1.64\nt=0 0\nm=audio 15062 RTP/AVP 8\nc=IN IP4 192.168.1.99\n"
        "m=video 15060 RTP/AVP/TCP 96\nc=IN IP4 192.168.1.65\na=sendonly\n"
        "a=rtpmap:96 PS/90000\na=setup:ACTIVE\na=connection:new\ny=0200000001\nf=\n\n"
    )
    assert parse_answer(answer) == SdpAnswer("192.168.1.65", 15060, "0200000001", True, "active")
    no_y = "v=0\r\nc=IN IP4 10.1.1.1\r\nm=video 9000 RTP/AVP 96\r\n"
    assert parse_answer(no_y) == SdpAnswer("10.1.1.1", 9000, None, False, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "v=0"),
        ("o=x\r\nv=0\r\n", "v=0"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\n", "no m=video"),
        ("v=0\r\nm=video 9000 RTP/AVP 96\r\n", "no c="),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 0 RTP/AVP 96\r\n", "port"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 99999999999999 RTP/AVP 96\r\n", "port"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video -5 RTP/AVP 96\r\n", "port"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 9000 RTP/SAVP 96\r\n", "protocol"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 9000\r\n", "m=video"),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 9000 RTP/AVP 96\r\ny=12ab\r\n", "y="),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 9000 TCP/RTP/AVP 96\r\na=setup:sideways\r\n", "setup"),
        ("v=0\r\nc=IN IP9 1.2.3.4\r\nm=video 9000 RTP/AVP 96\r\n", "c= line"),
        ("v=0\r\nc=IN IP4 bad_host!\r\nm=video 9000 RTP/AVP 96\r\n", "c= address"),
        ("v=0\r\ngarbage\r\n", "bad SDP line"),
        ("v=0\r\n" + "a=x\r\n" * 500, "lines"),
        ("v=0\r\n" + "a=" + "x" * 20000 + "\r\n", "bytes"),
    ],
)
def test_malformed_answers_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_answer(text)
    assert len(str(caught.value)) < 140


def test_mutated_answers_fail_only_with_value_error() -> None:
    rng = random.Random(4145)
    valid = play_offer(
        sip_id=SIP_ID, media_host="10.0.0.5", port=30004, ssrc="0200000002",
        transport=GbTransport.TCP_PASSIVE,
    )  # fmt: skip
    refused = 0
    for _ in range(3000):
        text = list(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.3:
                del text[at:]
            else:
                text[at:at] = rng.choice(["\n", "=", " ", "/", "m=video ", "\x00", "\u00e9", "9"])
        try:
            parse_answer("".join(text))
        except ValueError as error:
            assert len(str(error)) < 140
            refused += 1
    assert refused > 500
