"""The state's files, and reading them: a snapshot, and a journal of what each save changed since.

A save appends one JSON line to the journal (the bundles it changed, each with
only its changed jobs, and the ids of those forgotten), so its cost follows the
change, not the queue. Now and then the store writes the whole state as a new
snapshot, one generation on, and the journal starts again. The files, beside
`state.json`:

- `state.json`: the snapshot, and its `generation` (0 when missing: a file
  written before the journal existed);
- `state.journal`: one line a save, each naming the generation it follows;
- `state.json.prev` and `state.journal.prev`: the generation before, with its
  journal, in case `state.json` is ever damaged.

Reading takes the newest snapshot that reads and replays, in order, the lines
of its generation (the others are skipped unread), each journal up to its
first line that is not whole (a save cut short by a crash: the state is then
as the save before it left it). Lines of another generation are ones a later snapshot already holds, or
ones written before a snapshot that never landed.

This module is only plain dicts and bytes: `chtcd status` reads through it
without the daemon's records (see `glance`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Generic, List, NamedTuple, Optional, Tuple, Type, TypeVar

T = TypeVar("T")
Loads = Callable[[bytes], Any]


class Files(NamedTuple):
    snapshot: Path
    previous: Path
    journal: Path
    journal_before: Path


def files(state_file: Path) -> Files:
    journal = state_file.with_name(state_file.stem + ".journal")
    return Files(state_file, state_file.with_name(state_file.name + ".prev"), journal, journal.with_name(journal.name + ".prev"))


GENERATION_LINE = b'{"generation":'
"""How every journal line begins (`state._line` writes the generation first): a line of another generation is
skipped unread, so the journal kept beside the last snapshot costs a reader nothing but a scan for newlines."""


def entries(raw: bytes, loads: Loads, generation: int) -> Tuple[List[Dict[str, Any]], int]:
    """A journal's whole lines of ``generation`` as dicts, up to the first line that is not whole;
    and the length in bytes of the whole lines (of any generation) before that one."""
    ours = GENERATION_LINE + str(generation).encode() + b","
    found: List[Dict[str, Any]] = []
    at = 0
    while True:
        end = raw.find(b"\n", at)
        if end < 0:
            return found, at  # what follows the last newline was cut short
        if raw.startswith(GENERATION_LINE, at) and not raw.startswith(ours, at):
            at = end + 1  # another generation's: one a later snapshot holds, or written before one that never landed
            continue
        try:
            entry = loads(raw[at:end])
        except ValueError:
            return found, at
        if not isinstance(entry, dict) or entry.get("generation") != generation:
            return found, at
        found.append(entry)
        at = end + 1


def replay(data: Dict[str, Any], journals: List[bytes], loads: Loads) -> Tuple[Dict[str, Any], int, List[int]]:
    """The snapshot `data` with its generation's journal lines applied in order (in place); how many were; and
    for each journal, the length of its whole lines (shorter than the journal when its last save was cut short).

    Each journal counts up to its first line that is not whole (a save cut short by a crash: the state
    is as the save before it left it); a line naming a bundle the state lacks ends that journal too.
    At most one journal holds lines of a snapshot's generation: `state.journal.prev` only while a new
    snapshot is being written, and then the store appends nothing until it lands.
    """
    generation = data.get("generation", 0)
    bundles = {b["id"]: b for b in data.get("bundles", [])}  # a repeated id: the last one, as the daemon sees it
    paused = data.get("paused", False)
    applied = 0
    whole = []
    for raw in journals:
        found, good = entries(raw, loads, generation)
        whole.append(good)
        for entry in found:
            if not _apply(entry, bundles):
                break
            paused = entry.get("paused", paused)
            applied += 1
    data["bundles"] = list(bundles.values())
    data["paused"] = paused
    return data, applied, whole


def _apply(entry: Dict[str, Any], bundles: Dict[str, Dict[str, Any]]) -> bool:
    for bundle in entry.get("bundles", ()):
        changed = bundle.pop("changed_jobs", None)
        if changed is not None:  # the bundle's head, and only its jobs that changed
            known = bundles.get(bundle["id"])
            if known is None:
                return False
            bundle["jobs"] = known["jobs"]
            bundle["jobs"].update(changed)
        bundles[bundle["id"]] = bundle
    for key in entry.get("forget", ()):
        bundles.pop(key, None)
    return True


@dataclass
class Found(Generic[T]):
    value: T
    generation: int
    previous: bool  # read from the generation before: state.json did not read
    replayed: int  # journal lines applied
    snapshot_bytes: int
    journal_whole: List[int]  # per journal (`.prev`, then the current one), the length of its whole lines


JOBS_LINE = b'{"jobs_of":'
"""How the line of a bundle's jobs begins in a snapshot: a reader that does not want them skips it unread."""


def snapshot(raw: bytes, loads: Loads, jobs: Callable[[Dict[str, Any]], bool]) -> Dict[str, Any]:
    """A snapshot's bytes as one dict: its first line, with `bundles`, each with its `jobs` if ``jobs(bundle)`` says so.

    A snapshot is JSON lines: the state's own fields; then each bundle's fields (with `tally`, what
    `status` shows of its jobs), each followed by the line of its jobs if it has any. `status` reads the
    first kind only, a few kilobytes however many jobs there are. A snapshot of one line, as written
    before the journal, holds everything in that line.
    """
    end = _line_end(raw, 0)
    data = loads(raw[:end])
    if not isinstance(data, dict):
        raise TypeError("the state is not a JSON object")
    if "bundles" in data:
        return data
    bundles: List[Dict[str, Any]] = []
    wanted = False
    at = end + 1
    while at < len(raw):  # line by line, without copying the jobs' lines that are not wanted
        end = _line_end(raw, at)
        if raw.startswith(JOBS_LINE, at):
            if wanted:
                found = loads(raw[at:end])
                if found["jobs_of"] != bundles[-1]["id"]:
                    raise ValueError(f"the jobs of {found['jobs_of']!r} follow the bundle {bundles[-1]['id']!r}")
                bundles[-1]["jobs"] = found["jobs"]
            wanted = False
        elif end > at:
            bundle = loads(raw[at:end])["bundle"]
            bundle.setdefault("jobs", {})
            bundles.append(bundle)
            wanted = jobs(bundle)
        at = end + 1
    data["bundles"] = bundles
    return data


def _line_end(raw: bytes, at: int) -> int:
    end = raw.find(b"\n", at)
    return len(raw) if end < 0 else end


def read(
    state_file: Path,
    loads: Loads,
    convert: Callable[[Dict[str, Any]], T],
    errors: Tuple[Type[Exception], ...],
    jobs: Callable[[Dict[str, Any]], bool] = lambda bundle: True,
) -> Tuple[Optional[Found[T]], List[str]]:
    """The state as last saved, made by `convert` from its dict; None when no snapshot exists or none reads.
    Beside it, each snapshot's problem (`errors` raised while reading it), naming the file. Only the
    bundles ``jobs`` picks (every one, unless told) have their jobs read: the others' `jobs` are empty."""
    paths = files(state_file)
    journals = [_bytes(paths.journal_before), _bytes(paths.journal)]
    problems = []
    for candidate in (paths.snapshot, paths.previous):
        try:
            raw = candidate.read_bytes()
        except FileNotFoundError:
            continue
        try:
            data = snapshot(raw, loads, jobs)
            generation = data.get("generation", 0)
            data, replayed, whole = replay(data, journals, loads)
            value = convert(data)
        except errors as exc:
            problems.append(f"{candidate.name}: {exc}")
            continue
        return Found(value, generation, candidate == paths.previous, replayed, len(raw), whole), problems
    return None, problems


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


dumps = json.JSONEncoder(separators=(",", ":")).encode
