"""A switch for fault-injection tests: die with SIGKILL at a named step.

``CHTCD_CRASH_AT=after-submit`` makes the daemon kill itself right after its
first submit call returns, as a power cut would. Unset, this costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = tuple(
    f"{when}-{step}"
    for step in ("claim", "save", "submit", "spool", "query", "retrieve", "report", "deliver", "release", "remove")
    for when in ("before", "after")
)


def crash_point(name: str) -> None:
    if os.environ.get("CHTCD_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
