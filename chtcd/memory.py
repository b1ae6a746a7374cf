"""Keeping the daemon small between ticks: memory freed by a tick handed back to the system.

`bench/run.py` (the 100k scenario's "kept" row) measures what it buys: after a
tick that asked for 92,000 jobs, 130 MB resident with it against 162 MB without.
Holding Python's cycle collector off while an answer or the state was read
bought 4 to 8 % of their time, measured the same way, and went.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any


def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_trim = _malloc_trim() if sys.platform.startswith("linux") else None


def give_back_memory() -> None:
    """Hand freed memory back to the system (glibc keeps it otherwise): once, at the end of a tick.

    The ClassAds of a 20,000-job answer take some 30 MB, and a save's file a
    few more; freed, glibc would keep them as the daemon's resident memory
    until the next tick needs them. Trimmed only at the end, what the answer
    freed is first reused by the rest of the tick instead of asked for anew.
    """
    if _trim is not None:
        _trim(0)
