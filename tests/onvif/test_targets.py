"""Discovery targets as an administrator writes them: every form, each mistake named."""

from __future__ import annotations

import pytest

from surveillance.onvif.answers import HARDENED_SETTINGS, AnswerRefused, check_answer
from surveillance.onvif.targets import Target, parse_targets


def test_every_form_of_target_and_the_order_written() -> None:
    targets = parse_targets(
        ["10.1.2.0/30", "10.1.2.3-5:8080", "10.1.2.9-10.1.2.10", "Cam-7.Example.net:81",
         "10.1.2.1", "10.0.0.7/32"],
        max_hosts=10,  # counted as written (10.1.2.1 twice), before duplicates go
    )  # fmt: skip
    assert targets == [
        Target("10.1.2.1"),  # the /30's network (.0) and broadcast (.3) left out; named alone too
        Target("10.1.2.2", in_range=True),
        Target("10.1.2.3", 8080, True, in_range=True),
        Target("10.1.2.4", 8080, True, in_range=True),
        Target("10.1.2.5", 8080, True, in_range=True),
        Target("10.1.2.9", in_range=True),
        Target("10.1.2.10", in_range=True),
        Target("cam-7.example.net", 81, True),
        Target("10.0.0.7"),  # 10.1.2.1 again: once
    ]
    assert targets[2].device_url == "http://10.1.2.3:8080/onvif/device_service"
    assert targets[7].device_url == "http://cam-7.example.net:81/onvif/device_service"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("10.1.2.0/33", "CIDR"),
        ("10.1.2.9-3", "ends before it starts"),
        ("10.1.2.3-300", "end is not an address"),
        ("cam one", "expected an address"),
        ("1.2.3.4:0", "port must be 1-65535"),
        ("1.2.3.4:http", "port must be 1-65535"),
        ("1.2.3.4:\u00b2", "port must be 1-65535"),  # a digit to str.isdigit, not to int()
        ("10.1.2.3-\u0664\u0660", "end is not an address"),
        ("999.1.1.1", "not a valid IP address"),
        ("-bad.example", "expected an address"),
        ("", "bad target ''"),
        ("x" * 201, "bad target"),
        ("file:///etc/passwd", "a URL; give the device's address"),
        ("http://10.1.2.3/onvif/device_service", "a URL"),
        ("::1", "IPv6 is not supported"),
        ("fe80::1%lo", "IPv6 is not supported"),
        ("[::1]:80", "IPv6 is not supported"),
        ("fe80::1-fe80::9", "IPv6 is not supported"),
        ("255.255.255.255", "broadcast, multicast or reserved"),
        ("224.0.0.1:80", "broadcast, multicast or reserved"),
        ("223.255.255.250-224.0.0.2", "broadcast, multicast or reserved"),
        ("239.0.0.0/24", "broadcast, multicast or reserved"),
        ("0.0.0.0", "no device's address"),
        ("127.0.93.0/20", "host bits set: did you mean 127.0.80.0/20?"),
    ],
)
def test_a_bad_entry_is_named(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match="bad target") as info:
        parse_targets(["10.0.0.1", entry], max_hosts=100)
    assert says in str(info.value) and repr(entry)[:20] in str(info.value)


def test_too_many_hosts_is_counted_before_anything_is_built() -> None:
    with pytest.raises(ValueError, match="name 16777214 hosts; at most 4096"):
        parse_targets(["10.0.0.0/8"], max_hosts=4096)
    assert len(parse_targets(["10.0.0.0/20"], max_hosts=4094)) == 4094


def test_answers_with_a_dtd_are_refused_unread_and_zeep_would_refuse_them_too() -> None:
    for body in (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
                 b"<x/><!ENTITY y SYSTEM 'file:///etc/passwd'>"):  # fmt: skip
        with pytest.raises(AnswerRefused, match="DTD or entities"):
            check_answer(body)
    check_answer(b"<s:Envelope/>")
    settings = HARDENED_SETTINGS
    assert (settings.forbid_dtd, settings.forbid_entities, settings.forbid_external) == (
        True, True, True,
    )  # fmt: skip
    assert not settings.xml_huge_tree and settings.strict
