"""MANSCDP bodies (GB/T 28181-2016 Annex A): what platforms send is read, in the encodings
they really use; hostile or broken bodies are refused with a ManscdpError saying why."""

from __future__ import annotations

import pytest

from surveillance.gb28181.manscdp import (
    MAX_ITEMS,
    AlarmNotify,
    CatalogAnswer,
    CatalogItem,
    CatalogNotify,
    Keepalive,
    ManscdpError,
    OtherBody,
    alarm_response,
    catalog_query,
    catalog_subscribe_body,
    device_control,
    parse_body,
)

PLATFORM = "34020000002000000001"
CAMERA = "34020000001320000001"

# A catalog page as a lower platform sends it (Annex A.2.6): a business group, a
# virtual organisation under it, and a camera with its PTZ type under Info (2016) ...
CATALOG_PAGE = """<?xml version="1.0" encoding="GB2312"?>\r
<Response>\r
  <CmdType>Catalog</CmdType>\r
  <SN>17430</SN>\r
  <DeviceID>34020000002000000001</DeviceID>\r
  <SumNum>3</SumNum>\r
  <DeviceList Num="3">\r
    <Item>\r
      <DeviceID>34020000002150000001</DeviceID>\r
      <Name>一号楼</Name>\r
    </Item>\r
    <Item>\r
      <DeviceID>34020000002160000001</DeviceID>\r
      <Name>东门</Name>\r
      <ParentID>34020000002150000001</ParentID>\r
      <BusinessGroupID>34020000002150000001</BusinessGroupID>\r
    </Item>\r
    <Item>\r
      <DeviceID>34020000001320000001</DeviceID>\r
      <Name>大门摄像机</Name>\r
      <Manufacturer>Hikvision</Manufacturer>\r
      <Model>DS-2CD3T47</Model>\r
      <Owner>Owner</Owner>\r
      <CivilCode>340200</CivilCode>\r
      <Address>停车场入口</Address>\r
      <Parental>0</Parental>\r
      <ParentID>34020000002160000001</ParentID>\r
      <SafetyWay>0</SafetyWay>\r
      <RegisterWay>1</RegisterWay>\r
      <Secrecy>0</Secrecy>\r
      <Status>ON</Status>\r
      <Longitude>117.2272</Longitude>\r
      <Latitude>31.8206</Latitude>\r
      <Info><PTZType>1</PTZType></Info>\r
    </Item>\r
  </DeviceList>\r
</Response>\r
"""

THE_CAMERA = CatalogItem(
    device_id=CAMERA,
    name="大门摄像机",
    status="ON",
    event=None,
    civil_code="340200",
    parent_id="34020000002160000001",
    business_group_id=None,
    manufacturer="Hikvision",
    model="DS-2CD3T47",
    address="停车场入口",
    longitude=117.2272,
    latitude=31.8206,
    ptz_type=1,
    parental=False,
)


def catalog(items: str, *, root: str = "Response", sum_num: str = "<SumNum>1</SumNum>") -> bytes:
    return (
        f'<?xml version="1.0" encoding="GB2312"?><{root}><CmdType>Catalog</CmdType><SN>1</SN>'
        f"<DeviceID>{PLATFORM}</DeviceID>{sum_num}<DeviceList>{items}</DeviceList></{root}>"
    ).encode("gb18030")


def item(fields: str) -> str:
    return f"<Item><DeviceID>{CAMERA}</DeviceID>{fields}</Item>"


def only_item(fields: str) -> CatalogItem:
    answer = parse_body(catalog(item(fields)))
    assert isinstance(answer, CatalogAnswer)
    (one,) = answer.items
    return one


def test_a_catalog_page_in_gb2312_is_read_field_by_field() -> None:
    body = CATALOG_PAGE.encode("gb2312")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # really GB2312 bytes, not UTF-8 by accident
    answer = parse_body(body)
    assert isinstance(answer, CatalogAnswer)
    assert (answer.sn, answer.device_id, answer.sum_num, answer.skipped) == (17430, PLATFORM, 3, 0)
    group, organisation, camera = answer.items
    assert (group.device_id, group.name, group.parental, group.status) == (
        "34020000002150000001",
        "一号楼",
        False,
        None,
    )
    assert organisation.business_group_id == "34020000002150000001"
    assert organisation.parent_id == "34020000002150000001"
    assert camera == THE_CAMERA


def test_the_encodings_platforms_really_send_all_read_the_same() -> None:
    expected = parse_body(CATALOG_PAGE.encode("gb2312"))
    gbk = CATALOG_PAGE.replace('encoding="GB2312"', 'encoding="GBK"').encode("gbk")
    gb18030 = CATALOG_PAGE.replace('encoding="GB2312"', "encoding='gb18030'").encode("gb18030")
    utf8 = CATALOG_PAGE.replace("GB2312", "UTF-8").encode("utf-8")
    undeclared = CATALOG_PAGE.replace('<?xml version="1.0" encoding="GB2312"?>', "")
    # Declared GB2312 but sent as UTF-8 (platforms do this): valid UTF-8 is taken as such.
    liar = CATALOG_PAGE.encode("utf-8")
    with_bom = b"\xef\xbb\xbf" + CATALOG_PAGE.encode("utf-8")
    for body in (gbk, gb18030, utf8, liar, with_bom, undeclared.encode("utf-8")):
        assert parse_body(body) == expected
    # No declaration and GB bytes: not UTF-8, so GB18030 (a platform that forgot to say).
    assert parse_body(undeclared.encode("gb2312")) == expected
    # Short GB2312 names are often valid UTF-8 too (医院 = D2BD D4BA = "ҽԺ" in UTF-8): the
    # likelier reading wins, either way round, declared or not.
    for name in ("医院", "一楼", "路口", "前门", "喆", "校医院东门"):
        for encoding, declaration in (
            ("gb2312", 'encoding="GB2312"'),
            ("gbk", 'encoding="GBK"'),
            ("utf-8", 'encoding="GB2312"'),
            ("gbk", ""),
            ("utf-8", ""),
        ):
            if encoding == "gb2312" and name == "喆":
                continue  # not a GB2312 character
            text = f'<?xml version="1.0" {declaration}?><Notify><CmdType>Catalog</CmdType>'
            text += f"<SN>1</SN><DeviceID>{PLATFORM}</DeviceID><DeviceList>"
            text += item(f"<Name>{name}</Name>") + "</DeviceList></Notify>"
            read = parse_body(text.encode(encoding))
            assert isinstance(read, CatalogNotify)
            assert read.items[0].name == name, (name, encoding, declaration)
    # GB18030-only characters in a body declared GB2312 (its superset is used).
    rare = parse_body(catalog(item("<Name>㐀䶵</Name>")))
    assert isinstance(rare, CatalogAnswer)
    assert rare.items[0].name == "㐀䶵"


LATIN1 = (
    '<?xml version="1.0" encoding="ISO-8859-1"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN>'
    f"<DeviceID>{PLATFORM}</DeviceID><Status>Café</Status></Notify>"
).encode("latin-1")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (LATIN1, "encoding 'iso-8859-1'"),
        (LATIN1.replace(b"Caf\xe9", b"Cafe"), "encoding 'iso-8859-1'"),
        (CATALOG_PAGE.replace("GB2312", "UTF-16").encode("utf-16"), "UTF-16 is not"),
        (CATALOG_PAGE.replace("GB2312", "ascii").encode("gb2312"), "encoding 'ascii'"),
        (CATALOG_PAGE.replace("GB2312", "UTF-8").encode("gb2312"), "not valid UTF-8 at byte"),
        (
            b'<?xml version="1.0" encoding="GB2312"?><Notify>\x81</Notify>',
            "neither valid GB18030 nor UTF-8",
        ),
    ],
)
def test_other_encodings_and_undecodable_bytes_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(ManscdpError, match=message):
        parse_body(body)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&lol9;</DeviceID></Notify>"""
PASSWD = b"""<?xml version="1.0"?>
<!DOCTYPE Notify [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&xxe;</DeviceID></Notify>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Notify [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Notify SYSTEM "file:///etc/passwd">
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>"""
PLAIN_DOCTYPE = b"<!DOCTYPE Notify><Notify><CmdType>Keepalive</CmdType></Notify>"


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, PASSWD, PARAMETER_ENTITY, EXTERNAL_DTD, PLAIN_DOCTYPE]
)
def test_dtds_entities_and_external_references_are_refused(body: bytes) -> None:
    with pytest.raises(ManscdpError, match="DOCTYPE is refused") as refused:
        parse_body(body)
    assert "root:" not in str(refused.value)  # nothing of /etc/passwd was read
    # An entity used without any declaration is no more than malformed.
    with pytest.raises(ManscdpError, match="malformed XML: undefined entity"):
        parse_body(b"<Notify><CmdType>&xxe;</CmdType></Notify>")


def many(count: int, element: str) -> str:
    return element * count


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "malformed XML"),
        (b"<Notify><CmdType>Keepalive</CmdType>", "malformed XML"),
        (b"not xml at all", "malformed XML"),
        (b"<Notify><CmdType>Keepalive</CmdType></Notify><Notify/>", "malformed XML"),
        (b"<Message><CmdType>Keepalive</CmdType></Message>", "unknown root element 'Message'"),
        (b"<Notify><SN>1</SN></Notify>", "<Notify> without CmdType"),
        (b"<Notify><CmdType>Keepalive</CmdType><DeviceID>12</DeviceID></Notify>", "no SN"),
        (b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>", "no DeviceID"),
        (catalog(item(""), sum_num=""), "no SumNum"),
        (catalog(item(""), sum_num="<SumNum>-1</SumNum>"), "SumNum '-1' is not a number"),
        (catalog(many(MAX_ITEMS + 1, item(""))), f"{MAX_ITEMS + 1} items in one message"),
        (("<Notify>" + many(60_000, "<a/>") + "</Notify>").encode(), "60002 tags, more than 50100"),
        (b"<Notify>" + b" " * 1_048_577 + b"</Notify>", "over 1048576"),
    ],
)
def test_broken_or_oversized_bodies_are_refused_saying_what(body: bytes, message: str) -> None:
    with pytest.raises(ManscdpError, match=message):
        parse_body(body)


@pytest.mark.parametrize("sn", ["1_000", "+1", "1e3", "1.0", "٣", "0x10", "1 2", "9" * 21])
def test_numbers_are_ascii_digits_only(sn: str) -> None:
    body = (
        f"<Notify><CmdType>Keepalive</CmdType><SN>{sn}</SN><DeviceID>{CAMERA}</DeviceID></Notify>"
    )
    with pytest.raises(ManscdpError, match=r"SN .* is not a number"):
        parse_body(body.encode())
    id_body = f"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>{sn}</DeviceID></Notify>"
    with pytest.raises(ManscdpError, match=r"DeviceID .* is not 2-20 digits"):
        parse_body(id_body.encode())


def test_a_bad_field_costs_that_field_and_a_bad_item_that_item_not_the_catalog() -> None:
    assert only_item("<Longitude>180.5</Longitude><Latitude>-90.01</Latitude>").longitude is None
    for bad in ("NaN", "inf", "1e2", "116,39", "", "116.39.1", "١١٦"):
        found = only_item(f"<Longitude>{bad}</Longitude><Latitude>{bad}</Latitude>")
        assert (found.longitude, found.latitude) == (None, None), bad
    edge = only_item("<Longitude>-180</Longitude><Latitude>+90.000</Latitude>")
    assert (edge.longitude, edge.latitude) == (-180.0, 90.0)
    # PTZType directly in the Item (2011 habit) is read; one out of 1-4 is not.
    assert only_item("<PTZType>3</PTZType>").ptz_type == 3
    assert only_item("<Info><PTZType>9</PTZType></Info>").ptz_type is None
    assert only_item("<Status>OFFLINE</Status><Parental>1</Parental>").status == "OFF"
    assert only_item("<Status>Online</Status>").status == "ON"
    assert only_item("<Status>BROKEN</Status>").status is None
    assert only_item("<Parental>1</Parental>").parental is True
    assert only_item("<CivilCode>34a</CivilCode><ParentID>1</ParentID>").civil_code is None
    long_name = only_item(f"<Name>{'长' * 500}</Name>").name
    assert long_name == "长" * 200
    # Items with no usable DeviceID are dropped and counted toward SumNum.
    page = parse_body(
        catalog(item("") + "<Item><Name>no id</Name></Item><Item><DeviceID>x1</DeviceID></Item>")
    )
    assert isinstance(page, CatalogAnswer)
    assert (len(page.items), page.skipped) == (1, 2)
    full = parse_body(catalog(many(MAX_ITEMS, item(""))))
    assert isinstance(full, CatalogAnswer)
    assert len(full.items) == MAX_ITEMS


def test_a_catalog_notify_carries_each_items_event() -> None:
    items = item("<Event>add</Event><Name>新</Name>") + item("<Event>OFF</Event>")
    items += item("<Event>EXPLODE</Event>")
    notify = parse_body(catalog(items, root="Notify", sum_num=""))
    assert isinstance(notify, CatalogNotify)
    assert [one.event for one in notify.items] == ["ADD", "OFF", None]
    assert notify.sum_num == 3  # left out: this message's items
    assert notify.items[0].name == "新"


def test_keepalive_alarm_and_other_bodies() -> None:
    keepalive = parse_body(
        b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
        b"<SN>43</SN>\r\n<DeviceID>34020000002000000001</DeviceID>\r\n<Status>OK</Status>\r\n"
        b"</Notify>\r\n"
    )
    assert keepalive == Keepalive(sn=43, device_id=PLATFORM, status="OK")
    alarm = parse_body(
        (
            '<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Alarm</CmdType><SN>7</SN>'
            f"<DeviceID>{CAMERA}</DeviceID><AlarmPriority>1</AlarmPriority>"
            "<AlarmMethod>5</AlarmMethod><AlarmTime>2026-12-02T10:11:12</AlarmTime>"
            "<AlarmDescription>区域入侵</AlarmDescription><Longitude>117.2</Longitude>"
            "<Latitude>999</Latitude><Info><AlarmType>2</AlarmType></Info></Notify>"
        ).encode("gb2312")
    )
    assert alarm == AlarmNotify(
        sn=7,
        device_id=CAMERA,
        priority=1,
        method=5,
        alarm_type=2,
        time="2026-12-02T10:11:12",
        description="区域入侵",
        longitude=117.2,
        latitude=None,
    )
    bare = parse_body(
        f"<Notify><CmdType>Alarm</CmdType><SN>8</SN><DeviceID>{CAMERA}</DeviceID>"
        "<AlarmPriority>7</AlarmPriority></Notify>".encode()
    )
    assert isinstance(bare, AlarmNotify)
    assert (bare.priority, bare.method, bare.alarm_type, bare.description) == (None,) * 4
    beside = parse_body(
        f"<Notify><CmdType>Alarm</CmdType><SN>8</SN><DeviceID>{CAMERA}</DeviceID>"
        "<AlarmType>3</AlarmType><Info><Other/></Info></Notify>".encode()
    )
    assert isinstance(beside, AlarmNotify)
    assert beside.alarm_type == 3  # the 2011 place, beside the other fields
    info = parse_body(
        f"<Response><CmdType>DeviceInfo</CmdType><SN>9</SN><DeviceID>{CAMERA}</DeviceID>"
        "<Result>OK</Result></Response>".encode()
    )
    assert info == OtherBody(root="Response", cmd_type="DeviceInfo", sn=9, device_id=CAMERA)
    # Known CmdType under a root it does not go with, loose SN: still only "other".
    odd = parse_body(b"<Query><CmdType>Keepalive</CmdType><SN>x</SN><DeviceID>y</DeviceID></Query>")
    assert odd == OtherBody(root="Query", cmd_type="Keepalive", sn=None, device_id=None)


def test_the_bodies_we_send_are_gb2312_declared_and_read_back() -> None:
    query = catalog_query(17430, PLATFORM)
    assert query.startswith(b'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n')
    assert b"<CmdType>Catalog</CmdType>\r\n<SN>17430</SN>\r\n" in query
    assert parse_body(query) == OtherBody("Query", "Catalog", 17430, PLATFORM)
    assert parse_body(catalog_subscribe_body(2, PLATFORM)) == OtherBody(
        "Query", "Catalog", 2, PLATFORM
    )
    control = device_control(3, CAMERA, "A50F0100000000B5")
    assert b"<PTZCmd>A50F0100000000B5</PTZCmd>" in control
    assert parse_body(control) == OtherBody("Control", "DeviceControl", 3, CAMERA)
    answer = alarm_response(7, CAMERA)
    assert b"<Result>OK</Result>" in answer
    assert parse_body(answer) == OtherBody("Response", "Alarm", 7, CAMERA)
    for bad in (
        lambda: catalog_query(1, "3402</DeviceID><x>"),
        lambda: catalog_query(-1, PLATFORM),
        lambda: device_control(1, CAMERA, "a50f0100000000b5"),
        lambda: device_control(1, CAMERA, "A50F01"),
    ):
        with pytest.raises(ValueError):
            bad()
