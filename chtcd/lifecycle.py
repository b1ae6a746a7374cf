"""What happens next to a bundle: pure decisions, no I/O.

Given a bundle's record (with what the last query said of its jobs) and the
time, `next_step` returns one action as data; `pipeline` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, Iterable, List, Optional, Union

from . import faults
from .state import BundleRecord, JobRecord, Stage

SPOOLING_HOLD_CODE = 16
"""Every spooled job starts held with this code until its inputs arrive: not a real hold."""

EARLY_RETRIEVE_SECONDS = 7 * 86400.0
"""HTCondor drops a completed remote job's outputs 10 days after it finishes, retrieved or not:
a job done this long while its siblings still run is retrieved on its own."""

RELEASE_RETRY_SECONDS = 300.0
"""A released job normally leaves the queue within about 20 s; after this, release again."""


class Phase(str, Enum):
    """A job's state as the user thinks of it."""

    SPOOLING = "spooling"
    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    DONE = "done"
    REMOVED = "removed"

    @property
    def finished(self) -> bool:
        return self in (Phase.DONE, Phase.REMOVED)


PHASE_BY_STATUS: Dict[int, Phase] = {
    1: Phase.IDLE,
    2: Phase.RUNNING,
    3: Phase.REMOVED,
    4: Phase.DONE,
    5: Phase.HELD,
    6: Phase.RUNNING,  # transferring output
    7: Phase.RUNNING,  # suspended
}
"""HTCondor's JobStatus, keyed; HoldReasonCode refines 5 (see `phase`)."""


def phase(job: JobRecord) -> Phase:
    if job.gone and job.status != 4:
        return Phase.REMOVED
    if job.status == 5 and job.hold_code == SPOOLING_HOLD_CODE:
        return Phase.SPOOLING
    return PHASE_BY_STATUS.get(job.status, Phase.IDLE)


def counts(jobs: Iterable[JobRecord]) -> Dict[str, int]:
    tally = dict.fromkeys(_PHASES, 0)
    for job in jobs:
        tally[phase(job)] += 1
    return dict(zip(_PHASE_NAMES, tally.values()))


_PHASES = tuple(Phase)
_PHASE_NAMES = tuple(p.value for p in _PHASES)


@dataclass(frozen=True)
class Wait:
    """Nothing to do for this bundle on this tick."""


@dataclass(frozen=True)
class Finish:
    """Every job is done, removed, or held past the grace: retrieve, then deliver."""

    retrieve: List[str]
    outcome: str  # delivered | partial
    reason: Optional[str] = None


@dataclass(frozen=True)
class RetrieveEarly:
    """Some jobs finished long ago while others run: fetch theirs before HTCondor drops them."""

    retrieve: List[str]


@dataclass(frozen=True)
class Vanished:
    """The jobs left the queue before their outputs were retrieved."""

    reason: str


@dataclass(frozen=True)
class Deliver:
    pass


@dataclass(frozen=True)
class Release:
    pass


@dataclass(frozen=True)
class Forget:
    pass


@dataclass(frozen=True)
class Adopt:
    """After a crash mid-submit: the cluster exists and was spooled; track it."""

    cluster: int


@dataclass(frozen=True)
class GiveUp:
    """The bundle has been in trouble for the whole grace period: send it back with what there is.

    ``unfetched`` are the jobs whose outputs never came: they are left on the
    access point, never released, so the user can still fetch them by hand.
    """

    outcome: str  # partial | failed | rejected
    reason: str
    unfetched: List[int]


@dataclass(frozen=True)
class Resubmit:
    """After a crash mid-submit: nothing usable reached the schedd; remove leftovers, submit again."""

    remove_cluster: Optional[int]


_WAIT = Wait()
"""The common answer, thousands of times a tick: one immutable instance."""

Action = Union[Wait, RetrieveEarly, Finish, Vanished, Deliver, Release, Forget, Adopt, Resubmit, GiveUp]

VANISHED_REASON = (
    "the jobs left the access point's queue before chtcd retrieved their outputs "
    "(HTCondor drops completed remote jobs 10 days after they finish, or someone removed them); "
    "nothing could be brought back: submit the bundle again"
)


SPOOL_STUCK_SECONDS = 60.0
"""Jobs leave the spooling hold as soon as spool() returns; still held this long after means the
schedd lost the upload (seen when it restarted mid-spool): they never ran, so submit again."""


_ACTIVE = (Phase.SPOOLING, Phase.IDLE, Phase.RUNNING)

FAULT_GRACE_SECONDS = 86400.0
"""How long a bundle may stay in trouble before it comes back with what there is (`[daemon] fault_grace_seconds`)."""


def next_step(
    record: BundleRecord,
    now: float,
    hold_grace: float,
    spool_stuck: float = SPOOL_STUCK_SECONDS,
    fault_grace: float = FAULT_GRACE_SECONDS,
) -> Action:
    stage = record.stage
    jobs = list(record.jobs.values())
    out_of_time = faults.out_of_time(record, now, fault_grace)
    if out_of_time and stage in (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING) and not (
        stage == Stage.RUNNING and any(phase(j) in _ACTIVE for j in jobs)
    ):  # (jobs still running are never given up on: the bundle comes back when they are done)
        return _give_up(record, jobs, now)
    if out_of_time and stage in (Stage.DELIVERED, Stage.RELEASED):
        return Forget()  # it is in the inbox; jobs that will not leave are HTCondor's to drop in 10 days
    if faults.waiting(record, now):
        return _WAIT  # in trouble: its own backoff, whatever the other bundles do
    if stage in (Stage.SUBMITTING, Stage.SUBMITTED):
        return _reconcile(record)
    if stage == Stage.RUNNING:
        if _all_present_spooling(jobs):
            if record.spooled_at is not None and now - record.spooled_at > spool_stuck:
                return Resubmit(remove_cluster=record.cluster)
            return _WAIT
        return _running(jobs, record, now, hold_grace)
    if stage == Stage.READY:
        return Deliver()
    if stage == Stage.DELIVERED:
        return Release() if record.cluster is not None else Forget()
    if stage == Stage.RELEASED:
        if all(j.gone or j.fetch_error is not None for j in jobs):
            return Forget()  # (jobs whose outputs never came are left on the access point on purpose)
        if now - (record.released_at or now) > RELEASE_RETRY_SECONDS:
            return Release()
    return _WAIT


def _all_present_spooling(jobs: List[JobRecord]) -> bool:
    """Some job is still in the queue and every one there waits for its inputs (stops at the first that does not)."""
    present = False
    for j in jobs:
        if j.gone:
            continue
        if phase(j) != Phase.SPOOLING:
            return False
        present = True
    return present


def _running(jobs: List[JobRecord], record: BundleRecord, now: float, hold_grace: float) -> Action:
    if not jobs or (all(j.gone for j in jobs) and not all(j.retrieved for j in jobs)):
        return Vanished(VANISHED_REASON)
    fetch: List[int] = []
    held: List[JobRecord] = []
    done = 0
    active = False  # spooling, idle or running
    for j in jobs:  # one pass: a bundle may have 10,000 jobs, looked at every tick
        p = phase(j)
        if p is Phase.DONE:
            done += 1
            if not j.gone and not j.retrieved:
                fetch.append(j.proc)
        elif p is Phase.HELD:
            held.append(j)
        elif p is not Phase.REMOVED:
            active = True
    fetch.sort()
    if active:
        old = [proc for proc in fetch if now - (record.jobs[str(proc)].completed_at or now) > EARLY_RETRIEVE_SECONDS]
        return RetrieveEarly([f"{record.cluster}.{proc}" for proc in old]) if old else _WAIT
    if any(now - (j.entered_status_at or now) < hold_grace for j in held):
        return _WAIT
    retrieve = [f"{record.cluster}.{proc}" for proc in fetch]
    if done == len(jobs):
        return Finish(retrieve, "delivered")
    removed = len(jobs) - done - len(held)
    parts = []
    if held:
        parts.append(f"{len(held)} job(s) stayed on hold past the grace period and were removed")
    if removed:
        parts.append(f"{removed} job(s) were removed before finishing")
    return Finish(retrieve, "partial", "; ".join(parts) + "; see the jobs list for reasons")


def _reconcile(record: BundleRecord) -> Action:
    """Decide from what the schedd holds for this bundle id; `jobs` came from that lookup."""
    present = [j for j in record.jobs.values() if not j.gone]
    if not present:
        return Resubmit(remove_cluster=None)
    if all(phase(j) == Phase.SPOOLING for j in present):
        return Resubmit(remove_cluster=record.cluster)
    return Adopt(cluster=record.cluster)  # type: ignore[arg-type]


def _give_up(record: BundleRecord, jobs: List[JobRecord], now: float) -> GiveUp:
    """What a bundle that could not be moved on for the whole grace period comes back as."""
    since = _duration(now - (record.first_error_at or now))
    error = record.last_error or "unknown error"
    if record.stage != Stage.RUNNING or record.spooled_at is None:
        return GiveUp(
            "rejected",
            f"chtcd could not send this bundle: {record.failures} attempts over {since} failed; the last said: "
            f"{error}. Nothing of it ran. Fix what the error names and drop the folder again (or chtcd retry it)",
            [],
        )
    unfetched = sorted(j.proc for j in jobs if phase(j) is Phase.DONE and not j.gone and not j.retrieved)
    fetched = sum(1 for j in jobs if j.retrieved)
    outcome = "partial" if fetched else "failed"
    ids = ", ".join(f"{record.cluster}.{p}" for p in unfetched[:10]) + (" ..." if len(unfetched) > 10 else "")
    return GiveUp(
        outcome,
        f"the outputs of {len(unfetched)} job(s) could not be fetched in {since} of trying ({record.failures} attempts); "
        f"the last error: {error}. Those jobs are left on the access point until HTCondor drops them, 10 days after "
        f"they finished: to fetch them by hand, log in to the access point and run condor_transfer_data {ids}, "
        "or ask the CHTC facilitators",
        unfetched,
    )


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
