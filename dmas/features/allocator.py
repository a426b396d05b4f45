"""Keep a process's freed memory for its next artifact instead of handing it back to the OS.

glibc's malloc adapts its mmap and trim thresholds to what the process allocated before. A worker
that sits at the low thresholds (its start-up state, or one it fell back into) maps every large
array fresh and unmaps it on free, so each artifact page-faults its buffers in again. Measured at
upload sizes (1600x1200 JPEG, 15 s 44.1 kHz clip) on one core: 31.9 ms per image and 30.9 ms per
audio clip at the low thresholds against 17.1 and 11.4 ms pinned, and which state a Ray worker is
in varied from run to run. Pinning the thresholds makes extraction cost the same in every process.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# Arrays below this come from the heap and are reused (32 MiB is the most glibc accepts everywhere);
# an upload-size image or clip stays well under it, a 40-megapixel photo is still mapped on its own.
MMAP_THRESHOLD_BYTES = 32 * 1024**2
# Free memory at the top of the heap beyond this goes back to the OS: what a worker holds at most.
TRIM_THRESHOLD_BYTES = 64 * 1024**2


@functools.cache
def keep_freed_memory() -> bool:
    """Pin glibc's malloc thresholds in this process, once; False (and nothing changed) elsewhere."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    pinned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                  and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    if not pinned:
        log.warning("glibc refused the malloc thresholds; extraction may page-fault its buffers per artifact")
    return pinned
