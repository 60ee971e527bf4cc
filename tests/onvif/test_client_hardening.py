"""The zeep clients onvif-zeep-async builds for a device are the hardened ones: our parse
settings, our capped transport, no WS-Security header without credentials. Checked on the
library's own objects (no device needed: building a service reads only its WSDL)."""

from __future__ import annotations

import asyncio

import pytest
import zeep.exceptions
from zeep.loader import parse_xml

from surveillance.onvif.answers import HARDENED_SETTINGS, AnswerRefused
from surveillance.onvif.client import OnvifClient, _camera_class, safe_url, translate_errors
from surveillance.onvif.errors import BadAnswer, DeviceTimeout, NotAuthorized

DTD_UTF16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'


def test_every_service_the_library_builds_parses_with_our_settings() -> None:
    async def build(user: str | None) -> list[object]:
        camera = _camera_class()("127.0.0.1", 9, user, "pw" if user else None, no_cache=True)
        camera.device_url = "http://127.0.0.1:9/custom/path"
        try:
            service = await camera.create_onvif_service("devicemgmt")
            return [service.xaddr, service.zeep_client, service.zeep_client_authless,
                    service.transport]  # fmt: skip
        finally:
            await camera.close()

    for user in ("admin", None):
        xaddr, client, authless, transport = asyncio.run(build(user))
        assert xaddr == "http://127.0.0.1:9/custom/path"  # the URL as given, any path
        assert client.settings is HARDENED_SETTINGS
        assert authless.settings is HARDENED_SETTINGS
        assert transport._surveillance_hardened is True
        assert (client.wsse is None) == (user is None)
    # A DTD the byte check cannot see (UTF-16) is still refused by the parser zeep runs.
    with pytest.raises(zeep.exceptions.DTDForbidden):
        parse_xml(DTD_UTF16.encode("utf-16"), None, settings=HARDENED_SETTINGS)


def test_failures_become_onvif_errors_naming_the_url_without_credentials() -> None:
    async def raised(exc: BaseException) -> Exception:
        try:
            async with translate_errors("http://user:secret@10.0.0.1/onvif/device_service"):
                raise exc
        except Exception as mapped:
            return mapped
        raise AssertionError("nothing raised")

    fault = zeep.exceptions.Fault("Sender not Authorized", code="s:Sender")
    cases = [
        (TimeoutError(), DeviceTimeout, "did not answer in time"),
        (fault, NotAuthorized, "refused the user name and password"),
        (AnswerRefused("its answer is too large"), BadAnswer, "too large"),
        (zeep.exceptions.XMLSyntaxError("x"), BadAnswer, "not what ONVIF describes"),
    ]
    for exc, kind, says in cases:
        mapped = asyncio.run(raised(exc))
        assert isinstance(mapped, kind) and says in str(mapped)
        assert "secret" not in str(mapped) and "10.0.0.1/onvif" in str(mapped)
    bug = asyncio.run(raised(KeyError("ours")))
    assert isinstance(bug, KeyError)  # a bug is not dressed up as a device's fault
    assert safe_url("rtsp://u:p@cam/x") == "rtsp://cam/x"
    with pytest.raises(BadAnswer, match="not an http"):
        OnvifClient("ftp://cam/x", None, None, timeout_s=1)
