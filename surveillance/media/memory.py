"""Giving freed memory back to the system after heavy work ends.

A 2160p mosaic holds pictures of 12 MB (I420), an x264 encoder and decoders per tile. glibc
serves blocks that large with mmap only until the first is freed: its threshold then rises
(up to 32 MB), and later ones come from the heap arenas, where freed memory stays resident
until something asks for it back. Measured with bench/viewer_load.py: ten 2160p mosaics,
eight transcodes and a thousand offers left the process at 685 MB, 500 MB above its
baseline, with nothing running any more. ``malloc_trim(0)`` returns the free pages of every
arena to the system (glibc >= 2.8 releases whole free pages inside an arena too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - glibc only: musl and others have none
    except (OSError, AttributeError):
        return None
    return libc


def give_back_freed_memory() -> None:
    """Return freed heap pages to the system, where the C library can (glibc); blocking
    for a few milliseconds, so call it off the event loop after large work ended."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
