"""The WebRTC viewer life cycle, with a local aiortc peer as the browser (no server)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack

from surveillance.errors import BadOffer
from surveillance.media.batch_thread import BatchThread
from surveillance.media.peers import PeerSessions, TooManyPendingPeers


class Track(VideoStreamTrack):
    def __init__(self) -> None:
        super().__init__()
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1
        super().stop()


async def browser_offer() -> tuple[RTCPeerConnection, str]:
    browser = RTCPeerConnection()
    browser.addTransceiver("video", direction="recvonly")
    await browser.setLocalDescription(await browser.createOffer())
    return browser, browser.localDescription.sdp


def test_a_viewer_ends_once_and_shutdown_ends_the_rest() -> None:
    async def main() -> None:
        sessions = PeerSessions()
        ended: list[str] = []
        closed: list[str] = []
        tracks = [Track(), Track()]
        browsers = []
        for name, track in zip("ab", tracks, strict=True):
            browser, offer = await browser_offer()
            browsers.append(browser)
            answer = await sessions.answer(
                offer, track, on_end=lambda n=name: ended.append(n),
                on_close=lambda n=name: closed.append(n),
            )  # fmt: skip
            assert "H264" in answer.sdp
        assert len(sessions) == 2
        await sessions.close()
        assert sorted(ended) == ["a", "b"] and sorted(closed) == ["a", "b"]
        assert [t.stopped for t in tracks] == [1, 1]
        assert len(sessions) == 0
        await sessions.close()  # nothing left: nothing is called twice
        assert len(ended) == 2
        for browser in browsers:
            await browser.close()

    asyncio.run(main())


def test_a_bad_offer_is_refused_and_cleans_up_without_reporting_an_end() -> None:
    async def main() -> None:
        sessions = PeerSessions()
        ended: list[int] = []
        closed: list[int] = []
        track = Track()
        for offer in ("", "v=0\r\nm=video x\r\n", "v=0\r\nm=audio 9 RTP/AVP 0\r\n"):
            with pytest.raises(BadOffer):
                await sessions.answer(
                    offer, track, on_end=lambda: ended.append(1), on_close=lambda: closed.append(1)
                )
        assert ended == [] and closed == [1, 1, 1]
        assert len(sessions) == 0 and track.stopped == 3

    asyncio.run(main())


def test_viewers_waiting_to_connect_are_capped_and_dropped_after_the_deadline() -> None:
    async def main() -> None:
        # The deadline must outlast making the five offers below (ICE gathering each), which
        # on a loaded two-core machine took over 0.5 s once: the first expired too early.
        sessions = PeerSessions(connect_deadline_s=2.5, max_pending=3, max_pending_per_owner=2)
        ended: list[str] = []
        closed: list[str] = []
        browsers = []
        three_ended = asyncio.Event()

        def end(owner: str) -> None:
            ended.append(owner)
            if len(ended) == 3:
                three_ended.set()

        async def offer(owner: str) -> None:
            browser, sdp = await browser_offer()
            browsers.append(browser)  # never given the answer: it never connects
            await sessions.answer(
                sdp, Track(), owner=owner, on_end=lambda: end(owner),
                on_close=lambda: closed.append(owner),
            )  # fmt: skip

        await offer("a")
        await offer("a")
        with pytest.raises(TooManyPendingPeers):
            await offer("a")  # a's own cap
        await offer("b")
        with pytest.raises(TooManyPendingPeers):
            await offer("c")  # the node's cap
        assert sessions.pending() == 3 and sessions.pending("a") == 2
        assert closed == ["a", "c"] and ended == []  # refused: closed, never started
        await asyncio.wait_for(three_ended.wait(), 15)  # the deadline is 2.5 s
        assert len(sessions) == 0
        assert sorted(ended) == ["a", "a", "b"]
        await offer("c")  # room again
        await sessions.close()
        for browser in browsers:
            await browser.close()

    asyncio.run(main())


def test_batch_thread_keeps_order_and_hands_back_errors() -> None:
    async def main() -> None:
        worker = BatchThread("test")
        seen: list[int] = []
        results = await asyncio.gather(
            *(worker.run(lambda i=i: seen.append(i) or i * i) for i in range(50))
        )
        assert results == [i * i for i in range(50)] and seen == list(range(50))
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
        worker.close()
        with pytest.raises(RuntimeError):
            await worker.run(lambda: None)

    asyncio.run(main())
