"""`chtcd status`: what the daemon knows, read from the state store alone (no schedd query)."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

from . import lifecycle, report
from .state import BundleRecord, State


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def bundle_summary(record: BundleRecord, now: float) -> Dict[str, Any]:
    holds = [
        {
            "job": f"{record.cluster}.{j.proc}",
            "code": j.hold_code,
            "reason": j.hold_reason,
            "hint": report.hold_hint(j.hold_code, j.hold_reason),
        }
        for j in sorted(record.jobs.values(), key=lambda j: j.proc)
        if lifecycle.phase(j) == lifecycle.Phase.HELD
    ]
    return {
        "name": record.name,
        "id": record.id,
        "stage": record.stage.value,
        "cluster": record.cluster,
        "jobs": lifecycle.counts(record.jobs.values()),
        "holds": holds,
        "age_seconds": round(now - record.claimed_at, 1),
        "outcome": record.outcome,
        "reason": record.reason,
        "inbox_path": record.inbox_path,
        "last_error": record.last_error,
    }


def summaries(state: State, now: float) -> List[Dict[str, Any]]:
    return [bundle_summary(r, now) for r in sorted(state.bundles.values(), key=lambda r: r.claimed_at)]


def as_json(state: State, now: float) -> str:
    return json.dumps({"paused": state.paused, "bundles": summaries(state, now)}, indent=2)


def as_table(state: State, now: float) -> str:
    rows = summaries(state, now)
    if not rows:
        return "chtcd knows no bundles: drop a folder into the outbox to send one."
    in_flight = [r for r in rows if r["stage"] != "done"]
    lines = [f"{'BUNDLE':<24} {'STAGE':<10} {'IDLE':>5} {'RUN':>5} {'DONE':>5} {'HELD':>5} {'AGE':>6}  NOTE"]
    for r in rows:
        j = r["jobs"]
        note = r["reason"] if r["outcome"] in ("rejected", "partial", "vanished", "lost") else (r["inbox_path"] or "")
        if r["holds"]:
            note = f"held: {r['holds'][0]['reason']}"
        lines.append(
            f"{r['name'][:24]:<24} {r['stage']:<10} {j['idle'] + j['spooling']:>5} {j['running']:>5} "
            f"{j['done']:>5} {j['held']:>5} {_age(r['age_seconds']):>6}  {note or ''}"
        )
    if not in_flight:
        lines.append("nothing in flight.")
    return "\n".join(lines)
