"""Keeping a long fetch's memory flat: glibc's malloc otherwise keeps the peak of big buffers.

After a large block is freed, glibc raises its mmap threshold, so later big buffers (message bodies of
hundreds of KB) come from the heap, which fragments and is rarely given back: the RSS of a worker
replicating a large folder creeps up batch after batch. A fixed threshold keeps big buffers in mmap,
returned to the system when freed.
"""

from __future__ import annotations

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 128 * 1024


def fix_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold (once per process); False where there is no glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
