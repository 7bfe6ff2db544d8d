"""Child processes that must not outlive their supervisor."""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the supervising parent dies (Linux), leaving no orphans."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
