"""`chtcd logs [-f]`: the daemon's JSON-lines log, one readable line per event.

Reads the rotated generations too, oldest first, so the last lines are there
right after a rotation; following survives rotation by reopening the file
when it is replaced or shrinks.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Callable, Deque, Iterable, List, Mapping, Optional

SKIP = ("event", "level", "timestamp", "logger")
FOLLOW_POLL_SECONDS = 0.5


def readable(line: str) -> str:
    """``2025-01-01 12:00:00 warning  job held  bundle=x reason="..."`` from one JSON line."""
    try:
        event = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if not isinstance(event, dict):
        return line.rstrip("\n")
    return line_of(event)


def line_of(event: Mapping[str, Any]) -> str:
    """One event as a readable line: what `chtcd logs` shows, and what the daemon writes to stderr."""
    stamp = str(event.get("timestamp", "")).replace("T", " ")[:19]
    level = str(event.get("level", ""))
    extras = []
    for key, value in event.items():
        if key in SKIP or value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if key == "exception":
            extras.append("\n" + text)
            continue
        if " " in text or not text:
            text = json.dumps(text)
        extras.append(f"{key}={text}")
    return f"{stamp} {level:<8} {event.get('event', '')}  {' '.join(extras)}".rstrip()


def generations(log_file: Path) -> List[Path]:
    """chtcd.log.3 ... chtcd.log.1, chtcd.log: oldest first."""
    rotated = sorted(
        (p for p in log_file.parent.glob(log_file.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*rotated, log_file]


def last_lines(log_file: Path, count: int) -> List[str]:
    tail: Deque[str] = deque(maxlen=count)
    for path in generations(log_file):
        try:
            with open(path, errors="replace") as f:
                tail.extend(f)
        except FileNotFoundError:
            continue
    return list(tail)


def show(log_file: Path, count: int, out: Callable[[str], None] = print) -> None:
    for line in last_lines(log_file, count):
        if line.strip():
            out(readable(line))


def follow(log_file: Path, out: Callable[[str], None] = print, stop: Optional[Callable[[], bool]] = None) -> None:
    """Print lines as they are written, like ``tail -F``: after a rotation, the new file from its start."""
    handle = None
    inode = None
    from_start = False
    while stop is None or not stop():
        if handle is None:
            try:
                handle = open(log_file, errors="replace")
            except FileNotFoundError:
                from_start = True
                time.sleep(FOLLOW_POLL_SECONDS)
                continue
            inode = os.fstat(handle.fileno()).st_ino
            if not from_start:
                handle.seek(0, os.SEEK_END)
        for line in _complete_lines(handle):
            out(readable(line))
        try:
            st: Optional[os.stat_result] = os.stat(log_file)
        except FileNotFoundError:
            st = None
        if st is None or st.st_ino != inode or st.st_size < handle.tell():
            for line in _complete_lines(handle):
                out(readable(line))
            handle.close()
            handle, from_start = None, True
            continue
        time.sleep(FOLLOW_POLL_SECONDS)


def _complete_lines(handle: IO[str]) -> Iterable[str]:
    while True:
        position = handle.tell()
        line = handle.readline()
        if not line:
            return
        if not line.endswith("\n"):
            handle.seek(position)
            return
        if line.strip():
            yield line
