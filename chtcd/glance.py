"""The state file at a glance, for `status`: each bundle's own fields and a tally of its jobs, no records built.

`state.read` builds a record per job, every timestamp a float; with 12,000 jobs
that was most of what `chtcd status` took, for a table that needs a count per
phase, the held jobs and the oldest output still to fetch. So this reads the
JSON itself: a number with a fraction stays text until something uses it (the
decoder's conversion of 40,000 timestamps and durations is a quarter of its
time), and importing this module pulls in neither the records' dataclasses nor
`lifecycle`'s actions. The few facts it shares with those modules (stage
names, the schema, a job's phase) are held to theirs by tests/test_status_glance.py.
"""

from __future__ import annotations

import json
import operator
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional, Tuple

from . import journal

if TYPE_CHECKING:
    from .state import BundleRecord, State

SCHEMA_VERSION = 1
STAGES = frozenset({"claimed", "submitting", "submitted", "running", "ready", "delivered", "released", "done"})
PHASES = ("spooling", "idle", "running", "held", "done", "removed")
"""`lifecycle.Phase`'s names in its order: the order of `status --json`'s counts."""

SPOOLING_HOLD_CODE = 16
_PHASE_BY_STATUS = {1: "idle", 2: "running", 3: "removed", 4: "done", 5: "held", 6: "running", 7: "running"}


class Unreadable(Exception):
    """Neither generation of the state file could be read."""


def phase(status: int, gone: bool, hold_code: Optional[int]) -> str:
    """`lifecycle.phase` of a job with these fields."""
    if gone and status != 4:
        return "removed"
    if status == 5 and hold_code == SPOOLING_HOLD_CODE:
        return "spooling"
    return _PHASE_BY_STATUS.get(status, "idle")


class Tally:
    """A bundle's jobs as `status` shows them; bundles whose jobs are alike share one, never changed."""

    __slots__ = ("counts", "held", "oldest_unfetched", "exit_codes")

    def __init__(
        self,
        counts: Dict[str, int],
        held: List[Tuple[int, Optional[int], Optional[str]]],
        oldest_unfetched: Optional[float],
        exit_codes: Dict[Any, int],
    ):
        self.counts = counts
        self.held = held
        """(proc, hold code, reason) of each held job, by proc."""
        self.oldest_unfetched = oldest_unfetched
        """When the first job finished whose outputs are still on the access point."""
        self.exit_codes = exit_codes
        """How many jobs exited with each code but 0."""


_ALIKE: Dict[Tuple[Any, ...], Tally] = {}
"""Tallies by the kinds of jobs counted: the 2,000 bundles of one job each mostly have the same one."""


def tally(jobs: Mapping[str, Mapping[str, Any]]) -> Tally:
    """The tally of a bundle's jobs as the file holds them: by proc, each job's fields but those at their defaults."""
    kinds: Dict[Any, int] = {}
    for job in jobs.values():  # one job in 10,000 is seldom unlike the rest: count the kinds, then look closer
        if "gone" in job or "hold_code" in job or "exit_code" in job or "retrieved" in job:
            kind = (
                job["status"],
                job.get("gone", False),
                job.get("hold_code"),
                job.get("exit_code"),
                job.get("retrieved", False),
            )
        else:  # none of those fields, all at their defaults: most jobs, most of the time
            kind = job["status"]
        kinds[kind] = kinds.get(kind, 0) + 1
    return _of_kinds(
        tuple(kinds.items()),
        lambda: (
            (j["proc"], j.get("hold_code"), j.get("hold_reason"))
            for j in jobs.values()
            if j["status"] == 5 and phase(5, j.get("gone", False), j.get("hold_code")) == "held"
        ),
        lambda: (
            _time(j.get("completed_at"))
            for j in jobs.values()
            if j["status"] == 4 and not j.get("gone") and not j.get("retrieved")
        ),
    )


_KIND = operator.attrgetter("status", "gone", "hold_code", "exit_code", "retrieved")


def tally_of(jobs: Collection[Any]) -> Tally:
    """The tally of a bundle's job records (`state.JobRecord`, read by attribute: this module does not import them)."""
    return _of_kinds(
        tuple(Counter(map(_KIND, jobs)).items()),
        lambda: (
            (j.proc, j.hold_code, j.hold_reason) for j in jobs if j.status == 5 and phase(5, j.gone, j.hold_code) == "held"
        ),
        lambda: (j.completed_at for j in jobs if j.status == 4 and not j.gone and not j.retrieved),
    )


def _of_kinds(
    alike: Tuple[Tuple[Any, int], ...],
    held_jobs: Callable[[], Iterable[Tuple[int, Optional[int], Optional[str]]]],
    unfetched_times: Callable[[], Iterable[Optional[float]]],
) -> Tally:
    """The tally of jobs counted by kind ((status, gone, hold code, exit code, retrieved), or a status alone);
    the held jobs and the finish times of those not fetched are looked up only when there are some."""
    known = _ALIKE.get(alike)
    if known is not None:
        return known
    counts = dict.fromkeys(PHASES, 0)
    exit_codes: Dict[Any, int] = {}
    unfetched = False
    for kind, n in alike:
        status, gone, hold_code, exit_code, retrieved = kind if kind.__class__ is tuple else (kind, False, None, None, False)
        counts[phase(status, gone, hold_code)] += n
        if exit_code not in (None, 0):
            exit_codes[exit_code] = exit_codes.get(exit_code, 0) + n
        unfetched = unfetched or (status == 4 and not gone and not retrieved)
    held = sorted(held_jobs(), key=lambda h: h[0]) if counts["held"] else []
    oldest = min((t for t in unfetched_times() if t), default=None) if unfetched else None
    result = Tally(counts, held, oldest, exit_codes)
    if not held and not unfetched:  # nothing in it that belongs to these jobs alone
        _ALIKE[alike] = result
    return result


def tally_json(found: Tally) -> Dict[str, Any]:
    """A tally as the state's files keep it beside each bundle, so that `status` need not read the jobs."""
    data: Dict[str, Any] = {"counts": {k: n for k, n in found.counts.items() if n}}
    if found.held:
        data["held"] = [list(h) for h in found.held]
    if found.oldest_unfetched is not None:
        data["oldest_unfetched"] = found.oldest_unfetched
    if found.exit_codes:
        data["exit_codes"] = [[code, n] for code, n in found.exit_codes.items()]
    return data


def tally_from_json(data: Mapping[str, Any]) -> Tally:
    counts = dict.fromkeys(PHASES, 0)
    counts.update(data["counts"])
    held = [(h[0], h[1], h[2]) for h in data.get("held", ())]
    return Tally(counts, held, _time(data.get("oldest_unfetched")), {code: n for code, n in data.get("exit_codes", ())})


_LATER_TIMES = ("submitted_at", "finished_at", "delivered_at", "first_error_at", "retry_at", "idle_explained_at")

Bundle = Dict[str, Any]
"""A bundle as the state file holds it, made ready for `status` by `bundle`."""


def bundle(data: Dict[str, Any]) -> Bundle:
    """One bundle of the state file, made ready for `status` in place.

    The timestamps `status` shows become floats, and `jobs` is replaced by their
    `Tally`; ValueError, KeyError or TypeError if `data` is not a bundle.
    """
    if data["stage"] not in STAGES:
        raise ValueError(f"{data['stage']!r} is not a valid Stage")
    if "id" not in data or "name" not in data:
        raise KeyError("a bundle without an id or a name")
    data["claimed_at"] = float(data["claimed_at"])
    for key in _LATER_TIMES:
        value = data.get(key)
        if value is not None:
            data[key] = float(value)
    data["job_fields"] = data.get("jobs") or {}  # as the file holds them, for `status NAME` (sizing); no copy
    stored = data.pop("tally", None)
    data["jobs"] = tally(data["job_fields"]) if stored is None else tally_from_json(stored)
    return data


class Snapshot:
    """The bundles (see `bundle`) in the state file's order, and whether intake is paused."""

    __slots__ = ("paused", "bundles")

    def __init__(self, paused: bool, bundles: List[Bundle]):
        self.paused = paused
        self.bundles = bundles

    @classmethod
    def of(cls, state: "State") -> "Snapshot":
        return cls(state.paused, [of_record(r) for r in state.bundles.values()])


def of_record(record: "BundleRecord") -> Bundle:
    return bundle(record.to_json())


def _time(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _loads(raw: bytes) -> Any:
    return json.loads(raw, parse_float=str)


def _snapshot(data: Dict[str, Any]) -> Snapshot:
    """The state's dict, read as `state.read` would accept it (ValueError, KeyError, TypeError if not)."""
    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise ValueError(f"state schema {schema!r} is not one this chtcd reads ({SCHEMA_VERSION})")
    if "client_id" not in data:
        raise KeyError("client_id")
    return Snapshot(bool(data.get("paused", False)), [bundle(b) for b in data.get("bundles", [])])


def read(state_file: Path, jobs_of: Collection[str] = ()) -> Snapshot:
    """The state as last saved (`journal.read`: the generation before if the last is damaged); never written.

    The jobs themselves are read only for the bundles ``jobs_of`` names or ids (their `job_fields`, for
    `status NAME`); every bundle's tally is kept beside it. Unreadable, naming each generation's
    problem, when a snapshot exists and none reads.
    """
    found, problems = journal.read(
        state_file, _loads, _snapshot, (ValueError, KeyError, TypeError), lambda bundle: bundle.get("name") in jobs_of or bundle.get("id") in jobs_of
    )
    if found is not None:
        return found.value
    if problems:
        raise Unreadable(f"cannot read the state in {state_file.parent} ({'; '.join(problems)})")
    return Snapshot(False, [])
