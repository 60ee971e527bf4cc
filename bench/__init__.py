"""Benchmarks that check the design's performance budget against baselines.

Each benchmark measures the service and a reference point (``ffmpeg -c copy``, a naive
OpenCV reader) on the same streams in the same run, and reports ratios, never absolute
timings alone. Run them as modules, e.g. ``python -m bench.ingest --quick``.
"""
