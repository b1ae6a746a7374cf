"""Switches for fault-injection tests: die with SIGKILL at a named step, or fail one bundle's call.

``CHTCD_CRASH_AT=after-submit`` makes the daemon kill itself right after its
first submit call returns, as a power cut would; ``after-submit:3`` on the
third. ``CHTCD_FAIL=spool:NAME`` makes every spool of the bundle named NAME
fail as the schedd's refusal would, for the faults the real pool cannot be
made to produce on cue. Unset, each costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = tuple(
    f"{when}-{step}"
    for step in ("claim", "save", "submit", "spool", "query", "retrieve", "report", "deliver", "release", "remove")
    for when in ("before", "after")
)

_seen: Counter = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get("CHTCD_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _seen[name] += 1
    if _seen[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


INJECTED = "injected fault (CHTCD_FAIL)"


def failing(step: str, bundle: str) -> bool:
    """Whether ``CHTCD_FAIL`` asks this step of this bundle to fail."""
    wanted = os.environ.get("CHTCD_FAIL")
    return bool(wanted) and wanted == f"{step}:{bundle}"
