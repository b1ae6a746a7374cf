"""What to ask for next time: requested against used memory, disk and CPUs, and the `request_*` line to write.

Pure: it reads jobs as mappings of `JobRecord`'s field names (a record's
fields, or a job as the state file holds it, numbers maybe as text) and
returns plain data for the report and `chtcd status NAME`.

CHTC's guidance on sizing: request what test jobs actually used, with a
margin, not the most a machine has; an oversized request waits longer for a
slot and leaves fewer jobs running at once, an undersized memory or disk
request gets the job held. So a suggestion is the largest use plus
`MARGIN`, rounded up, offered when the request is far above it, or raised
when jobs were held for exceeding what they asked for.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Dict, Iterable, List, Mapping, Optional

MARGIN = 1.25
"""Suggested request = largest use x this: a quarter more than the hungriest job needed."""

FAR_ABOVE = 2.0
"""A request is "far above" use when it is at least this many times the suggestion..."""

MIN_SAVING = {"memory": 1024.0, "disk": 1024.0 * 1024, "cpus": 1.0}
"""...and asks for at least this much more (MB, KB, CPUs): small requests are not worth a line."""

MEMORY_HOLD_CODE = 34
"""HoldReasonCode JobOutOfResources: the job used more than it requested (memory, unless the reason says disk)."""

_RESOURCES = (
    # name, submit command, requested field, used field
    ("memory", "request_memory", "request_memory_mb", "memory_mb"),
    ("disk", "request_disk", "request_disk_kb", "disk_kb"),
    ("cpus", "request_cpus", "request_cpus", None),  # used: cpu_seconds / wall_seconds
)


def _num(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cpus_used(job: Mapping[str, Any]) -> Optional[float]:
    cpu, wall = _num(job.get("cpu_seconds")), _num(job.get("wall_seconds"))
    if cpu is None or not wall:
        return None
    return cpu / wall


def _exceeded(job: Mapping[str, Any]) -> Optional[str]:
    """Which resource a held job went over, from its hold code and reason; None if it was held for something else."""
    if job.get("status") != 5:
        return None
    code, reason = job.get("hold_code"), (job.get("hold_reason") or "").lower()
    over = any(word in reason for word in ("exceed", "more than", "usage"))
    if "disk" in reason and (over or code == MEMORY_HOLD_CODE):
        return "disk"
    if code == MEMORY_HOLD_CODE or ("memory" in reason and over):
        return "memory"
    return None


def _spread(values: List[float]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    return {"max": _plain(max(values)), "median": _plain(statistics.median(values))}


def _plain(value: float) -> float:
    """1024 rather than 1024.0 in the report; CPUs to two decimals."""
    return int(value) if float(value).is_integer() else round(value, 2)


def _round_up(resource: str, value: float) -> float:
    """A request a person would write: MB in steps of 128 below 1 GB, then whole GB; whole CPUs."""
    if resource == "cpus":
        return float(max(1, math.ceil(value - 0.05)))  # 1.02 CPUs used is one CPU busy, not two
    mb = value if resource == "memory" else value / 1024
    mb = max(128, math.ceil(mb / 128) * 128) if mb <= 1024 else math.ceil(mb / 1024) * 1024
    return float(mb) if resource == "memory" else float(mb * 1024)


def _written(resource: str, value: float) -> str:
    if resource == "cpus":
        return str(int(value))
    mb = value if resource == "memory" else value / 1024
    return f"{int(mb // 1024)}GB" if mb % 1024 == 0 else f"{int(mb)}MB"


def shown(resource: str, value: Optional[float]) -> str:
    """A request or a use, for people: 1.5 GB, 300 MB, 2.3 CPUs."""
    if value is None:
        return "?"
    if resource == "cpus":
        return f"{value:.1f}".rstrip("0").rstrip(".") + " CPUs"
    mb = value if resource == "memory" else value / 1024
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def assess(jobs: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Per resource: the request and the use (largest and median over the jobs that measured it),
    and `suggestions`, each a dict with the `line` to write and `why`.

    Use counts from finished jobs (done, or held for going over); requests from every job.
    """
    jobs = list(jobs)
    result: Dict[str, Any] = {}
    suggestions: List[Dict[str, str]] = []
    for resource, command, requested_key, used_key in _RESOURCES:
        requested = [v for v in (_num(j.get(requested_key)) for j in jobs) if v is not None]
        measured = [j for j in jobs if j.get("status") == 4 or _exceeded(j)]
        if used_key is None:
            used = [v for v in map(_cpus_used, measured) if v is not None]
        else:
            used = [v for v in (_num(j.get(used_key)) for j in measured) if v is not None]
        if not requested and not used:
            continue
        result[resource] = {"requested": _spread(requested), "used": _spread(used)}
        held = [j for j in jobs if _exceeded(j) == resource]
        line = _suggest(resource, command, requested, used, len(held))
        if line is not None:
            suggestions.append(line)
    result["suggestions"] = suggestions
    return result


def _suggest(resource: str, command: str, requested: List[float], used: List[float], held: int) -> Optional[Dict[str, str]]:
    asked = max(requested) if requested else None
    most = max(used) if used else None
    if held and asked is not None:
        value = _round_up(resource, max(asked * 2, (most or 0) * MARGIN))
        why = (
            f"{held} job(s) were held for using more {resource} than the {shown(resource, asked)} requested"
            + (f" (the largest use seen: {shown(resource, most)})" if most else "")
            + "; ask for more, then check the use in the next report"
        )
        return {"resource": resource, "line": f"{command} = {_written(resource, value)}", "why": why}
    if asked is None or most is None:
        return None
    value = _round_up(resource, most * MARGIN)
    if resource == "cpus" and most > asked * MARGIN:
        return {
            "resource": resource,
            "line": f"{command} = {_written(resource, value)}",
            "why": f"the jobs kept {shown(resource, most)} busy with {shown(resource, asked)} requested: "
            "ask for the threads your program starts",
        }
    if asked >= value * FAR_ABOVE and asked - value >= MIN_SAVING[resource]:
        return {
            "resource": resource,
            "line": f"{command} = {_written(resource, value)}",
            "why": f"the jobs used at most {shown(resource, most)} of the {shown(resource, asked)} requested; "
            "a smaller request finds a slot sooner",
        }
    return None


def lines(assessment: Mapping[str, Any]) -> List[str]:
    """The assessment as a few lines for people (`status NAME`)."""
    out = []
    for resource, _command, _, _ in _RESOURCES:
        found = assessment.get(resource)
        if not found:
            continue
        req, used = found["requested"], found["used"]
        text = f"{resource}: requested {shown(resource, req and req['max'])}"
        if used:
            text += f", used at most {shown(resource, used['max'])} (median {shown(resource, used['median'])})"
        else:
            text += ", use not measured yet"
        out.append(text)
    for s in assessment.get("suggestions", []):
        out.append(f"next time: {s['line']}  ({s['why']})")
    return out
