"""Keeping the daemon small between ticks: when Python's cycle collector stays off, and memory handed back.

Measured in `bench/run.py` (memory between ticks and at peak); the door and
the state store use these around the moments that build many objects at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
from typing import Any, Iterator


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Hold Python's cycle collector off while an answer of thousands of ClassAds is alive.

    They die by reference count as soon as they are converted; collected
    meanwhile, they would be promoted to the oldest generation and trigger
    a full collection over every object of the state nearly every tick.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
