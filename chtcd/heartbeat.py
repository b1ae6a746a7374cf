"""The running daemon's heartbeat: a small file saying who it is and when it looks next.

`status` and `doctor` must not touch the schedd or the daemon's state, yet
should say whether a daemon is running and when its next tick is. The daemon
rewrites this file at every tick (no fsync: losing it costs nothing) and
removes it when it stops; a file left by a killed daemon names a dead pid.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    started: float
    tick_seconds: float
    last_tick: Optional[float] = None
    next_tick: Optional[float] = None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def write(path: Path, beat: Heartbeat) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(beat), f)
    os.replace(tmp, path)


def read(path: Path) -> Optional[Heartbeat]:
    """The heartbeat of a daemon that is running now, else None."""
    try:
        beat = Heartbeat(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return beat if beat.alive() else None


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
