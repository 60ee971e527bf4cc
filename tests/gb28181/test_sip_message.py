"""SIP message syntax (RFC 3261 s.7, s.20): parsing, building, and refusing hostile input."""

from __future__ import annotations

import random

import pytest

from surveillance.gb28181.sip_message import (
    Headers,
    LocalParty,
    SipError,
    SipRequest,
    SipResponse,
    cseq,
    header_param,
    name_addr_uri,
    new_request,
    parse_message,
    response_to,
    to_bytes,
    uri_user,
)

MAX = 65535
REGISTER = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1234\r\n"
    b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK5678\r\n"
    b"f: <sip:34020000001320000001@3402000000>;tag=abc\r\n"
    b"t: <sip:34020000001320000001@3402000000>\r\n"
    b"i: 1234@192.168.1.64\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"m: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Expires: 3600\r\n"
    b"l: 0\r\n\r\n"
)


def test_a_request_with_compact_headers_parses_and_round_trips() -> None:
    message = parse_message(REGISTER, MAX)
    assert isinstance(message, SipRequest)
    assert (message.method, message.uri) == ("REGISTER", "sip:34020000002000000001@3402000000")
    assert message.headers.get("call-id") == message.headers.get("i") == "1234@192.168.1.64"
    assert len(message.headers.get_all("VIA")) == 2
    assert cseq(message) == (1, "REGISTER")
    assert uri_user(message.headers.get("From") or "") == "34020000001320000001"
    assert header_param(message.headers.get("From") or "", "tag") == "abc"
    assert header_param(message.headers.get("To") or "", "tag") is None
    assert header_param(message.headers.get_all("Via")[0], "rport") == ""
    again = parse_message(to_bytes(message), MAX)
    assert again == message  # compact names came back in their full form, same values
    assert b"\r\nCall-ID: 1234@192.168.1.64\r\n" in to_bytes(message)


def test_a_response_with_a_body_and_the_helpers() -> None:
    request = parse_message(REGISTER, MAX)
    assert isinstance(request, SipRequest)
    response = response_to(
        request,
        200,
        to_tag="srv1",
        body=b"<x/>",
        content_type="Application/MANSCDP+xml",
        extra=[("Expires", "3600")],
    )
    assert response.reason == "OK"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert header_param(response.headers.get("To") or "", "tag") == "srv1"
    wire = to_bytes(response)
    assert wire.endswith(b"Content-Length: 4\r\n\r\n<x/>")
    parsed = parse_message(wire, MAX)
    assert isinstance(parsed, SipResponse) and parsed.status == 200 and parsed.body == b"<x/>"
    assert parsed.headers.get("Expires") == "3600"
    # The To tag a request already has is kept.
    tagged = response_to(parsed_request_with_to_tag(), 200, to_tag="other")
    assert header_param(tagged.headers.get("To") or "", "tag") == "mine"

    local = LocalParty("34020000002000000001", "3402000000", "127.0.0.1", 5060)
    built = new_request(
        "MESSAGE",
        "sip:34020000001320000001@3402000000",
        local=local,
        to_uri="sip:34020000001320000001@3402000000",
        cseq=7,
        transport="tcp",
        body=b"<Query/>",
        content_type="Application/MANSCDP+xml",
    )
    via = built.headers.get("Via") or ""
    assert via.startswith("SIP/2.0/TCP 127.0.0.1:5060")
    assert (header_param(via, "branch") or "").startswith("z9hG4bK")
    assert name_addr_uri(built.headers.get("From") or "") == "sip:34020000002000000001@3402000000"
    assert parse_message(to_bytes(built), MAX) == built
    other = new_request("MESSAGE", built.uri, local=local, to_uri=built.uri)
    assert other.headers.get("Call-ID") != built.headers.get("Call-ID")
    assert name_addr_uri('"Cam" <sip:a@b;transport=tcp>;tag=1') == "sip:a@b;transport=tcp"
    assert header_param('"Cam" <sip:a@b;tag=inside>;tag=outside', "tag") == "outside"
    assert uri_user("sip:3402@host;transport=udp") == "3402"
    assert uri_user("tel:+123") is None and uri_user("sip:host") is None


def parsed_request_with_to_tag() -> SipRequest:
    message = parse_message(
        REGISTER.replace(b"t: <sip:3402", b"t: <sip:1@x>;tag=mine\r\nX: <"), MAX
    )
    assert isinstance(message, SipRequest)
    return message


def test_headers_refuse_injection_and_keep_order() -> None:
    headers = Headers([("Via", "a"), ("X-One", "1"), ("via", "b")])
    headers.set("VIA", "c")
    assert list(headers) == [("Via", "c"), ("X-One", "1")]
    headers.remove("x-one")
    assert len(headers) == 1
    for name, value in (("X", "a\r\nInjected: 1"), ("Bad Name", "v"), ("X", "nul\x00")):
        with pytest.raises(SipError):
            headers.add(name, value)


def _with(
    header_lines: bytes, body: bytes = b"", first: bytes = b"MESSAGE sip:a@b SIP/2.0"
) -> bytes:
    return first + b"\r\n" + header_lines + b"\r\n" + body


GOOD_HEADERS = (
    b"Via: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:c@d>\r\nCall-ID: 1\r\nCSeq: 2 MESSAGE\r\n"
)


@pytest.mark.parametrize(
    ("data", "problem", "has_partial"),
    [
        (b"", "neither", False),
        (b"\x00\xff\xfe garbage \x01" * 30, "UTF-8|control", False),
        (bytes(range(256)) * 4, "UTF-8|control", False),
        (b"HELLO\r\n\r\n", "neither", False),
        (b"SIP/2.0 2000 OK\r\n\r\n", "status code", False),
        (b"SIP/2.0 099 Early\r\n\r\n", "status code", False),
        (b"MESS AGE sip:a@b SIP/2.0\r\n\r\n", "neither|request line", False),
        (b"MESSAGE nouri SIP/2.0\r\n\r\n", "request line", False),
        (b"MESSAGE sip:a@b SIP/2.0\r\n" + b"X" * 9000 + b"\r\n\r\n", "8192", True),
        (b"MESSAGE sip:" + b"a" * 9000 + b" SIP/2.0\r\n\r\n", "first line is over", False),
        (REGISTER[:60], "blank line", True),
        (REGISTER[:-20], "blank line", True),
        (_with(GOOD_HEADERS + b"X-Many: 1\r\n" * 10_000), "more than 100", True),
        (_with(GOOD_HEADERS + b" folded\r\n"), "folded", True),
        (_with(GOOD_HEADERS + b"\tfolded\r\n"), "folded", True),
        (_with(GOOD_HEADERS + b"No colon here\r\n"), "bad header line", True),
        (_with(GOOD_HEADERS + b"X-Nul: a\x00b\r\n"), "control", True),
        (_with(GOOD_HEADERS + b"X-Latin: \xe9t\xe9\r\n"), "UTF-8", True),
        (_with(GOOD_HEADERS + b"Content-Length: -1\r\n"), "Content-Length", True),
        (_with(GOOD_HEADERS + b"Content-Length: 99999999999999999999\r\n"), "Content-Length", True),
        (_with(GOOD_HEADERS + b"Content-Length: 5\r\n", b"abc"), "Content-Length 5", True),
        (_with(GOOD_HEADERS + b"Content-Length: 1\r\n", b"abc"), "Content-Length 1", True),
        (_with(GOOD_HEADERS + b"l: 0\r\nContent-Length: 0\r\n"), "more than one Content", True),
        (_with(GOOD_HEADERS.replace(b"CSeq: 2 MESSAGE", b"CSeq: x MESSAGE")), "CSeq", True),
        (_with(GOOD_HEADERS.replace(b"CSeq: 2 MESSAGE", b"CSeq: 2 INVITE")), "CSeq method", True),
        (_with(GOOD_HEADERS.replace(b"CSeq: 2 ", b"CSeq: 99999999999 ")), "CSeq", True),
        (_with(GOOD_HEADERS.replace(b"CSeq: 2 ", b"CSeq: 4294967295 ")), "2\\*\\*31", True),
        (_with(GOOD_HEADERS.replace(b"Call-ID: 1\r\n", b"")), "no Call-ID", True),
        (_with(GOOD_HEADERS + b"i: 2\r\n"), "more than one Call-ID", True),
    ],
)
def test_hostile_input_is_refused_with_a_short_reason(
    data: bytes, problem: str, has_partial: bool
) -> None:
    with pytest.raises(SipError, match=problem) as caught:
        parse_message(data, 1 << 20)  # 10,000 headers fit: the header count refuses them
    assert len(str(caught.value)) <= 140  # at most an 80-character excerpt of the input
    assert (caught.value.partial is not None) == has_partial
    if caught.value.partial is not None:  # enough to answer 400 from
        assert caught.value.partial.method == "MESSAGE" or caught.value.partial.method == "REGISTER"


def test_size_limit_and_a_message_without_content_length() -> None:
    with pytest.raises(SipError, match="over the limit of 100"):
        parse_message(REGISTER, 100)
    body_without_length = _with(GOOD_HEADERS, b"<Notify/>")
    message = parse_message(body_without_length, MAX)  # UDP: the body is the rest (s.18.3)
    assert message.body == b"<Notify/>"
    response = parse_message(b"SIP/2.0 401 Unauthorized\r\n" + GOOD_HEADERS + b"\r\n", MAX)
    assert isinstance(response, SipResponse) and response.reason == "Unauthorized"
    with pytest.raises(SipError) as caught:  # a broken response has nothing to answer
        parse_message(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", MAX)
    assert caught.value.partial is None


def test_mutated_messages_fail_only_with_sip_error() -> None:
    """Hostile input as a class: thousands of truncations, byte flips, insertions and
    splices of a valid message either parse or raise SipError with a short message."""
    rng = random.Random(28181)
    valid = REGISTER + b""  # a known-good start
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(3000):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(4)
            at = rng.randrange(len(data) + 1)
            if action == 0:
                del data[at:]
            elif action == 1 and data:
                data[min(at, len(data) - 1)] = rng.randrange(256)
            elif action == 2:
                data[at:at] = rng.choice([b"\r\n", b":", b" ", b"\x00", b"\xff", b"\r\n\r\n"])
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        try:
            parse_message(bytes(data), MAX)
            outcomes["parsed"] += 1
        except SipError as error:
            assert len(str(error)) <= 140
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 1000
