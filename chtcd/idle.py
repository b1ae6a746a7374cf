"""Why a bundle's jobs stay idle: when to ask, and what to tell the user. Pure: no I/O.

The answer to "why is my job still idle?" lives in `condor_q -better-analyze`
on the access point. chtcd asks the same questions a hands-off user never
would: what the schedd knows of the job (its last rejection, its matches) and,
clause by clause of its Requirements, how many of the pool's slots meet each
one. HTCondor's own analyser (`condor_q -better-analyze`,
src/condor_q.V6/expr_analyze.cpp) walks Requirements into sub-expressions and
counts the slots each one matches; chtcd does the same at the top-level
``&&``, which is where a typo, a foreign OS version or an oversized request
shows. The counting happens in the door (`condor.AccessPoint.idle_facts`);
this module splits the expression, decides when, and words the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .state import BundleRecord, Stage

EXPLAIN_EVERY_SECONDS = 3600.0
"""After the first explanation of a bundle, at most one an hour: two queries each, the collector's a large one."""


def conjuncts(expression: str) -> List[str]:
    """The ``&&`` clauses of a ClassAd expression, each without its enclosing parentheses, each once.

    A parenthesised conjunction is opened too: HTCondor wraps the submit
    file's Requirements in parentheses and appends its own clauses, so
    ``(A && B) && C`` gives ``["A", "B", "C"]``. Strings, and ``&&`` under
    ``||``, ``!`` or a function, are left whole: ``(A) && ((B && C) || D)``
    gives ``["A", "(B && C) || D"]``.
    """
    found: List[str] = []
    for part in _top_level(expression):
        inner = _top_level(part)
        for clause in conjuncts(part) if len(inner) > 1 else [part]:
            if clause not in found:
                found.append(clause)
    return found


def _outside_strings(text: str) -> Iterator[Tuple[int, str, int]]:
    """Each character outside string literals, with its index and the bracket depth before it."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        else:
            yield i, ch, depth
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        i += 1


def _top_level(expression: str) -> List[str]:
    """The expression split at the ``&&`` outside parentheses, brackets and strings; parts unwrapped."""
    parts, start, skip = [], 0, -1
    for i, _ch, depth in _outside_strings(expression):
        if i == skip:
            continue
        if depth == 0 and expression.startswith("&&", i):
            parts.append(expression[start:i])
            start, skip = i + 2, i + 1
    parts.append(expression[start:])
    return [_unwrap(p) for p in parts if p.strip()]


def _unwrap(text: str) -> str:
    """``((A))`` -> ``A``, but ``(A) || (B)`` stays as it is."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _closes_at_end(text):
        text = text[1:-1].strip()
    return text


def _closes_at_end(text: str) -> bool:
    """The first parenthesis closes only at the last character."""
    return not any(ch == ")" and depth == 1 and i != len(text) - 1 for i, ch, depth in _outside_strings(text))


_WALK: Any = object()
"""`due` without the caller's count: it goes through the bundle's jobs itself."""


def due(record: BundleRecord, now: float, after: float, oldest: Any = _WALK) -> Optional[int]:
    """The proc of the job to explain now, or None.

    A running bundle whose jobs have been idle longer than ``after``, not
    explained within the last hour (once, then at most hourly): the job idle
    longest. Never more often, whatever the tick. ``oldest`` is that job's
    (entered_status_at, proc) when the caller counted it already (`tracking.Tally`).
    """
    if record.stage != Stage.RUNNING:
        return None
    if record.idle_explained_at is not None and now - record.idle_explained_at < EXPLAIN_EVERY_SECONDS:
        return None
    if oldest is not _WALK:
        return None if oldest is None or now - oldest[0] < after else oldest[1]
    oldest = None
    for job in record.jobs.values():
        if job.status != 1 or job.gone or job.entered_status_at is None:
            continue
        if now - job.entered_status_at >= after and (oldest is None or job.entered_status_at < oldest[0]):
            oldest = (job.entered_status_at, job.proc)
    return None if oldest is None else oldest[1]


def still_idle(record: BundleRecord) -> bool:
    """Whether any job of the bundle is idle: an explanation of jobs that have since started is dropped."""
    return any(job.status == 1 and not job.gone for job in record.jobs.values())


@dataclass(frozen=True)
class Clause:
    """One conjunct of the job's Requirements, and how the pool's slots took it."""

    text: str
    meet: int  # slots for which it is true
    meet_the_rest: int  # slots for which every other conjunct is true
    undefined: int = 0  # slots where it could not be evaluated (an attribute they lack)


@dataclass(frozen=True)
class Facts:
    """What the door found out about one idle job: the schedd's view and the slots' answers."""

    job: str
    idle_since: Optional[float]
    requirements: str
    slots: int
    matching: int  # slots meeting every conjunct
    clauses: List[Clause]
    last_rejection: Optional[str] = None  # LastRejMatchReason
    matches: Optional[int] = None  # NumJobMatches
    autocluster: Optional[int] = None  # AutoClusterId
    request_memory_mb: Optional[int] = None
    request_disk_kb: Optional[int] = None
    request_cpus: Optional[int] = None
    request_gpus: Optional[int] = None


_ATTR = re.compile(r"\b(?:TARGET\.)?([A-Za-z_][A-Za-z0-9_]*)\b")


def _hint(clause: Clause, facts: Facts) -> str:
    """A plain next step for a clause no slot meets."""
    text = clause.text
    low = text.lower()
    if clause.undefined == facts.slots and facts.slots:
        names = [m for m in _ATTR.findall(text) if m.lower() not in ("true", "false", "undefined", "target", "my")]
        return (
            f"no slot defines {', '.join(dict.fromkeys(names)) or 'what it names'}: "
            "check the spelling in requirements, or drop that clause"
        )
    if "poolname" in low:
        return (
            f"no slot has {text}: these are CHTC's default Requirements; against another pool set [submit] "
            "Requirements in the config (python3 -m chtcd.localpool env prints the local pool's)"
        )
    if "opsysmajorver" in low or "opsysname" in low or "osgvo_os_string" in low:
        return f"no slot has {text}: drop that clause or use a container (container_image)"
    if "memory" in low and "requestmemory" in low:
        asked = f"the {facts.request_memory_mb / 1024:.1f} GB of memory requested" if facts.request_memory_mb else "the memory requested"
        return f"no slot has {asked}: lower request_memory (the report of a test run shows what the jobs use)"
    if "disk" in low and "requestdisk" in low:
        asked = f"the {facts.request_disk_kb / 1024 ** 2:.1f} GB of disk requested" if facts.request_disk_kb else "the disk requested"
        return f"no slot has {asked}: lower request_disk, or put large files in /staging"
    if "cpus" in low and "requestcpus" in low:
        return f"no slot has {facts.request_cpus or 'the'} CPUs requested: lower request_cpus"
    if "gpu" in low or "cuda" in low:
        return (
            f"no slot meets {text}: this pool has no such GPUs; at CHTC, GPU jobs also need "
            "+WantGPULab = true, and request_gpus only where the GPU Lab's slots are"
        )
    return f"no slot meets {text}: check the attribute and value in requirements, or drop that clause"


def explain(facts: Facts, now: float) -> Dict[str, Any]:
    """The explanation kept on the bundle: a one-line summary, the clauses no slot meets, hints; JSON-ready."""
    failing = [c for c in facts.clauses if c.meet == 0]
    hints = [_hint(c, facts) for c in failing]
    if facts.slots == 0:
        summary = "the pool lists no slots at all: the pool may be down or empty; wait, or ask the facilitators"
    elif failing:
        names = ", nor ".join(c.text for c in failing)
        rest = f" ({failing[0].meet_the_rest} meet the rest)" if len(failing) == 1 and len(facts.clauses) > 1 else ""
        summary = f"no slot matches: none of the pool's {facts.slots} slot(s) meets {names}{rest}"
    elif facts.matching == 0:
        best = max(facts.clauses, key=lambda c: c.meet_the_rest)
        summary = (
            f"no slot matches: each clause is met by some slot, but none of {facts.slots} meets them all; "
            f"without {best.text}, {best.meet_the_rest} would"
        )
        hints.append(f"relax {best.text}, or the request it compares with")
    else:
        summary = f"{facts.matching} of {facts.slots} slots match: the jobs wait for one to be free"
        hints.append("nothing to fix: the pool is busy (at CHTC your recent usage lowers your priority); wait")
    if facts.last_rejection and facts.slots:
        hints.append(f"the access point's last word on it: {facts.last_rejection.strip()}")
    return {
        "job": facts.job,
        "explained_at": round(now),
        "idle_for_seconds": None if facts.idle_since is None else round(now - facts.idle_since),
        "summary": summary,
        "hints": hints,
        "slots": facts.slots,
        "matching": facts.matching,
        "clauses": [
            {"clause": c.text, "slots": c.meet, "slots_meeting_the_rest": c.meet_the_rest, "undefined": c.undefined}
            for c in facts.clauses
        ],
        "schedd": {"last_rejection": facts.last_rejection, "matches": facts.matches, "autocluster": facts.autocluster},
        "requirements": facts.requirements,
    }
