"""`chtcd status`: what the daemon knows, read from its files alone (no schedd query, no writes).

The state file is read without the store's recovery steps: the running
daemon owns it, and `status` must stay fast with thousands of bundles.
Beside it: the daemon's heartbeat (running? next tick?), the pause flag and
the token's expiry date.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from . import heartbeat, lifecycle, report, tokens
from .heartbeat import Heartbeat
from .layout import Layout
from .state import BundleRecord, Stage, State, StateError, parse

QUERIED = (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING, Stage.DELIVERED, Stage.RELEASED)
"""Stages whose next move waits for the daemon's next tick."""

MAX_HOLDS_SHOWN = 20


def read_state(layout: Layout) -> State:
    """The daemon's state as last saved (or the generation before, if the last is torn); never written."""
    problems = []
    for candidate in (layout.state_file, layout.state_file.with_name(layout.state_file.name + ".prev")):
        try:
            return parse(candidate.read_bytes())
        except FileNotFoundError:
            continue
        except (ValueError, KeyError, TypeError, StateError) as exc:
            problems.append(f"{candidate.name}: {exc}")
    if problems:
        raise StateError(f"cannot read the state in {layout.state_dir} ({'; '.join(problems)})")
    return State(client_id="")


@dataclass(frozen=True)
class Overview:
    """What `status` says beside the bundles."""

    paused: bool
    daemon: Optional[Heartbeat]
    token: Optional[tokens.Expiry]

    @classmethod
    def read(cls, layout: Layout, token_dir: Any, access_point: Optional[str]) -> "Overview":
        token = tokens.token_expiry(token_dir, access_point) if access_point else None
        return cls(layout.pause_flag.exists(), heartbeat.read(layout.heartbeat_file), token)

    def next_tick_in(self, now: float) -> Optional[float]:
        if self.daemon is None or self.daemon.next_tick is None:
            return None
        return max(0.0, self.daemon.next_tick - now)

    def line(self, now: float) -> str:
        if self.daemon is None:
            parts = ["daemon not running (chtcd service install, or chtcd run)"]
        else:
            wait = self.next_tick_in(now)
            parts = [f"daemon running (pid {self.daemon.pid})" + (f", next tick in {_age(wait)}" if wait is not None else "")]
        if self.paused:
            parts.append("intake paused (chtcd resume)")
        if self.token is not None:
            parts.append(self.token.describe(now))
        return "; ".join(parts)

    def warnings(self, now: float) -> List[str]:
        if self.token is None:
            return []
        if self.token.expired(now) or self.token.expiring(now):
            return [f"warning: {self.token.describe(now)}: run chtcd token fetch"]
        return []

    def to_json(self, now: float) -> Dict[str, Any]:
        return {
            "paused": self.paused,
            "daemon": None
            if self.daemon is None
            else {"pid": self.daemon.pid, "next_tick": self.daemon.next_tick, "next_tick_in": self.next_tick_in(now)},
            "token": None
            if self.token is None
            else {"file": str(self.token.path), "expires_at": self.token.expires_at, "warning": bool(self.warnings(now))},
        }


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _holds(record: BundleRecord) -> List[Dict[str, Any]]:
    return [
        {
            "job": f"{record.cluster}.{j.proc}",
            "code": j.hold_code,
            "reason": j.hold_reason,
            "hint": report.hold_hint(j.hold_code, j.hold_reason),
        }
        for j in sorted(record.jobs.values(), key=lambda j: j.proc)
        if j.status == 5 and lifecycle.phase(j) == lifecycle.Phase.HELD
    ]


def bundle_summary(record: BundleRecord, now: float) -> Dict[str, Any]:
    return {
        "name": record.name,
        "id": record.id,
        "stage": record.stage.value,
        "cluster": record.cluster,
        "jobs": lifecycle.counts(record.jobs.values()),
        "holds": _holds(record),
        "age_seconds": round(now - record.claimed_at, 1),
        "outcome": record.outcome,
        "reason": record.reason,
        "inbox_path": record.inbox_path,
        "last_error": record.last_error,
        "outputs_expire_in_seconds": _outputs_expire_in(record, now),
    }


OUTPUT_LIFETIME_SECONDS = 10 * 86400.0
"""HTCondor drops a finished remote job's outputs this long after it completes, retrieved or not."""

EXPIRY_WARNING_SECONDS = 4 * 86400.0


def _outputs_expire_in(record: BundleRecord, now: float) -> Optional[float]:
    """Seconds until the access point drops the oldest finished, not yet retrieved job's outputs."""
    if record.stage != Stage.RUNNING:
        return None
    waiting = [
        j.completed_at
        for j in record.jobs.values()
        if j.completed_at and j.status == 4 and not j.gone and not j.retrieved
    ]
    return round(min(waiting) + OUTPUT_LIFETIME_SECONDS - now, 1) if waiting else None


def _ordered(state: State) -> List[BundleRecord]:
    return sorted(state.bundles.values(), key=lambda r: r.claimed_at)


def summaries(state: State, now: float) -> List[Dict[str, Any]]:
    return [bundle_summary(r, now) for r in _ordered(state)]


def as_json(state: State, now: float, overview: Optional[Overview] = None) -> str:
    data: Dict[str, Any] = {"paused": state.paused, "bundles": summaries(state, now)}
    if overview is not None:
        data.update(overview.to_json(now))
    return json.dumps(data)


def _next(record: BundleRecord, wait: Optional[float]) -> str:
    if record.stage == Stage.CLAIMED:
        return "submit"
    if record.stage == Stage.READY:
        return "deliver"
    if record.stage in QUERIED and wait is not None:
        return _age(wait)
    return "-"


def _note(row: Dict[str, Any]) -> str:
    expires = row["outputs_expire_in_seconds"]
    if expires is not None and expires < EXPIRY_WARNING_SECONDS:
        return (
            f"warning: finished outputs are dropped by the access point in {_age(expires)}; "
            "keep chtcd running so it fetches them"
        )
    if row["holds"]:
        return f"held: {row['holds'][0]['reason']}"
    if row["last_error"]:
        return row["last_error"]
    if row["outcome"] in ("rejected", "partial", "vanished", "lost", "cancelled"):
        return f"{row['outcome']}: {row['reason'] or ''}".rstrip(": ")
    return row["inbox_path"] or ""


def one_line(state: State, now: float, overview: Optional[Overview] = None) -> str:
    """Nothing in flight: what came back lately, and whether the daemon is there to take more."""
    back = [r for r in state.bundles.values() if r.delivered_at is not None]
    if back:
        latest = max(back, key=lambda r: r.delivered_at or 0.0)
        what = (
            f"nothing in flight; {len(back)} came back lately, the last {latest.name} "
            f"({latest.outcome}, {_age(now - (latest.delivered_at or now))} ago)"
        )
    else:
        what = "nothing in flight: drop a folder into the outbox to send one"
    return what + (f"; {overview.line(now)}" if overview is not None else "")


def as_table(state: State, now: float, overview: Optional[Overview] = None) -> str:
    records = _ordered(state)
    if not any(r.stage != Stage.DONE for r in records):
        return one_line(state, now, overview)
    wait = overview.next_tick_in(now) if overview is not None else None
    lines = [overview.line(now)] if overview is not None else []
    lines.append(
        f"{'BUNDLE':<24} {'STAGE':<10} {'IDLE':>5} {'RUN':>5} {'DONE':>5} {'HELD':>5} {'AGE':>6} {'NEXT':>7}  NOTE"
    )
    for record in records:
        row = bundle_summary(record, now)
        j = row["jobs"]
        lines.append(
            f"{record.name[:24]:<24} {row['stage']:<10} {j['idle'] + j['spooling']:>5} {j['running']:>5} "
            f"{j['done']:>5} {j['held']:>5} {_age(row['age_seconds']):>6} {_next(record, wait):>7}  {_note(row)}".rstrip()
        )
    return "\n".join(lines)


def _when(ts: Optional[float], now: float) -> Optional[str]:
    if ts is None:
        return None
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ts))} ({_age(now - ts)} ago)"


def matching(state: State, name: str) -> List[BundleRecord]:
    """Records by folder name or bundle id, newest first."""
    found = [r for r in state.bundles.values() if r.name == name or r.id == name]
    return sorted(found, key=lambda r: r.claimed_at, reverse=True)


def detail(record: BundleRecord, now: float, overview: Optional[Overview] = None) -> str:
    """One bundle in full: every date, the tally, and each held job with its reason and a hint."""
    row = bundle_summary(record, now)
    j = row["jobs"]
    fields = [
        ("bundle", f"{record.name}  (id {record.id})"),
        ("stage", record.stage.value),
        ("submit file", record.submit_file),
        ("cluster", None if record.cluster is None else str(record.cluster)),
        ("jobs", ", ".join(f"{n} {phase}" for phase, n in j.items() if n) or "none yet"),
        ("claimed", _when(record.claimed_at, now)),
        ("submitted", _when(record.submitted_at, now)),
        ("finished", _when(record.finished_at, now)),
        ("delivered", _when(record.delivered_at, now)),
        ("outcome", None if record.outcome is None else f"{record.outcome}" + (f": {record.reason}" if record.reason else "")),
        ("inbox", record.inbox_path),
        ("last error", record.last_error),
    ]
    if overview is not None and record.stage in QUERIED:
        wait = overview.next_tick_in(now)
        fields.append(("next tick", "daemon not running" if wait is None else f"in {_age(wait)}"))
    failed = [jb for jb in record.jobs.values() if jb.exit_code not in (None, 0)]
    if failed:
        codes = sorted({jb.exit_code for jb in failed})
        fields.append(("exit codes", f"{len(failed)} job(s) exited non-zero: {', '.join(map(str, codes))}"))
    lines = [f"{label + ':':<12} {value}" for label, value in fields if value]
    holds = row["holds"]
    for hold in holds[:MAX_HOLDS_SHOWN]:
        lines.append(f"{'held:':<12} job {hold['job']} (code {hold['code']}): {hold['reason']}")
        if hold["hint"]:
            lines.append(f"{'':<12} hint: {hold['hint']}")
    if len(holds) > MAX_HOLDS_SHOWN:
        lines.append(f"{'':<12} ... and {len(holds) - MAX_HOLDS_SHOWN} more held jobs")
    return "\n".join(lines)
