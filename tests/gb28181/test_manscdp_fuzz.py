"""parse_body against random and mangled input: whatever arrives, the answer is a parsed
body that keeps its promises or a ManscdpError; never another exception. Seeded, a fixed
number of cases (well under a second each way), so a failure reproduces."""

from __future__ import annotations

import math
import random

from surveillance.gb28181.manscdp import (
    MAX_ITEMS,
    AlarmNotify,
    CatalogAnswer,
    CatalogItem,
    CatalogNotify,
    Keepalive,
    Manscdp,
    ManscdpError,
    OtherBody,
    parse_body,
)
from tests.gb28181.test_manscdp import CATALOG_PAGE

SEED = 14
FIELDS = [
    "CmdType", "SN", "DeviceID", "SumNum", "DeviceList", "Item", "Name", "Manufacturer",
    "Model", "Owner", "CivilCode", "Address", "Parental", "ParentID", "BusinessGroupID",
    "SafetyWay", "RegisterWay", "Secrecy", "Status", "Longitude", "Latitude", "Info",
    "PTZType", "Event", "AlarmPriority", "AlarmMethod", "AlarmTime", "AlarmDescription",
    "AlarmType", "Result",
]  # fmt: skip
ROOTS = ["Notify", "Response", "Query", "Control", "Other"]
CMD_TYPES = ["Keepalive", "Catalog", "Alarm", "DeviceControl", "DeviceInfo", ""]
VALUES = [
    "1", "0", "-1", "34020000001320000001", "340200", "1e308", "NaN", "-inf", "180.0000001",
    "-90", "116.397", "٣", "1_0", "ON", "offline", "ADD", "", " ", "大门", "&amp;", "&lt;x&gt;",
    "9" * 40, "<![CDATA[<Item>]]>", "\u00a0", "\U0001f600",
]  # fmt: skip


def check(result: Manscdp) -> None:
    """What a parsed body promises its users, whatever it was made from."""
    assert isinstance(result, Keepalive | CatalogAnswer | CatalogNotify | AlarmNotify | OtherBody)
    if isinstance(result, OtherBody):
        return
    assert result.sn >= 0 and result.device_id.isascii() and result.device_id.isdigit()
    if isinstance(result, CatalogAnswer | CatalogNotify):
        assert len(result.items) + result.skipped <= MAX_ITEMS and result.sum_num >= 0
        for item in result.items:
            check_item(item)
    if isinstance(result, AlarmNotify):
        assert result.priority is None or 1 <= result.priority <= 4
        assert result.longitude is None or -180 <= result.longitude <= 180


def check_item(item: CatalogItem) -> None:
    assert item.device_id.isascii() and item.device_id.isdigit() and len(item.device_id) <= 20
    assert len(item.name) <= 200
    assert item.status in (None, "ON", "OFF")
    assert item.ptz_type is None or 1 <= item.ptz_type <= 4
    for value, limit in ((item.longitude, 180), (item.latitude, 90)):
        assert value is None or (math.isfinite(value) and -limit <= value <= limit)


def outcome(body: bytes) -> str:
    try:
        check(parse_body(body))
    except ManscdpError as refused:
        assert len(str(refused)) < 200  # says what, never echoes the input at length
        return "refused"
    return "parsed"


def test_random_bytes_are_refused_or_parsed_never_a_crash() -> None:
    rng = random.Random(SEED)
    outcomes = [outcome(rng.randbytes(rng.randrange(0, 600))) for _ in range(2000)]
    assert outcomes.count("refused") == len(outcomes)  # random bytes are never a body


def test_mangled_real_bodies_are_refused_or_parsed_never_a_crash() -> None:
    rng = random.Random(SEED)
    originals = [CATALOG_PAGE.encode("gb2312"), CATALOG_PAGE.encode("utf-8")]
    outcomes = []
    for _ in range(2000):
        body = bytearray(rng.choice(originals))
        for _ in range(rng.randrange(1, 4)):
            if not body:
                break
            at = rng.randrange(len(body))
            match rng.randrange(4):
                case 0:
                    body[at] = rng.randrange(256)
                case 1:
                    del body[at : at + rng.randrange(1, 30)]
                case 2:
                    body[at:at] = rng.randbytes(rng.randrange(1, 8))
                case _:
                    body = body[:at]
        outcomes.append(outcome(bytes(body)))
    # both ways out were exercised: the mangling is neither always fatal nor always harmless
    assert 0 < outcomes.count("parsed") < len(outcomes)


def random_element(rng: random.Random, depth: int) -> str:
    name = rng.choice(FIELDS)
    if depth > 3 or rng.random() < 0.6:
        return f"<{name}>{rng.choice(VALUES)}</{name}>"
    children = "".join(random_element(rng, depth + 1) for _ in range(rng.randrange(0, 6)))
    return f"<{name}>{children}</{name}>"


def test_random_annex_a_shaped_bodies_keep_every_promise() -> None:
    rng = random.Random(SEED)
    outcomes = []
    for _ in range(1500):
        root = rng.choice(ROOTS)
        fields = [
            f"<CmdType>{rng.choice(CMD_TYPES)}</CmdType>",
            f"<SN>{rng.choice(VALUES[:4])}</SN>",
            f"<DeviceID>{rng.choice(VALUES[:5])}</DeviceID>",
            *(random_element(rng, 0) for _ in range(rng.randrange(0, 8))),
        ]
        rng.shuffle(fields)
        encoding = rng.choice(["GB2312", "UTF-8", "gbk"])
        text = f'<?xml version="1.0" encoding="{encoding}"?><{root}>{"".join(fields)}</{root}>'
        outcomes.append(outcome(text.encode(rng.choice(["gb18030", "utf-8"]))))
    assert 0 < outcomes.count("parsed") < len(outcomes)
