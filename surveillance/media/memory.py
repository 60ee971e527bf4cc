"""Giving freed memory back to the system after heavy work ends.

A 2160p mosaic holds pictures of 12 MB (I420), an x264 encoder and a decoder per tile, each
in its own thread. glibc serves blocks that large with mmap only until the first is freed
(its threshold then rises, up to 32 MB) and gives each thread that contends for the heap an
arena of its own (up to 8 per core); freed memory stays resident in those arenas. Measured
(bench/viewer_load.py, and four 2160p mosaics of 720p cameras in one process): the process
stayed 170-500 MB above its baseline with nothing running any more. Two measures bring it
back to within a few MB of the baseline, and each alone does not:

- :func:`limit_malloc_arenas` at start: with 4 arenas, 70 MB stayed; with 2, 3 MB;
- :func:`give_back_freed_memory` a few seconds after mosaics or transcoders stopped: a
  full cycle collection first (a stopped renderer's pictures and its viewers' last frames
  are held in reference cycles, e.g. by a cancelled stream's traceback, which an idle
  process's collector may not look at for a long time: trimming alone freed nothing), then
  ``malloc_trim(0)``: without both, 290 MB stayed even with 2 arenas.

Both are glibc's; elsewhere (musl) they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
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


MALLOC_ARENAS = 2  # see above; the decoders' frame buffers come from FFmpeg's own pools
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas for the whole process; call once at start, before the
    worker threads (arenas made already stay)."""
    libc = _libc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, count):
        log.warning("could not limit malloc arenas to %d", count)


def give_back_freed_memory() -> None:
    """Free what only the cycle collector can, and return freed heap pages to the system
    where the C library can (glibc). Holds the GIL for a full collection (tens of ms):
    call it when large work has ended, not per request."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
