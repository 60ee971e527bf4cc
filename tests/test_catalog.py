"""The catalog's runtime cameras: upsert/remove rules, listeners, and copy-on-write reads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from surveillance.catalog import GB28181_VENDOR, Catalog, CatalogChange, runtime_camera
from surveillance.config.models import AppConfig, RecordingPolicyConfig

CONFIG = AppConfig.model_validate(
    {
        "platforms": [{"id": "town", "name": "Town"}],
        "cameras": [
            {"id": "gate", "name": "Gate", "platform": "town", "url": "rtsp://u:pw@10.0.0.1/a",
             "recording": {"mode": "continuous"}},
        ],
        "gb28181": {
            "platforms": [
                {"id": "city", "name": "City GB", "device_id": "34020000002000000002",
                 "password": "secret"},
            ]
        },
    }
)  # fmt: skip
CHANNEL = "34020000001320000001"


def test_upsert_remove_rules_listeners_and_source_kinds() -> None:
    catalog = Catalog.from_config(CONFIG)
    assert catalog.platforms["city"].vendor == GB28181_VENDOR
    gate = catalog.cameras["gate"]
    assert (gate.source_kind, gate.runtime, gate.recording) == (
        "rtsp",
        False,
        RecordingPolicyConfig(mode="continuous"),
    )
    heard: list[CatalogChange] = []
    catalog.on_change(heard.append)
    channel = runtime_camera(
        id=f"city.{CHANNEL}", name="Channel 1", platform_id="city",
        url=f"gb28181://city/{CHANNEL}", tags=["traffic"],
    )  # fmt: skip
    assert channel.source_kind == "gb28181"
    assert channel.display_url() == f"gb28181://city/{CHANNEL}"

    with pytest.raises(RuntimeError, match="event loop"):
        catalog.upsert([channel])  # not on an event loop

    async def mutate() -> None:
        change = catalog.upsert([channel])
        assert change.added == (channel,) and not change.updated and not change.removed
        assert catalog.upsert([channel]).empty  # the same camera again: nothing changed
        renamed = runtime_camera(
            id=channel.id, name="Channel one", platform_id="city", url=channel.stream_url()
        )
        assert catalog.upsert([renamed]).updated == (renamed,)
        assert list(catalog.cameras) == ["gate", channel.id]
        for bad, message in [
            (runtime_camera(id="gate", name="x", platform_id="town", url="rtsp://h/x"),
             "configured"),
            (runtime_camera(id="x", name="x", platform_id="nowhere", url="rtsp://h/x"),
             "unknown platform"),
            (runtime_camera(id="x", name="x", platform_id="town", url="rtsp://h/x",
                            tags=["no-such-tag"]), "unknown tags"),
        ]:  # fmt: skip
            with pytest.raises(ValueError, match=message):
                catalog.upsert([renamed, bad])
        with pytest.raises(ValueError, match="configured"):
            catalog.remove(["gate"])
        assert catalog.cameras[channel.id] == renamed  # refused batches changed nothing
        assert catalog.remove([channel.id, "unknown"]).removed == (renamed,)
        assert catalog.remove([channel.id]).empty
        assert list(catalog.cameras) == ["gate"]

    asyncio.run(mutate())
    assert [(len(c.added), len(c.updated), len(c.removed)) for c in heard] == [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]


def test_a_thread_iterating_the_cameras_never_sees_the_dict_change() -> None:
    """Readers in other threads (writer threads, diagnosis) iterate catalog.cameras while
    the loop adds and removes cameras: every iteration completes over one whole dict."""
    catalog = Catalog.from_config(CONFIG)
    stop = threading.Event()
    failures: list[BaseException] = []
    iterations = 0

    def read() -> None:
        nonlocal iterations
        while not stop.is_set():
            try:
                ids = [camera.id for camera in catalog.cameras.values()]
                assert ids[0] == "gate"
                iterations += 1
            except BaseException as error:  # reported by the assertion below
                failures.append(error)
                return

    async def churn() -> None:
        for round_ in range(300):
            batch = [
                runtime_camera(id=f"r{round_}-{i}", name="r", platform_id="town", url="rtsp://h/")
                for i in range(20)
            ]
            catalog.upsert(batch)
            catalog.remove(c.id for c in batch)
            await asyncio.sleep(0)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        asyncio.run(churn())
    finally:
        stop.set()
        reader.join()
    assert not failures, failures
    assert iterations > 0
    assert list(catalog.cameras) == ["gate"]

    raised: list[BaseException] = []

    def mutate_from_another_thread() -> None:
        async def upsert() -> None:
            catalog.upsert([runtime_camera(id="x", name="x", platform_id="town", url="rtsp://h/")])

        try:
            asyncio.run(upsert())
        except RuntimeError as error:
            raised.append(error)

    other = threading.Thread(target=mutate_from_another_thread)
    other.start()
    other.join()
    assert [str(e) for e in raised] == ["the catalog changes on one event loop thread only"]
    assert "x" not in catalog.cameras
