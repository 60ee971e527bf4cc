"""Segments become the spans a timeline draws: touching ones of a stream merge, streams
stay apart, a real hole stays a hole."""

from __future__ import annotations

from surveillance.services.recordings import Span, merge_spans


def test_touching_segments_of_one_stream_merge_and_holes_stay() -> None:
    pieces = [
        Span(10.0, 12.0, "main"),
        Span(0.0, 2.0, "main"),
        Span(2.0, 4.0, "main"),
        Span(5.4, 8.0, "main"),  # 1.4 s after the last end: touching (a reconnect)
        Span(3.0, 6.0, "sub"),  # another stream is its own span
        Span(6.5, 7.0, "sub"),
    ]
    assert merge_spans(pieces) == [
        Span(0.0, 8.0, "main"),
        Span(3.0, 7.0, "sub"),
        Span(10.0, 12.0, "main"),  # 2 s after 8.0: a hole
    ]
    assert merge_spans([]) == []
