"""The discover command's lines: in address order (numerically, not as strings), a device
that could not be inspected shown with its outcome (never "same"), a ported range's silent
addresses counted in the summary line rather than listed, as are the addresses the time
limit came before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote

from surveillance.onvif.inspect import scope_value
from surveillance.onvif.records import DeviceReport
from surveillance.onvif.wsd import _bounded, probe
from surveillance.services.onvif_discover_command import _table
from surveillance.services.onvif_discovery import DiscoveryResult, DiscoveryRun
from surveillance.services.onvif_scope import device_order
from tests.onvif_net import test_subnet


def url(host: str, port: int = 80) -> str:
    return f"http://{host}:{port}/onvif/device_service"


def test_a_long_name_is_cut_on_a_whole_character_not_inside_its_escapes() -> None:
    # Each "ж" is two bytes, "%D0%B6" escaped: 512 characters end inside one of them.
    for name in ("ж" * 400, "a" + "ж" * 400, "ab" + "ж" * 400, "😀" * 200, "x" * 600):
        scope = "onvif://www.onvif.org/name/" + quote(name)
        kept = _bounded(scope)
        assert len(kept) <= 512 and scope.startswith(kept)
        shown = scope_value([kept], "name")
        assert shown is not None and "\ufffd" not in shown and "%" not in shown, shown
        assert set(shown.rstrip("…")) == set(name[-1]) | set(name[:2]), shown


def test_lines_in_address_order_with_outcomes_and_the_silent_count() -> None:
    hosts = ["cam.example.net", "127.0.93.100", "[::1]", "127.0.93.10", "127.0.93.2"]
    urls = [url(hosts[0]), url(hosts[1], 8080), url(hosts[2]), url(hosts[3]), url(hosts[4])]
    urls.append(url("127.0.93.10", 81))
    run = DiscoveryRun(
        id="r1",
        by="cli",
        targets=("127.0.93.0/24:80",),
        multicast=False,
        username=None,
        time_limit_s=10.0,
        started_at=datetime.now(UTC),
        started_monotonic=0.0,
        ended_monotonic=1.0,
        silent=246,
        not_probed=3,
    )
    run.results = [
        DiscoveryResult(DeviceReport(u, "timeout", reason=f"{u} did not answer in time"), "timeout")
        for u in urls
    ]
    run.results[4] = DiscoveryResult(
        DeviceReport(urls[4], "timeout", reason="slow"), "timeout", camera_id="hung"
    )
    lines = _table(run).splitlines()
    expected = [urls[4], urls[3], urls[5], urls[1], urls[2], urls[0]]
    assert [line.split()[0] for line in lines[:-1]] == expected
    assert sorted(urls, key=device_order) == expected
    assert lines[0].endswith("timeout: slow  [timeout (hung)]")
    assert lines[-1].endswith(
        "0 new, 0 changed, 0 same, 6 not inspected, 0 gone; 246 addresses did not answer; "
        "time ran out before 3 were probed"
    )


async def test_addresses_the_time_limit_came_before_are_counted() -> None:
    # Real UDP probes on loopback (no device needed): 10 a second, 0.35 s: most not sent.
    loop = asyncio.get_running_loop()
    addresses = [f"{test_subnet()}.{host}" for host in range(240, 250)]
    progress: list[int] = []  # the count as a watcher sees it during the sweep
    outcome = await probe(
        unicast=addresses,
        multicast_interfaces=[],
        probes_per_s=10,
        answer_wait_s=0.0,
        deadline=loop.time() + 0.35,
        on_sent=progress.append,
    )
    assert outcome.probes_sent + outcome.not_probed == 10 and outcome.not_probed >= 5
    assert progress == list(range(1, outcome.probes_sent + 1))
