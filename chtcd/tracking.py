"""Tracking: the tick's one answer from the schedd, merged into each bundle's job records.

Pure bookkeeping on data: no call to the access point, no file touched. Only
bundles whose jobs look different from last tick are gone through, and jobs
of this client that no record knows (the state was lost) are handed back as
strays for the pipeline to deal with.
"""

from __future__ import annotations

import operator
from typing import Any, Dict, List, Optional

from . import condor, lifecycle, report
from .lifecycle import Phase
from .log import get as get_logger
from .state import BundleRecord, JobRecord, Stage

log = get_logger("chtcd.tracking")

_ad_fields = operator.attrgetter(
    "proc", "status", "entered_status_at", "hold_code", "hold_subcode", "hold_reason", "exit_code", "exit_signal",
    "completed_at", "starts", "wall_seconds", "cpu_seconds", "memory_mb", "disk_kb",
    "request_memory_mb", "request_disk_kb", "request_cpus",
)
"""What `merge` copies from a JobAd into a JobRecord: equal on both, nothing changed."""


class Tracker:
    """Merges each tick's answer into the records, remembering last tick's per bundle."""

    def __init__(self) -> None:
        self._merged: Dict[str, Any] = {}  # bundle id -> (record, its jobs dict, the answer's JobAds) of the last merge

    def merge(self, tracked: List[BundleRecord], known: Dict[str, BundleRecord], ads: List[condor.JobAd], now: float) -> List[condor.JobAd]:
        """The answer into the records; returns the strays: jobs of this client whose bundle no record knows.

        A bundle whose answer is as last tick keeps last tick's entry: nothing
        made anew outlives the tick, so Python's cycle collector has no reason
        to walk the whole state again.
        """
        merged: Dict[str, Any] = {}
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
        for record in tracked:
            mine = by_bundle.get(record.id, [])
            if record.cluster is None and mine:
                record.cluster = max(ad.cluster for ad in mine)
            mine = [ad for ad in mine if ad.cluster == record.cluster]
            last = self._merged.get(record.id)
            if last is not None and last[0] is record and last[1] is record.jobs and last[2] == mine:
                merged[record.id] = last
                continue  # the same answer for this bundle as last tick (the door hands back the same JobAds)
            merged[record.id] = (record, record.jobs, mine)
            _merge_bundle(record, mine, now)
        self._merged = merged
        return strays


def _merge_bundle(record: BundleRecord, mine: List[condor.JobAd], now: float) -> None:
    seen = set()
    for ad in mine:
        key = str(ad.proc)
        seen.add(key)
        old = record.jobs.get(key)
        if old is not None and not old.gone and _ad_fields(old) == _ad_fields(ad):
            continue  # as the last tick saw it: keep the record (most jobs, most ticks)
        was_held = old is not None and lifecycle.phase(old) == Phase.HELD
        job = JobRecord(
            proc=ad.proc,
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
    for key, job in record.jobs.items():
        if key not in seen:
            job.gone = True
    if all(lifecycle.phase(j).finished or lifecycle.phase(j) == Phase.HELD for j in record.jobs.values()):
        record.finished_at = record.finished_at or now
