"""The state store: every bundle the daemon knows, as plain data in one JSON file.

Saved atomically (temp file, fsync, rename, directory fsync) with the previous
generation kept beside it, so a torn or corrupted file never loses the queue.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import atomic

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

    @property
    def in_flight(self) -> bool:
        return self not in (Stage.CLAIMED, Stage.DONE)


@dataclass
class JobRecord:
    """What the last tick learned about one job; enough for `status` and the report."""

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


@dataclass
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
    last_error: Optional[str] = None
    failures: int = 0
    jobs: Dict[str, JobRecord] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["stage"] = self.stage.value
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "BundleRecord":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["stage"] = Stage(values["stage"])
        job_known = {f.name for f in fields(JobRecord)}
        values["jobs"] = {
            k: JobRecord(**{jk: jv for jk, jv in v.items() if jk in job_known})
            for k, v in data.get("jobs", {}).items()
        }
        return cls(**values)


@dataclass
class State:
    client_id: str
    bundles: Dict[str, BundleRecord] = field(default_factory=dict)
    paused: bool = False

    def in_flight(self) -> List[BundleRecord]:
        return [b for b in self.bundles.values() if b.stage.in_flight]

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
        self._last_saved: Optional[bytes] = None
        self.recovered_from: Optional[str] = None

    def load(self) -> State:
        for candidate in (self.path, self.previous):
            try:
                raw = candidate.read_bytes()
            except FileNotFoundError:
                continue
            try:
                state = State.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError, StateError):
                self.recovered_from = "previous generation"
                continue
            self._last_saved = raw if candidate == self.path else None
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
        data = (json.dumps(state.to_json(), separators=(",", ":"), sort_keys=True) + "\n").encode()
        if data == self._last_saved:
            return False
        if not self.client_id_path.exists():
            atomic.write_bytes(self.client_id_path, (state.client_id + "\n").encode())
        if self.path.exists():
            os.replace(self.path, self.previous)
        atomic.write_bytes(self.path, data)
        self._last_saved = data
        return True
