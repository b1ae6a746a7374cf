"""The state store: every bundle the daemon knows, as plain JSON data: a snapshot and a journal (`journal`).

A save appends what changed since the last one as one line, fsynced, so it costs
what changed; when the journal has outgrown a fraction of the snapshot, a save
writes a new snapshot instead (temp file, fsync, rename, directory fsync), the
generation before kept beside it. A crash leaves the state as one save or the
one before it left it, never between.
"""

from __future__ import annotations

import json
import operator
import os
import sys
import time
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import atomic, glance, journal

SCHEMA_VERSION = 1


class Stage(str, Enum):
    """Where a bundle is on its way from outbox to inbox, in order."""

    CLAIMED = "claimed"  # in the work area, not yet sent
    SUBMITTING = "submitting"  # submit call under way: outcome unknown until reconciled
    SUBMITTED = "submitted"  # cluster exists, inputs not yet spooled
    RUNNING = "running"  # spooled; tracked on every tick
    READY = "ready"  # work folder complete (outputs retrieved, or bundle rejected): deliver next
    DELIVERED = "delivered"  # folder is in the inbox; jobs not yet released
    RELEASED = "released"  # release sent; waiting for the schedd to drop the jobs
    DONE = "done"  # nothing left anywhere; kept a while for `status`


_SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}
"""20,000 job records and 2,000 bundle records: without a __dict__ each, a few megabytes less."""


@dataclass(frozen=True, **_SLOTS)
class JobRecord:
    """What the last tick learned about one job; enough for `status` and the report.

    Frozen: a change is a new record (`dataclasses.replace`), so the store finds
    what changed since its last save by identity, without comparing every field of every job.
    """

    proc: int
    status: int
    entered_status_at: Optional[float] = None
    hold_code: Optional[int] = None
    hold_subcode: Optional[int] = None
    hold_reason: Optional[str] = None
    exit_code: Optional[int] = None
    exit_signal: Optional[int] = None
    completed_at: Optional[float] = None
    starts: Optional[int] = None
    wall_seconds: Optional[float] = None
    cpu_seconds: Optional[float] = None
    memory_mb: Optional[int] = None
    disk_kb: Optional[int] = None
    gone: bool = False  # no longer in the schedd's queue
    retrieved: bool = False  # outputs already fetched (early, ahead of the 10-day limit)
    fetch_error: Optional[str] = None  # why its outputs could not be fetched; such a job is never released
    request_memory_mb: Optional[int] = None  # what the job asked for, for `sizing`
    request_disk_kb: Optional[int] = None
    request_cpus: Optional[int] = None


@dataclass(**_SLOTS)
class BundleRecord:
    id: str
    name: str
    stage: Stage
    claimed_at: float
    submit_file: Optional[str] = None
    cluster: Optional[int] = None
    job_count: Optional[int] = None
    submitted_at: Optional[float] = None
    spooled_at: Optional[float] = None
    finished_at: Optional[float] = None
    delivered_at: Optional[float] = None
    released_at: Optional[float] = None
    outcome: Optional[str] = None  # delivered | partial | rejected | vanished
    reason: Optional[str] = None  # why rejected or partial, in the user's words
    inbox_path: Optional[str] = None
    last_error: Optional[str] = None  # the bundle's trouble (see `faults`): its latest error, in the user's words
    failures: int = 0  # attempts that failed since its trouble began
    jobs: Dict[str, JobRecord] = field(default_factory=dict)
    first_error: Optional[str] = None
    first_error_at: Optional[float] = None  # when its trouble began: after fault_grace_seconds it comes back
    retry_at: Optional[float] = None  # not tried again before this
    idle_explained_at: Optional[float] = None  # when chtcd last worked out why jobs were idle (`idle.due`)
    idle: Optional[Dict[str, Any]] = None  # that explanation (`idle.explain`), while jobs are still idle
    notes: List[str] = field(default_factory=list)  # said in the report whatever the outcome (e.g. $ENV names not allowed)

    def to_json(self) -> Dict[str, Any]:
        data = _head_json(self)
        data["jobs"] = {key: _job_json(job) for key, job in self.jobs.items()}
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "BundleRecord":
        values = dict(data)
        values.pop("tally", None)  # what `status` reads instead of the jobs (`glance.tally_json`)
        values["stage"] = _STAGES.get(data["stage"]) or Stage(data["stage"])
        values["jobs"] = {k: _job_from_json(v) for k, v in data.get("jobs", {}).items()}
        try:
            return cls(**values)
        except TypeError:  # a field this chtcd does not know (written by a newer one): leave it out
            return cls(**{k: v for k, v in values.items() if k in _BUNDLE_FIELDS})


_STAGES = {stage.value: stage for stage in Stage}
_BUNDLE_FIELD_NAMES = tuple(f.name for f in fields(BundleRecord))
_BUNDLE_FIELDS = frozenset(_BUNDLE_FIELD_NAMES)
_bundle_values = operator.attrgetter(*_BUNDLE_FIELD_NAMES)
_JOB_FIELD_NAMES = tuple(f.name for f in fields(JobRecord))
_JOB_FIELDS = frozenset(_JOB_FIELD_NAMES)
_job_values = operator.attrgetter(*_JOB_FIELD_NAMES)
_JOB_DEFAULTS = {f.name: f.default for f in fields(JobRecord) if f.default is None or isinstance(f.default, bool)}
_KEEP = object()


def _job_from_json(data: Dict[str, Any]) -> JobRecord:
    try:
        return JobRecord(**data)
    except TypeError:  # a field this chtcd does not know (written by a newer one): leave it out
        return JobRecord(**{k: v for k, v in data.items() if k in _JOB_FIELDS})


def _job_json(job: JobRecord) -> Dict[str, Any]:
    return _job_dict(_job_values(job))


def _job_dict(values: tuple) -> Dict[str, Any]:
    """A job's fields, leaving out those still at their default (None, False): a job is mostly empty.

    Reading fills them back in from the dataclass defaults, so the file's schema is unchanged.
    """
    return {k: v for k, v in zip(_JOB_FIELD_NAMES, values) if _JOB_DEFAULTS.get(k, _KEEP) is not v}


def _head_json(record: BundleRecord) -> Dict[str, Any]:
    data = {k: v for k, v in zip(_BUNDLE_FIELD_NAMES, _bundle_values(record)) if k != "jobs"}
    data["stage"] = record.stage.value
    return data


@dataclass
class State:
    client_id: str
    bundles: Dict[str, BundleRecord] = field(default_factory=dict)
    paused: bool = False

    def to_json(self) -> Dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "client_id": self.client_id,
            "paused": self.paused,
            "bundles": [b.to_json() for b in self.bundles.values()],
        }

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "State":
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise StateError(f"state schema {schema!r} is not one this chtcd reads ({SCHEMA_VERSION})")
        bundles = [BundleRecord.from_json(b) for b in data.get("bundles", [])]
        return cls(
            client_id=data["client_id"],
            bundles={b.id: b for b in bundles},
            paused=bool(data.get("paused", False)),
        )


class StateError(Exception):
    pass


def read(state_file: Path) -> "journal.Found[State]":
    """The state as last saved, for commands that only look (`StateError` naming each problem if none reads)."""
    found, problems = journal.read(state_file, json.loads, State.from_json, READ_ERRORS)
    if found is None:
        if problems:
            raise StateError(f"cannot read the state in {state_file.parent} ({'; '.join(problems)})")
        return journal.Found(State(client_id=""), 0, False, 0, 0, [0, 0])
    return found


READ_ERRORS = (ValueError, KeyError, TypeError, StateError)


def new_client_id() -> str:
    """Stamped on every job this state store submits, so one query finds them all."""
    return os.urandom(8).hex()


JOURNAL_MIN_BYTES = 1 << 20
JOURNAL_SHARE = 8
"""A save writes a new snapshot once the journal is past an eighth of the snapshot (and past 1 MiB):
every reader parses the whole journal (`chtcd status` too, which skips the snapshot's jobs), so it is
kept small beside the snapshot, and a snapshot's cost is spread over at least that eighth's worth of changes."""


@dataclass(**_SLOTS)
class _Saved:
    """A bundle as the last save wrote it: its field values, and its job records (found changed by identity)."""

    head: tuple
    keys: List[str]
    jobs: List[JobRecord]


class Store:
    """Loads and saves the state; a save writes only what changed, and nothing when nothing did.

    The client id also lives in its own small file, so that even if every
    generation of the state is lost, the jobs this store submitted can still
    be found on the schedd.
    """

    def __init__(self, path: Path):
        self.path = path
        self.files = journal.files(path)
        self.previous = self.files.previous
        self.client_id_path = path.with_name("client-id")
        self.recovered_from: Optional[str] = None
        self._saved: Dict[str, _Saved] = {}
        self._paused: Optional[bool] = None
        self._generation = 0
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self._snapshot_due = True  # no snapshot yet, or one that must be written again before any line follows it

    def load(self) -> State:
        """The state as last saved; a save cut short is cut off its journal, so that the next line follows a whole one.

        Only the daemon, holding its lock, loads through a Store: it is the files' one writer.
        """
        found, problems = journal.read(self.path, json.loads, State.from_json, READ_ERRORS)
        journals = (self.files.journal_before, self.files.journal)
        if found is None:
            if problems or any(path.exists() for path in journals):  # no snapshot a journal could follow
                stamp = str(int(time.time()))
                for broken in self.files:
                    if broken.exists():
                        os.replace(broken, broken.with_name(f"{broken.name}.corrupt-{stamp}"))
            if problems:
                self.recovered_from = "nothing: both generations were unreadable and were kept aside"
            return State(client_id=self._client_id())
        for path, whole in zip(journals, found.journal_whole):
            if path.exists() and path.stat().st_size > whole:
                os.truncate(path, whole)
        self.recovered_from = "previous generation" if problems else None  # (none: a crash between a snapshot's renames)
        self._generation, self._snapshot_bytes, self._journal_bytes = found.generation, found.snapshot_bytes, found.journal_whole[1]
        # A snapshot is written before any line when state.json did not read, when one was cut short after its
        # journal moved aside (the lines read are in the `.prev` journal), or when it predates the journal.
        self._snapshot_due = found.previous or (found.replayed > 0 and self._journal_bytes == 0) or found.generation == 0
        self._remember(found.value, found.value.bundles.values())
        return found.value

    def _client_id(self) -> str:
        try:
            existing = self.client_id_path.read_text().strip()
        except FileNotFoundError:
            existing = ""
        if existing:
            return existing
        client_id = new_client_id()
        atomic.write_bytes(self.client_id_path, (client_id + "\n").encode())
        return client_id

    def save(self, state: State) -> bool:
        """Write what changed since the last save (or load); False, writing nothing, when nothing did."""
        touched = [r for r in state.bundles.values() if _touched(r, self._saved.get(r.id))]
        entries = [_entry(r, self._saved.get(r.id)) for r in touched]
        changed = [entry for entry in entries if entry is not None]
        forgotten = [key for key in self._saved if key not in state.bundles]
        if not changed and not forgotten and state.paused == self._paused and not self._snapshot_due:
            self._remember(state, touched)  # new records, equal to the saved ones
            return False
        if not self.client_id_path.exists():
            atomic.write_bytes(self.client_id_path, (state.client_id + "\n").encode())
        if self._snapshot_due or self._journal_bytes > max(JOURNAL_MIN_BYTES, self._snapshot_bytes // JOURNAL_SHARE):
            self.write_snapshot(state)
            return True
        self._append(_line(self._generation, state.paused, changed, forgotten))
        for key in forgotten:
            del self._saved[key]
        self._remember(state, touched)
        return True

    def _remember(self, state: State, records: Any) -> None:
        self._paused = state.paused
        for record in records:
            self._saved[record.id] = _Saved(_bundle_values(record), list(record.jobs), list(record.jobs.values()))

    def _append(self, line: bytes) -> None:
        """One save's line, fsynced; a line cut short by a failure is cut off again, or else a snapshot comes next."""
        fd = os.open(self.files.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except BaseException:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    self._snapshot_due = True
                raise
        finally:
            os.close(fd)
        if size == 0:
            atomic.fsync_dir(self.files.journal.parent)
        self._journal_bytes = size + len(line)

    def write_snapshot(self, state: State) -> None:
        """The whole state as the next generation; the one before kept, with its journal, as `.prev`.

        Written aside first; the journal moves aside before the snapshot lands, so that a crash at any
        point leaves a snapshot with every line of its generation (`journal.replay`); until one lands,
        every save tries again (`_snapshot_due`) and no line is appended.
        """
        generation = self._generation + 1
        self._snapshot_due = True
        top = journal.dumps({"schema": SCHEMA_VERSION, "generation": generation, "client_id": state.client_id, "paused": state.paused})
        aside, size = atomic.write_aside(self.path, _snapshot_parts(top, state))
        try:
            for current, before in ((self.files.journal, self.files.journal_before), (self.path, self.previous)):
                if current.exists():
                    os.replace(current, before)
            os.replace(aside, self.path)
        except BaseException:
            atomic.discard(aside)
            raise
        atomic.fsync_dir(self.path.parent)
        self._generation, self._snapshot_bytes, self._journal_bytes = generation, size, 0
        self._snapshot_due = False
        self._saved.clear()
        self._remember(state, state.bundles.values())


def _snapshot_parts(top: str, state: State) -> Any:
    """The snapshot's lines (`journal.snapshot`) a bundle at a time: a bundle of 20,000 jobs is a few megabytes,
    the state is 20 times that."""
    yield top.encode() + b"\n"
    for record in state.bundles.values():
        head = _head_json(record)
        head["tally"] = _tally(record)
        yield b'{"bundle":' + journal.dumps(head).encode() + b"}\n"
        if record.jobs:
            jobs = journal.dumps({key: _job_json(job) for key, job in record.jobs.items()})
            yield journal.JOBS_LINE + journal.dumps(record.id).encode() + b',"jobs":' + jobs.encode() + b"}\n"


def _tally(record: BundleRecord) -> Dict[str, Any]:
    return glance.tally_json(glance.tally_of(record.jobs.values()))


def _touched(record: BundleRecord, saved: Optional[_Saved]) -> bool:
    """Whether a bundle may differ from its last save: its fields compared, its jobs by identity (frozen records)."""
    if saved is None or saved.head != _bundle_values(record) or len(saved.jobs) != len(record.jobs):
        return True  # (the head's `jobs` is the same dict object when it was not replaced: equal at once)
    return not all(map(operator.is_, record.jobs.values(), saved.jobs))


def _entry(record: BundleRecord, saved: Optional[_Saved]) -> Optional[Dict[str, Any]]:
    """A touched bundle for the journal: whole when its jobs were added or removed, else its fields and the jobs
    that changed; None when its new records are equal to the saved ones."""
    if saved is None or list(record.jobs) != saved.keys:
        entry = record.to_json()
        entry["tally"] = _tally(record)
        return entry
    changed = {
        key: _job_json(job)
        for key, job, old in zip(saved.keys, record.jobs.values(), saved.jobs)
        if job is not old and job != old
    }
    if not changed and saved.head == _bundle_values(record):
        return None
    entry = _head_json(record)
    entry["tally"] = _tally(record)
    entry["changed_jobs"] = changed
    return entry


def _line(generation: int, paused: bool, bundles: List[Dict[str, Any]], forgotten: List[str]) -> bytes:
    entry: Dict[str, Any] = {"generation": generation, "paused": paused, "bundles": bundles}
    if forgotten:
        entry["forget"] = forgotten
    return (journal.dumps(entry) + "\n").encode()
