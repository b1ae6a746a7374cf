"""The state store: every bundle the daemon knows, as plain data in one JSON file.

Saved atomically (temp file, fsync, rename, directory fsync) with the previous
generation kept beside it, so a torn or corrupted file never loses the queue.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import sys
import time
from array import array
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import atomic, memory

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


def parse(raw: bytes) -> State:
    """A state file's bytes as a State (StateError, ValueError, KeyError or TypeError if it is not one).

    With 20,000 jobs this builds some 100,000 objects; Python's cycle collector,
    left on, would walk all of them again and again meanwhile, doubling the time.
    """
    with memory.no_cycle_collection():
        return State.from_json(json.loads(raw))


def new_client_id() -> str:
    """Stamped on every job this state store submits, so one query finds them all."""
    return os.urandom(8).hex()


class Store:
    """Loads and saves the state file; saves only when the content changed.

    The client id also lives in its own small file, so that even if both
    generations of the state are lost, the jobs this store submitted can
    still be found on the schedd.
    """

    def __init__(self, path: Path):
        self.path = path
        self.previous = path.with_name(path.name + ".prev")
        self.client_id_path = path.with_name("client-id")
        self._last_digest: Optional[bytes] = None  # of the file as read, until the first save
        self._encoder = _Encoder()
        self.recovered_from: Optional[str] = None

    def load(self) -> State:
        for candidate in (self.path, self.previous):
            try:
                raw = candidate.read_bytes()
            except FileNotFoundError:
                continue
            try:
                state = parse(raw)
            except (ValueError, KeyError, TypeError, StateError):
                self.recovered_from = "previous generation"
                continue
            self._last_digest = _digest(raw) if candidate == self.path else None
            if candidate != self.path:
                self.recovered_from = "previous generation"
            else:
                self.recovered_from = None
            return state
        if self.path.exists() or self.previous.exists():
            stamp = str(int(time.time()))
            for broken in (self.path, self.previous):
                if broken.exists():
                    os.replace(broken, broken.with_name(f"{broken.name}.corrupt-{stamp}"))
            self.recovered_from = "nothing: both generations were unreadable and were kept aside"
        return State(client_id=self._client_id())

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
        data = self._encoder.encode(state)
        if data is None:  # not a field changed since the last save
            return False
        if self._last_digest is not None:  # the first save after loading: maybe the very file on disk
            if _digest(data) == self._last_digest:
                return False
        try:
            if not self.client_id_path.exists():
                atomic.write_bytes(self.client_id_path, (state.client_id + "\n").encode())
            if self.path.exists():
                os.replace(self.path, self.previous)
            atomic.write_bytes(self.path, data)
        except BaseException:
            self._encoder = _Encoder()  # it has moved on to content that never reached the disk
            raise
        self._last_digest = None  # from now on the encoder knows whether anything changed
        return True


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _digest(data: bytes) -> bytes:
    import hashlib  # here, not at the top: `chtcd status` reads the state without ever needing it

    return hashlib.blake2b(data, digest_size=16).digest()


class _Encoder:
    """`State.to_json` as bytes, reusing the text of every job and bundle head that did not change.

    Job records are frozen, so a job that changed is a new object: a save
    finds them by identity (one pointer comparison a job), not by comparing
    every field, and when nothing changed at all, `encode` says so (None)
    without building the file. Each bundle's jobs are kept as the bytes they
    make in the file, with each job's length in them, and a changed job is
    spliced in: one object per bundle, not one per job; the file is one join
    of those, made once.
    """

    def __init__(self) -> None:
        self._bundles: Dict[str, _Encoded] = {}
        self._order: List[str] = []
        self._top = ""

    def encode(self, state: State) -> Optional[bytes]:
        cache, fresh = self._bundles, {}
        changed = False
        for record in state.bundles.values():
            old = cache.get(record.id)
            encoded = fresh[record.id] = _encode_bundle(record, old)
            changed = changed or encoded is not old
        self._bundles = fresh
        order = list(fresh)
        top = _dumps({"schema": SCHEMA_VERSION, "client_id": state.client_id, "paused": state.paused})
        if not changed and order == self._order and top == self._top:
            return None
        self._order, self._top = order, top
        parts = [top[:-1].encode() + b',"bundles":[']
        for n, e in enumerate(fresh.values()):
            parts += (b"," if n else b"", e.head[:-1], b',"jobs":{', e.jobs, b"}}")
        parts.append(b"]}\n")
        return b"".join(parts)


@dataclass(**_SLOTS)
class _Encoded:
    head_values: tuple
    head: bytes
    keys: List[str]
    objs: List[JobRecord]  # the job records as of this encoding: a job whose record is another object changed
    jobs: bytes  # every job's `"key":{...}`, comma-separated, as in the file (ASCII: a character is a byte)
    sizes: "array[int]"  # each job's length in `jobs`


def _job_text(key: str, job: JobRecord) -> bytes:
    return (_dumps(key) + ":" + _dumps(_job_json(job))).encode()


def _encode_bundle(record: BundleRecord, cached: Optional[_Encoded]) -> _Encoded:
    """The bundle's cached encoding itself when nothing in it changed, else a new one reusing what it can."""
    head_values = _bundle_values(record)  # `jobs` too: the same dict object compares equal at once
    if cached is not None and cached.head_values == head_values and all(map(operator.is_, record.jobs.values(), cached.objs)):
        if len(cached.objs) == len(record.jobs):
            return cached  # (the same dict object with the same records in it: nothing to look at)
    keys = list(record.jobs)
    objs = list(record.jobs.values())
    if cached is None or keys != cached.keys:
        jobs, sizes = _rebuild(cached, keys, objs)
    elif any(map(operator.is_not, objs, cached.objs)):
        jobs, sizes = _splice(cached, keys, objs)
    elif cached.head_values == head_values:
        return cached
    else:
        return _Encoded(head_values, _dumps(_head_json(record)).encode(), cached.keys, cached.objs, cached.jobs, cached.sizes)
    head = cached.head if cached is not None and cached.head_values == head_values else _dumps(_head_json(record)).encode()
    return _Encoded(head_values, head, keys, objs, jobs, sizes)


def _splice(cached: _Encoded, keys: List[str], objs: List[JobRecord]) -> Tuple[bytes, "array[int]"]:
    """The same jobs as last time, some changed: their new texts between slices of the old text."""
    ends = list(itertools.accumulate(cached.sizes))
    sizes = array("I", cached.sizes)
    old = memoryview(cached.jobs)
    pieces: List[Any] = []
    at = 0
    for i in itertools.compress(itertools.count(), map(operator.is_not, objs, cached.objs)):
        start = (ends[i - 1] if i else 0) + i  # a comma after each job before it
        text = _job_text(keys[i], objs[i])
        pieces += (old[at:start], text)
        at = start + sizes[i]
        sizes[i] = len(text)
    pieces.append(old[at:])
    return b"".join(pieces), sizes


def _rebuild(cached: Optional[_Encoded], keys: List[str], objs: List[JobRecord]) -> Tuple[bytes, "array[int]"]:
    """Jobs added or removed (a new bundle, a resubmission): each job's text anew unless its key and record are as last time."""
    known: Dict[str, Tuple[JobRecord, bytes]] = {}
    if cached is not None:
        at = 0
        for key, old, size in zip(cached.keys, cached.objs, cached.sizes):
            known[key] = (old, cached.jobs[at : at + size])
            at += size + 1
    texts = []
    for key, job in zip(keys, objs):
        hit = known.get(key)
        texts.append(hit[1] if hit is not None and hit[0] is job else _job_text(key, job))
    return b",".join(texts), array("I", map(len, texts))
