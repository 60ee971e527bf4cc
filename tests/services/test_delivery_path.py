"""Which path a camera takes to a browser, from what the camera sends and the page can decode."""

from __future__ import annotations

import itertools

import pytest

from surveillance.services.live import (
    BrowserCaps,
    DeliveryPath,
    DeliveryPlan,
    Purpose,
    SourceFacts,
    choose_path,
)

# What pages report (player.js asks RTCRtpReceiver.getCapabilities and MediaSource.isTypeSupported).
CHROMIUM = BrowserCaps(webrtc_h264=True, mse_avc=True, mse_hevc=False)
CHROMIUM_WITH_HEVC = BrowserCaps(webrtc_h264=True, mse_avc=True, mse_hevc=True)
NO_WEBRTC_H264 = BrowserCaps(webrtc_h264=False, mse_avc=True, mse_hevc=False)
WEBRTC_ONLY = BrowserCaps(webrtc_h264=True, mse_avc=False, mse_hevc=False)
NOTHING = BrowserCaps(webrtc_h264=False, mse_avc=False, mse_hevc=False)


def camera(codec: str = "h264", b_frames: bool | None = False) -> SourceFacts:
    codec_string = "avc1.640033" if codec == "h264" else "hvc1.1.6.L150.80"
    return SourceFacts(codec, b_frames, codec_string, 1920, 1080)


H264 = camera()
H264_B_FRAMES = camera(b_frames=True)
H264_NOT_KNOWN_YET = camera(b_frames=None)  # right after a reconnect, for a moment
H265 = camera("hevc")


@pytest.mark.parametrize(
    ("source", "caps", "path", "because"),
    [
        (H264, CHROMIUM, DeliveryPath.WEBRTC, "without B-frames"),
        (H264, WEBRTC_ONLY, DeliveryPath.WEBRTC, "without B-frames"),
        # WebRTC cannot reorder frames: B-frames go as fragmented MP4.
        (H264_B_FRAMES, CHROMIUM, DeliveryPath.MSE, "B-frames"),
        (H264, NO_WEBRTC_H264, DeliveryPath.MSE, "no WebRTC H.264"),
        (H264_B_FRAMES, NO_WEBRTC_H264, DeliveryPath.MSE, "B-frames"),
        (H264_B_FRAMES, WEBRTC_ONLY, DeliveryPath.TRANSCODE, "no pass-through"),
        (H264, NOTHING, DeliveryPath.TRANSCODE, "no pass-through"),
        # Not known yet: MSE plays either way; WebRTC only if there is nothing else.
        (H264_NOT_KNOWN_YET, CHROMIUM, DeliveryPath.MSE, "not known yet"),
        (H264_NOT_KNOWN_YET, WEBRTC_ONLY, DeliveryPath.WEBRTC, "not known yet"),
        (H265, CHROMIUM_WITH_HEVC, DeliveryPath.MSE, "H.265 accepted"),
        # H.265 never goes over WebRTC here, and H.264 support does not help it.
        (H265, CHROMIUM, DeliveryPath.TRANSCODE, "no pass-through"),
        (H265, NOTHING, DeliveryPath.TRANSCODE, "no pass-through"),
        (camera("mjpeg"), CHROMIUM_WITH_HEVC, DeliveryPath.TRANSCODE, "no pass-through"),
    ],
)
def test_the_path_and_why(
    source: SourceFacts, caps: BrowserCaps, path: DeliveryPath, because: str
) -> None:
    chosen, reason = choose_path(source, caps)
    assert chosen is path
    assert because in reason


@pytest.mark.parametrize(
    ("source", "avoid", "path"),
    [
        # The page's WebRTC video did not advance (B-frames the stream had not shown yet):
        (H264, {DeliveryPath.WEBRTC}, DeliveryPath.MSE),
        (H264, {DeliveryPath.MSE}, DeliveryPath.WEBRTC),
        (H264_B_FRAMES, {DeliveryPath.MSE}, DeliveryPath.TRANSCODE),
        (H264, {DeliveryPath.WEBRTC, DeliveryPath.MSE}, DeliveryPath.TRANSCODE),
    ],
)
def test_a_path_the_page_saw_fail_is_avoided(
    source: SourceFacts, avoid: set[DeliveryPath], path: DeliveryPath
) -> None:
    chosen, reason = choose_path(source, CHROMIUM, avoid=frozenset(avoid))
    assert chosen is path
    assert "did not advance" in reason


def test_a_grid_tile_whose_mse_did_not_advance_falls_back_like_a_single_picture() -> None:
    chosen, reason = choose_path(H264, CHROMIUM, Purpose.GRID, avoid=frozenset({DeliveryPath.MSE}))
    assert chosen is DeliveryPath.WEBRTC and "did not advance" in reason


@pytest.mark.parametrize(
    ("source", "caps", "path", "because"),
    [
        # A grid tile takes fMP4 whenever the browser plays it: a WebSocket message per
        # frame costs the server a fraction of aiortc's per-RTP-packet send path.
        (H264, CHROMIUM, DeliveryPath.MSE, "grid tile"),
        (H264_B_FRAMES, CHROMIUM, DeliveryPath.MSE, "grid tile"),
        (H264_NOT_KNOWN_YET, CHROMIUM, DeliveryPath.MSE, "grid tile"),
        # Without MSE the grid falls back on what a single picture would get.
        (H264, WEBRTC_ONLY, DeliveryPath.WEBRTC, "without B-frames"),
        (H264_B_FRAMES, WEBRTC_ONLY, DeliveryPath.TRANSCODE, "no pass-through"),
        (H265, CHROMIUM_WITH_HEVC, DeliveryPath.MSE, "H.265 accepted"),
        (H265, CHROMIUM, DeliveryPath.TRANSCODE, "no pass-through"),
    ],
)
def test_a_grid_tile_takes_the_cheapest_path_the_browser_plays(
    source: SourceFacts, caps: BrowserCaps, path: DeliveryPath, because: str
) -> None:
    chosen, reason = choose_path(source, caps, Purpose.GRID)
    assert chosen is path
    assert because in reason


def test_a_single_picture_keeps_the_lowest_latency_path() -> None:
    # Full screen, or whatever the page asks without saying: WebRTC where it works.
    assert choose_path(H264, CHROMIUM, Purpose.SINGLE)[0] is DeliveryPath.WEBRTC
    assert choose_path(H264, CHROMIUM)[0] is DeliveryPath.WEBRTC


def test_only_transcoding_needs_no_browser_decoder_for_the_camera() -> None:
    # Whatever the page reports, a camera never ends up with no path at all.
    for webrtc_h264 in (False, True):
        for mse_avc in (False, True):
            for mse_hevc in (False, True):
                caps = BrowserCaps(webrtc_h264, mse_avc, mse_hevc)
                for source, purpose in itertools.product(
                    (H264, H264_B_FRAMES, H264_NOT_KNOWN_YET, H265), Purpose
                ):
                    chosen, _ = choose_path(source, caps, purpose)
                    if chosen is DeliveryPath.WEBRTC:
                        assert webrtc_h264 and source.b_frames is not True
                        assert source.codec == "h264"
                        assert source.b_frames is False or not mse_avc
                    if chosen is DeliveryPath.MSE:
                        assert mse_hevc if source.codec == "hevc" else mse_avc


def test_the_plan_names_the_mime_type_media_source_asks_for() -> None:
    plan = DeliveryPlan(DeliveryPath.MSE, "B-frames", H264_B_FRAMES)
    assert plan.mime == 'video/mp4; codecs="avc1.640033"'
    unknown = DeliveryPlan(DeliveryPath.TRANSCODE, "", SourceFacts("h264", False, None, 1, 1))
    assert unknown.mime is None
