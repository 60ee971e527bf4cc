"""H.264/H.265 bitstream reading, on parameter sets and slice headers from real cameras.

Sources of the bytes below (facts copied, not code):

- ``car-detection.mp4`` and ``one-by-one-person-detection.mp4`` from intel-iot-devkit/
  sample-videos (CC BY 4.0; ../shared/footage): their avcC boxes as PyAV reads them
  (``stream.codec_context.extradata``), and the first bytes of an I, a P and a B slice.
- Camera SDPs quoted in go2rtc's regression tests, AlexxIT/go2rtc ``pkg/rtsp/rtsp_test.go``:
  TestBugSDP1 (AlexxIT/WebRTC#417), TestBugSDP2 (AlexxIT/WebRTC#419), TestBugSDP3 (a camera
  whose SDP names "BC Streaming Media", Reolink's firmware), TestBugSDP4 ("MERCURY RTSP
  Server"); and the H.265 SPS of go2rtc ``pkg/h265/h265_test.go`` (a 5120x1440 camera).
- An ONVIF camera's SDP (``a=x-onvif-track``), H.264 and H.265, in vtpl1/vrtc-sdk
  ``av/codec/sdp_test.go`` (H264UnamarshalSDP, H265UnmarshalSDP).
"""

from __future__ import annotations

import base64

import pytest

from surveillance.media.bitstream import (
    H264_PPS,
    H264_SPS,
    H265_PPS,
    H265_SPS,
    H265_VPS,
    START_CODE,
    codec_string,
    find_nal,
    h264_slice_is_b,
    nal_type,
    packet_has_b_slices,
    parameter_sets_annexb,
    split_annexb,
    with_parameter_sets,
)

# avcC of car-detection.mp4: H.264 Baseline (constraint_set0), level 2.2, 768x432.
CAR_AVCC = bytes.fromhex(
    "01428016ffe100176742801696540601bd350606064000000300400000066101000468ce3520"
)
CAR_SPS = bytes.fromhex("6742801696540601bd3506060640000003004000000661")
CAR_PPS = bytes.fromhex("68ce3520")
# avcC of one-by-one-person-detection.mp4: H.264 Main, level 3.1, with B-frames.
PERSON_AVCC = bytes.fromhex(
    "014d401fffe10019674d401f965281806f4d41818190000003001000000301484001000568e9093520"
)
# First 8 bytes of slices of one-by-one-person-detection.mp4 (NAL header + slice header).
PERSON_IDR_SLICE = bytes.fromhex("6588804002dbf859")  # IDR, slice_type 7 (I)
PERSON_P_SLICE = bytes.fromhex("419a0211b1156f7c")  # non-IDR, nal_ref_idc 2, slice_type 5 (P)
PERSON_B_SLICE = bytes.fromhex("019e0405d1095b0c")  # non-IDR, nal_ref_idc 0, slice_type 6 (B)
CAR_P_SLICE = bytes.fromhex("419a0204011dbf1b")  # Baseline: no B slices at all

# sprop-parameter-sets (SPS, PPS) and the camera's own profile-level-id from the same SDP.
H264_CAMERAS = {
    "reolink (go2rtc TestBugSDP3)": ("Z2QAM6wVFKAoAPGQ,aO48sA==", "640033"),
    "mercury (go2rtc TestBugSDP4)": ("Z2QAFqzGoCgPaEAAAAMAQAAAB6E=,aOqPLA==", "640016"),
    "AlexxIT/WebRTC#417": ("Z0IAHvQCgC3I,aM48gA==", "42001E"),
    # nal_ref_idc 1 (0x27, 0x28) where most cameras write 3 (0x67, 0x68).
    "onvif (vrtc-sdk H264UnamarshalSDP)": (
        "J01gII1oBVBhv/AQAA/2yAAAAwAIAAADAFB4oRUA,KO4FSSAAAAAAAAAA",
        "4d6020",
    ),
}
# AlexxIT/WebRTC#419: the SDP says profile-level-id=64001F (High) but the SPS is Baseline.
WRONG_FMTP_SPROP = "Z0IAH5WoFAFuQA==,aM48gA=="

# sprop-vps / sprop-sps / sprop-pps of the ONVIF camera (vrtc-sdk H265UnmarshalSDP).
ONVIF_VPS = base64.b64decode("QAEMAf//AWAAAAMAgAAAAwAAAwCWrAk=")
ONVIF_SPS = base64.b64decode("QgEBAWAAAAMAgAAAAwAAAwCWoAFAIAeB/ja7tTd3JdYC3AQEBBAAAD6AAAJxByHe5R2I")
ONVIF_PPS = base64.b64decode("RAHBcrCcGw3iQA==")
# The 5120x1440 camera's SPS (go2rtc pkg/h265/h265_test.go).
WIDE_SPS = base64.b64decode("QgEBAWAAAAMAAAMAAAMAAAMAmaAAoAgBaH+KrTuiS7/8AAQABbAgApMuADN/mAE=")


def sprop_annexb(sprop: str) -> bytes:
    """An SDP's sprop-parameter-sets as Annex B, as FFmpeg hands them over (extradata)."""
    return b"".join(START_CODE + base64.b64decode(part) for part in sprop.split(","))


@pytest.mark.parametrize(("sprop", "profile_level_id"), H264_CAMERAS.values(), ids=H264_CAMERAS)
def test_h264_codec_string_matches_what_the_camera_announces(
    sprop: str, profile_level_id: str
) -> None:
    assert codec_string("h264", sprop_annexb(sprop)) == f"avc1.{profile_level_id.lower()}"


def test_h264_codec_string_follows_the_sps_when_the_sdp_is_wrong() -> None:
    # MSE must be told what the decoder will get: the SPS, not the SDP's claim (64001F).
    assert codec_string("h264", sprop_annexb(WRONG_FMTP_SPROP)) == "avc1.42001f"


def test_nal_types_ignore_nal_ref_idc() -> None:
    sprop = H264_CAMERAS["onvif (vrtc-sdk H264UnamarshalSDP)"][0]
    sps, pps = split_annexb(sprop_annexb(sprop))
    assert (sps[0], pps[0]) == (0x27, 0x28)
    assert (nal_type("h264", sps), nal_type("h264", pps)) == (H264_SPS, H264_PPS)
    assert nal_type("h264", b"") == -1


@pytest.mark.parametrize(
    ("avcc", "expected"), [(CAR_AVCC, "avc1.428016"), (PERSON_AVCC, "avc1.4d401f")]
)
def test_avcc_extradata_becomes_annexb_parameter_sets(avcc: bytes, expected: str) -> None:
    # What an MP4 file or some RTSP stacks hand over: avcC, not Annex B.
    annexb = parameter_sets_annexb("h264", avcc)
    nals = list(split_annexb(annexb))
    assert [nal_type("h264", nal) for nal in nals] == [H264_SPS, H264_PPS]
    assert codec_string("h264", annexb) == expected


def test_avcc_parameter_sets_are_the_bytes_of_the_box() -> None:
    assert parameter_sets_annexb("h264", CAR_AVCC) == START_CODE + CAR_SPS + START_CODE + CAR_PPS


def test_annexb_extradata_is_kept_and_none_is_empty() -> None:
    annexb = sprop_annexb(H264_CAMERAS["AlexxIT/WebRTC#417"][0])
    assert parameter_sets_annexb("h264", annexb) == annexb
    assert parameter_sets_annexb("h264", None) == b""
    assert parameter_sets_annexb("hevc", b"") == b""


def hvcc(*nals: bytes) -> bytes:
    """An hvcC box around the given parameter sets (ISO/IEC 14496-15, 8.3.3.1): a 22-byte
    header whose fields the reader skips, then one array per NAL unit type."""
    header = bytes([1]) + bytes(21)
    arrays = b""
    for nal in nals:
        arrays += bytes([0x80 | nal_type("hevc", nal)]) + (1).to_bytes(2, "big")
        arrays += len(nal).to_bytes(2, "big") + nal
    return header + bytes([len(nals)]) + arrays


def test_hvcc_extradata_becomes_annexb_parameter_sets() -> None:
    annexb = parameter_sets_annexb("hevc", hvcc(ONVIF_VPS, ONVIF_SPS, ONVIF_PPS))
    assert annexb == b"".join(START_CODE + nal for nal in (ONVIF_VPS, ONVIF_SPS, ONVIF_PPS))
    types = [nal_type("hevc", nal) for nal in split_annexb(annexb)]
    assert types == [H265_VPS, H265_SPS, H265_PPS]


@pytest.mark.parametrize(
    ("sps", "expected"),
    [
        # Main, Main-compatible (flags 1 and 2: "6"), Main tier, level 5.0 (150), progressive
        # source (constraint byte 0x80). The profile_tier_level holds emulation-prevention
        # bytes (00 00 03) that must be removed before reading it.
        (ONVIF_SPS, "hvc1.1.6.L150.80"),
        # Level 5.1 (153); all constraint bytes zero, so none are written.
        (WIDE_SPS, "hvc1.1.6.L153"),
    ],
    ids=["onvif", "5120x1440"],
)
def test_h265_codec_string_from_a_camera_sps(sps: bytes, expected: str) -> None:
    parameter_sets = START_CODE + ONVIF_VPS + START_CODE + sps + START_CODE + ONVIF_PPS
    assert codec_string("hevc", parameter_sets) == expected


def test_no_sps_means_no_codec_string() -> None:
    assert codec_string("h264", START_CODE + CAR_PPS) is None
    assert codec_string("hevc", START_CODE + ONVIF_VPS + START_CODE + ONVIF_PPS) is None


def test_split_annexb_takes_three_and_four_byte_start_codes() -> None:
    stream = START_CODE + CAR_SPS + b"\x00\x00\x01" + CAR_PPS + START_CODE + PERSON_IDR_SLICE
    assert list(split_annexb(stream)) == [CAR_SPS, CAR_PPS, PERSON_IDR_SLICE]
    assert find_nal("h264", stream, H264_PPS) == CAR_PPS
    assert find_nal("h264", stream, 6) is None  # no SEI in it


def test_sdp_only_camera_keyframe_gets_the_parameter_sets_in_front() -> None:
    # A camera that sends SPS/PPS only in the SDP: its IDR arrives bare.
    parameter_sets = parameter_sets_annexb("h264", CAR_AVCC)
    idr = START_CODE + PERSON_IDR_SLICE
    fixed = with_parameter_sets("h264", idr, parameter_sets)
    assert fixed == parameter_sets + idr
    # A keyframe that carries its own SPS is left as the camera sent it.
    assert with_parameter_sets("h264", fixed, parameter_sets) == fixed
    assert with_parameter_sets("h264", idr, b"") == idr


def test_h265_keyframe_with_its_own_sps_is_left_alone() -> None:
    parameter_sets = START_CODE + ONVIF_VPS + START_CODE + ONVIF_SPS + START_CODE + ONVIF_PPS
    idr = START_CODE + bytes([19 << 1, 1]) + b"\xaf\x00"  # IDR_W_RADL NAL header
    assert with_parameter_sets("hevc", idr, parameter_sets) == parameter_sets + idr
    with_sps = parameter_sets + idr
    assert with_parameter_sets("hevc", with_sps, parameter_sets) == with_sps


def test_b_slices_are_told_from_i_and_p_slices() -> None:
    assert h264_slice_is_b(PERSON_B_SLICE)
    assert not h264_slice_is_b(PERSON_P_SLICE)
    assert not h264_slice_is_b(PERSON_IDR_SLICE)
    assert not h264_slice_is_b(CAR_P_SLICE)
    assert not h264_slice_is_b(CAR_SPS)  # not a slice


def test_a_packet_with_a_b_slice_has_b_slices_and_others_do_not() -> None:
    assert packet_has_b_slices("h264", START_CODE + PERSON_B_SLICE)
    assert not packet_has_b_slices("h264", START_CODE + CAR_SPS + START_CODE + PERSON_IDR_SLICE)
    assert not packet_has_b_slices("h264", START_CODE + PERSON_P_SLICE)
    # H.265 slice types need the PPS: media/reorder.py BFrameWatch reads them.
    assert not packet_has_b_slices("hevc", START_CODE + PERSON_B_SLICE)
