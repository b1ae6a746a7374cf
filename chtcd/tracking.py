"""Tracking: what the tick asks the schedd, and its answer merged into each bundle's job records.

Pure bookkeeping on data: no call to the access point, no file touched.

A tick asks for what changed, not for every job. The schedd sets a job's
`EnteredCurrentStatus` to its own clock on every change of `JobStatus` (idle,
running, held, released, completed, removed: `set_job_status`, `holdJob`,
`releaseJob`, `actOnJobs` in HTCondor's `condor_schedd.V6/schedd.cpp`), so the
tick's query asks for the jobs that entered their status since the schedd's
clock at the last tick's count, minus `CHANGE_MARGIN_SECONDS`. Two things no
status change shows are caught otherwise:

- jobs that left the queue (released, removed, dropped): a summary count of
  this client's jobs is taken first (`condor.AccessPoint.count_client`), and
  when it differs from what the records expect, the query asks for every job;
- bundles whose jobs are expected to leave or are in doubt (being submitted,
  or retrieved and being released: `LISTED_STAGES`) are asked for in full each
  tick, and left out of the count.

Every job is asked for after a restart, when the counts disagree, and every
`FULL_EVERY_SECONDS` (which also refreshes what changes without a change of
status, such as a running job's memory use).
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import condor, lifecycle, report
from .lifecycle import Phase
from .log import get as get_logger
from .state import BundleRecord, JobRecord, Stage

log = get_logger("chtcd.tracking")

CHANGE_MARGIN_SECONDS = 10.0
"""How far before the last count's schedd clock a change is asked for again.

`EnteredCurrentStatus` and the count's `ServerTime` are both the schedd's
`time()` in whole seconds, and a query may be served from a snapshot taken a
moment before it is stamped: a change in that window is asked for twice, never
missed. A job that changed shows in the answers of this many seconds of ticks."""

FULL_EVERY_SECONDS = 600.0
"""At least this often the tick asks for every job, whatever the count says."""

LISTED_STAGES = (Stage.SUBMITTING, Stage.SUBMITTED, Stage.READY, Stage.DELIVERED, Stage.RELEASED)
"""Bundles asked for in full every tick: in doubt (submitting), or whose jobs are about to leave."""

_ad_fields = operator.attrgetter(
    "proc", "status", "entered_status_at", "hold_code", "hold_subcode", "hold_reason", "exit_code", "exit_signal",
    "completed_at", "starts", "wall_seconds", "cpu_seconds", "memory_mb", "disk_kb",
    "request_memory_mb", "request_disk_kb", "request_cpus",
)
"""What `merge` copies from a JobAd into a JobRecord: equal on both, nothing changed."""


@dataclass(frozen=True)
class Ask:
    """What one tick asks the schedd for."""

    since: Optional[float]  # the schedd's clock: jobs that entered their status then or later; None: every job
    listed: Tuple[str, ...]  # bundles asked for in full whatever `since` says
    why: str  # for the log: "changes", "start", "count", "periodic"

    @property
    def full(self) -> bool:
        return self.since is None


@dataclass(frozen=True)
class Tally:
    """A bundle's jobs counted by phase, and its job idle longest: kept between ticks, so a quiet tick walks no job."""

    present: int  # still in the queue (not gone)
    waiting: int  # idle or running: not done, held, removed, nor waiting for its inputs
    settled: int  # done, held or removed
    idle: int  # idle and in the queue (`idle.still_idle`)
    oldest_idle: Optional[Tuple[float, int]]  # (entered_status_at, proc) of the job idle longest (`idle.due`)

    @property
    def steady(self) -> bool:
        """Nothing settled and some job out of its spooling hold: `lifecycle.next_step` of a running bundle
        out of trouble can only wait (held or done jobs, vanishing and a stuck spool all need a settled or
        spooling-only bundle), so a tick need not ask it."""
        return self.settled == 0 and self.waiting > 0


def tally(jobs: Dict[str, JobRecord]) -> Tally:
    present = waiting = settled = idle = 0
    oldest: Optional[Tuple[float, int]] = None
    for job in jobs.values():
        p = lifecycle.phase(job)
        if not job.gone:
            present += 1
        if p is Phase.IDLE or p is Phase.RUNNING:
            waiting += 1
        elif p is not Phase.SPOOLING:
            settled += 1
        if job.status == 1 and not job.gone:
            idle += 1
            since = job.entered_status_at
            if since is not None and (oldest is None or since < oldest[0]):
                oldest = (since, job.proc)
    return Tally(present, waiting, settled, idle, oldest)


_procs: List[int] = []
_keys: List[str] = []


def spooling(count: int) -> Dict[str, JobRecord]:
    """The records of a cluster just submitted: every job held for its inputs.

    Its job numbers and their keys are objects shared with every other
    bundle's (four 20,000-job bundles hold one "0".."19999" between them, not
    four), which a merge keeps (`_merge_bundle` reuses the record's `proc`).
    """
    for proc in range(len(_procs), count):
        _procs.append(proc)
        _keys.append(str(proc))
    return {key: JobRecord(proc=proc, status=5, hold_code=lifecycle.SPOOLING_HOLD_CODE) for proc, key in zip(_procs[:count], _keys)}


PAGE_JOBS = 20_000
"""A query for every job asks for about this many at a time: the bindings hold a whole answer as
ClassAds (about 2 KB a job) before a single one can be read, so 92,000 jobs asked for at once took
180 MB more for a moment; pages of 20,000 take some 40 MB, each freed before the next is asked for."""


def pages(tracked: Sequence[BundleRecord]) -> List[condor.ClusterRange]:
    """ClusterId ranges for a query of every job, each with at most `PAGE_JOBS` tracked jobs (or one cluster,
    if it is bigger); together they cover every ClusterId, so jobs no record knows are found too."""
    per_cluster: Dict[int, int] = {}
    for r in tracked:
        if r.cluster is not None:
            per_cluster[r.cluster] = per_cluster.get(r.cluster, 0) + (len(r.jobs) or r.job_count or 0)
    bounds: List[Optional[int]] = [None]
    in_page = 0
    for cluster, jobs in sorted(per_cluster.items()):
        if in_page and in_page + jobs > PAGE_JOBS:
            bounds.append(cluster)
            in_page = 0
        in_page += jobs
    bounds.append(None)
    return list(zip(bounds[:-1], bounds[1:]))


def listed(bundles: Dict[str, BundleRecord]) -> Tuple[str, ...]:
    """The bundles asked for in full on every tick (and left out of the count)."""
    return tuple(r.id for r in bundles.values() if r.stage in LISTED_STAGES)


class Tracker:
    """Decides each tick's question and merges its answer, remembering the schedd's clock and the jobs it expects."""

    def __init__(self) -> None:
        self.since: Optional[float] = None  # the schedd's clock at the last merged tick's count; None: ask for everything
        self.full_at: Optional[float] = None  # `now` of the last answer that held every job
        self.others = 0  # jobs of this client in the last full answer that no unlisted tracked record holds
        self._tallies: Dict[str, Tuple[Dict[str, JobRecord], Tally]] = {}  # bundle id -> (its jobs dict, their tally)

    def tally(self, record: BundleRecord) -> Tally:
        """The bundle's `Tally`, counted again only when a merge changed its jobs or its jobs dict was replaced.

        Only a merge changes what a tally counts (status, hold code, gone); the
        pipeline's own changes (retrieved, fetch_error) leave it as it is.
        """
        cached = self._tallies.get(record.id)
        if cached is not None and cached[0] is record.jobs:
            return cached[1]
        counted = tally(record.jobs)
        self._tallies[record.id] = (record.jobs, counted)
        return counted

    def expected(self, tracked: Sequence[BundleRecord], asked_in_full: Sequence[str]) -> int:
        """Jobs of this client the queue should hold, outside the bundles asked for in full."""
        skip = set(asked_in_full)
        return self.others + sum(self.tally(r).present for r in tracked if r.id not in skip and r.cluster is not None)

    def ask(self, tracked: Sequence[BundleRecord], in_full: Tuple[str, ...], count: condor.Count, now: float) -> Ask:
        if self.since is None:
            return Ask(None, in_full, "start")
        if self.full_at is None or now - self.full_at >= FULL_EVERY_SECONDS:
            return Ask(None, in_full, "periodic")
        if count.jobs != self.expected(tracked, in_full):
            return Ask(None, in_full, "count")
        return Ask(self.since - CHANGE_MARGIN_SECONDS, in_full, "changes")

    def merge(
        self,
        tracked: List[BundleRecord],
        known: Dict[str, BundleRecord],
        ads: List[condor.JobAd],
        now: float,
        ask: Ask,
        count: Optional[condor.Count],
    ) -> List[condor.JobAd]:
        """The answer into the records; returns the strays: jobs of this client whose bundle no record knows.

        A bundle asked for in full (every bundle, when every job was asked for)
        has jobs missing from the answer marked gone; any other bundle only has
        the jobs in the answer updated, and is not gone through when there are none.
        """
        by_bundle: Dict[Optional[str], List[condor.JobAd]] = {}
        for ad in ads:
            group = by_bundle.get(ad.bundle_id)
            if group is None:
                by_bundle[ad.bundle_id] = [ad]
            else:
                group.append(ad)
        by_bundle.pop(None, None)
        by_bundle.pop("", None)
        strays = [ad for bid, group in by_bundle.items() if bid not in known for ad in group]
        in_full = set(ask.listed)
        held_by_records = 0
        for record in tracked:
            complete = ask.full or record.id in in_full
            mine = by_bundle.get(record.id)
            if not mine and not complete:
                continue  # nothing of it changed
            mine = mine or []
            if record.cluster is None and mine:
                record.cluster = max(ad.cluster for ad in mine)
            mine = [ad for ad in mine if ad.cluster == record.cluster]
            if record.id not in in_full:
                held_by_records += len(mine)
            _merge_bundle(record, mine, now, complete)
            self._tallies.pop(record.id, None)
        if ask.full:
            self._tallies = {k: v for k, v in self._tallies.items() if k in known}
            self.full_at = now
            self.others = sum(1 for ad in ads if ad.bundle_id not in in_full) - held_by_records
        if count is not None:
            self.since = count.server_time
        return strays


def _merge_bundle(record: BundleRecord, mine: List[condor.JobAd], now: float, complete: bool) -> None:
    seen = set()
    for ad in mine:
        key = str(ad.proc)
        seen.add(key)
        old = record.jobs.get(key)
        if old is not None and not old.gone and _ad_fields(old) == _ad_fields(ad):
            continue  # as the last tick saw it: keep the record (most jobs, most ticks)
        was_held = old is not None and lifecycle.phase(old) == Phase.HELD
        job = JobRecord(
            proc=old.proc if old is not None else ad.proc,  # the answer's int, kept, would pin its freed memory (18 MB at 92,000 jobs)
            status=ad.status,
            entered_status_at=ad.entered_status_at,
            hold_code=ad.hold_code,
            hold_subcode=ad.hold_subcode,
            hold_reason=ad.hold_reason,
            exit_code=ad.exit_code,
            exit_signal=ad.exit_signal,
            completed_at=ad.completed_at,
            starts=ad.starts,
            wall_seconds=ad.wall_seconds,
            cpu_seconds=ad.cpu_seconds,
            memory_mb=ad.memory_mb,
            disk_kb=ad.disk_kb,
            retrieved=old.retrieved if old is not None else False,
            fetch_error=old.fetch_error if old is not None else None,
            request_memory_mb=ad.request_memory_mb,
            request_disk_kb=ad.request_disk_kb,
            request_cpus=ad.request_cpus,
        )
        record.jobs[key] = job
        if lifecycle.phase(job) == Phase.HELD and not was_held and record.stage == Stage.RUNNING:
            log.warning(
                "job held",
                bundle=record.name,
                job=condor.job_id(ad.cluster, ad.proc),
                code=ad.hold_code,
                reason=ad.hold_reason,
                hint=report.hold_hint(ad.hold_code, ad.hold_reason),
            )
    if complete:
        for key in [k for k, job in record.jobs.items() if k not in seen and not job.gone]:
            record.jobs[key] = dataclasses.replace(record.jobs[key], gone=True)
    if all(lifecycle.phase(j).finished or lifecycle.phase(j) == Phase.HELD for j in record.jobs.values()):
        record.finished_at = record.finished_at or now
