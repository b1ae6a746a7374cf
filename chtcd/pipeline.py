"""The pipeline: outbox -> claim -> check -> submit and spool -> track -> retrieve -> deliver -> release.

`intake` takes new bundles in and submits them; `tick` is one full step with
`now` passed in: intake, one query for every tracked job, then for each bundle
the action `lifecycle.next_step` chose. The daemon's scheduler, `run --once`
and the tests all call these same two methods.

Every transition is saved to the state store before the next irreversible
step; the comment ``commit point`` marks the step that makes each one durable.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import bundle as bundles
from . import checks, condor, lifecycle, report
from .atomic import free_name, move_dir
from .config import Config
from .layout import Layout
from .lifecycle import Phase
from .log import get as get_logger
from .outbox import Outbox, claim, new_bundle_id
from .state import BundleRecord, JobRecord, Stage, State, Store

log = get_logger("chtcd.pipeline")

KEEP_DONE_SECONDS = 7 * 86400.0
"""Finished bundles stay listed in `status` this long."""

QUERIED_STAGES = (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING, Stage.DELIVERED, Stage.RELEASED)


class Pipeline:
    def __init__(self, config: Config, layout: Layout, store: Store, state: State, access_point: Any):
        self.config = config
        self.layout = layout
        self.store = store
        self.state = state
        self.ap = access_point
        self.outbox = Outbox(layout.outbox, config.daemon.settle_seconds)
        self.stopping = threading.Event()
        self._outage: Optional[str] = None
        self._skip_ticks = 0
        self._failures = 0
        self._calls_allowed = True
        self._need_credentials = True

    # ---- intake: outbox -> claim -> check -> submit and spool -------------------------

    def intake(self, now: float) -> Optional[float]:
        """Claim ready folders and submit claimed bundles; returns when to look at the outbox again."""
        next_check = None
        if not self.state.paused:
            ready, next_check = self.outbox.ready(now)
            for name in ready:
                self._claim(name, now)
            self._save()
        for record in [r for r in self.state.bundles.values() if r.stage == Stage.CLAIMED]:
            if self.stopping.is_set() or not self._calls_allowed:
                break
            self._submit(record, now)
        self._save()
        return next_check

    def _claim(self, name: str, now: float) -> None:
        bundle_id = new_bundle_id(now)
        try:
            claim(self.layout.outbox, name, self.layout.work_slot(bundle_id))  # commit point: claimed
        except OSError as exc:
            log.warning("could not claim bundle", bundle=name, error=str(exc))
            return
        self.state.bundles[bundle_id] = BundleRecord(id=bundle_id, name=name, stage=Stage.CLAIMED, claimed_at=now)
        log.info("claimed bundle", bundle=name, id=bundle_id)

    def _folder(self, record: BundleRecord) -> Path:
        return self.layout.work_bundle(record.id, record.name)

    def _submit(self, record: BundleRecord, now: float) -> None:
        folder = self._folder(record)
        if not folder.is_dir():
            self._lost(record, "its folder was removed from the work area before it was submitted")
            return
        try:
            found = bundles.read(folder)
            checks.check_names(folder)
            description = condor.describe(found.text, folder, checks.FILE_COMMANDS)
            checks.check(
                description, folder, found.text, found.submit_file.name, int(self.config.limits.max_upload_mb * 1e6)
            )
        except bundles.Rejected as exc:
            self._reject(record, str(exc), now)
            return
        except condor.Refused as exc:
            self._reject(record, bundles.syntax_error(found.text, found.submit_file.name) or str(exc), now)
            return
        record.submit_file = found.submit_file.name
        if not self._ensure_credentials():
            return
        record.stage = Stage.SUBMITTING
        self._save()  # commit point: from here the submit's outcome is unknown until reconciled
        try:
            submitted = self.ap.submit(
                found.text, folder, self.config.submit_defaults(), condor.stamps(record.id, self.state.client_id)
            )
        except condor.Refused as exc:
            self._reject(record, str(exc), now)
            return
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        record.cluster = submitted.cluster
        record.job_count = submitted.procs
        record.submitted_at = now
        record.jobs = {str(p): JobRecord(proc=p, status=5, hold_code=lifecycle.SPOOLING_HOLD_CODE) for p in range(submitted.procs)}
        record.stage = Stage.SUBMITTED
        self._save()  # commit point: the cluster is ours
        try:
            self.ap.spool(submitted, folder)
        except condor.Refused as exc:
            self._refused_spool(record, str(exc), now)
            return
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        record.spooled_at = now
        record.stage = Stage.RUNNING
        self._save()  # commit point: the inputs are on the access point
        self._recovered()
        log.info("submitted bundle", bundle=record.name, id=record.id, cluster=record.cluster, jobs=record.job_count)

    def _refused_spool(self, record: BundleRecord, reason: str, now: float) -> None:
        try:
            self.ap.remove(f"ClusterId == {record.cluster}")
        except condor.CondorError:
            pass  # reconciled on a later tick by bundle id
        self._reject(record, reason, now)

    def _reject(self, record: BundleRecord, reason: str, now: float) -> None:
        record.outcome = "rejected"
        record.reason = reason
        record.stage = Stage.READY
        log.warning("bundle rejected", bundle=record.name, reason=reason)
        self._deliver(record, now)

    # ---- the tick -------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._open_tick()
        self.intake(now)
        tracked = [r for r in self.state.bundles.values() if r.stage in QUERIED_STAGES]
        queried = False
        if tracked and self._may_call_schedd():
            try:
                ads = self.ap.query_client(self.state.client_id)
            except condor.Unreachable as exc:
                self._unreachable(exc)
            else:
                self._recovered()
                self._merge(tracked, ads, now)
                queried = True
        for record in list(self.state.bundles.values()):
            if self.stopping.is_set():
                break
            if record.stage in QUERIED_STAGES and not queried:
                continue
            if record.stage in (Stage.CLAIMED, Stage.DONE):
                continue
            self._act(record, lifecycle.next_step(record, now, self.config.daemon.hold_grace_seconds), now)
        self._prune(now)
        self._save()

    def _merge(self, tracked: List[BundleRecord], ads: List[condor.JobAd], now: float) -> None:
        by_bundle: Dict[str, List[condor.JobAd]] = {}
        for ad in ads:
            if ad.bundle_id:
                by_bundle.setdefault(ad.bundle_id, []).append(ad)
        for record in tracked:
            mine = by_bundle.get(record.id, [])
            if record.cluster is None and mine:
                record.cluster = max(ad.cluster for ad in mine)
            mine = [ad for ad in mine if ad.cluster == record.cluster]
            seen = set()
            for ad in mine:
                key = str(ad.proc)
                seen.add(key)
                old = record.jobs.get(key)
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

    def _act(self, record: BundleRecord, action: lifecycle.Action, now: float) -> None:
        if isinstance(action, lifecycle.Wait):
            return
        if isinstance(action, lifecycle.Finish):
            if action.retrieve and self._may_call_schedd():
                try:
                    self.ap.retrieve(action.retrieve)
                except condor.Unreachable as exc:
                    self._unreachable(exc)
                    return
            elif action.retrieve:
                return
            record.outcome, record.reason = action.outcome, action.reason
            record.stage = Stage.READY
            self._save()  # commit point: outputs are in the work folder
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Vanished):
            record.outcome, record.reason = "vanished", action.reason
            record.stage = Stage.READY
            log.error("jobs vanished before retrieval", bundle=record.name, cluster=record.cluster)
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Deliver):
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Release):
            self._release(record, now)
        elif isinstance(action, lifecycle.Forget):
            record.stage = Stage.DONE
        elif isinstance(action, lifecycle.Adopt):
            record.stage = Stage.RUNNING
            record.spooled_at = record.spooled_at or now
            log.info("adopted cluster after restart", bundle=record.name, cluster=action.cluster)
        elif isinstance(action, lifecycle.Resubmit):
            if action.remove_cluster is not None:
                try:
                    self.ap.remove(f"ClusterId == {action.remove_cluster}")
                except condor.Unreachable as exc:
                    self._unreachable(exc)
                    return
            log.info("submitting again: the earlier attempt never got its inputs", bundle=record.name)
            record.cluster, record.jobs, record.stage = None, {}, Stage.CLAIMED
            self._submit(record, now)

    # ---- deliver and release -------------------------------------------------------

    def _deliver(self, record: BundleRecord, now: float) -> None:
        folder = self._folder(record)
        if not folder.is_dir():
            self._lost(record, "its folder was removed from the work area before delivery")
            return
        report.write(folder, report.build(record, self.ap.name, now))
        target = free_name(self.layout.inbox, record.name)
        try:
            move_dir(folder, target)  # commit point: delivered
        except OSError as exc:
            record.last_error = f"could not move {record.name} into {self.layout.inbox}: {exc}"
            log.error("delivery failed; will retry next tick", bundle=record.name, error=str(exc))
            return
        shutil.rmtree(self.layout.work_slot(record.id), ignore_errors=True)
        record.delivered_at = now
        record.inbox_path = str(target)
        record.stage = Stage.DELIVERED if record.cluster is not None else Stage.DONE
        self._save()
        tally = lifecycle.counts(record.jobs.values())
        log.info(
            f"{record.name} is back: {target}",
            bundle=record.name,
            outcome=record.outcome,
            done=tally["done"],
            held=tally["held"],
            removed=tally["removed"],
        )
        self._release(record, now)

    def _release(self, record: BundleRecord, now: float) -> None:
        if record.cluster is None or not self._may_call_schedd():
            return
        try:
            self.ap.release(record.cluster)
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        record.stage = Stage.RELEASED
        record.released_at = now

    def _lost(self, record: BundleRecord, why: str) -> None:
        log.error("bundle folder missing", bundle=record.name, id=record.id, why=why)
        record.outcome, record.reason, record.stage = "lost", why, Stage.DONE
        if record.cluster is not None:
            try:
                self.ap.remove(f"ClusterId == {record.cluster}")
            except condor.CondorError:
                pass

    # ---- bookkeeping ---------------------------------------------------------------

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self.state.bundles.items() if r.stage == Stage.DONE and now - (r.delivered_at or r.claimed_at) > KEEP_DONE_SECONDS]:
            del self.state.bundles[key]

    def _save(self) -> None:
        self.store.save(self.state)

    def _ensure_credentials(self) -> bool:
        if not self._need_credentials:
            return True
        try:
            found = self.ap.add_credentials(self.config.pool.credd_services)
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return False
        if not found:
            log.warning(
                "no credd found for the access point; jobs may go on hold with 'Job credentials not available'",
                access_point=self.ap.name,
            )
        self._need_credentials = False
        return True

    def _open_tick(self) -> None:
        """During an outage most ticks make no call at all; the others make at most one."""
        if self._skip_ticks > 0:
            self._skip_ticks -= 1
            self._calls_allowed = False
        else:
            self._calls_allowed = True

    def _may_call_schedd(self) -> bool:
        return self._calls_allowed

    def _unreachable(self, exc: condor.Unreachable) -> None:
        """Log an outage once, then back off: skip 1, 2, 4... up to 8 ticks between attempts."""
        message = str(exc)
        if isinstance(exc, condor.AuthRefused):
            message += (
                f"; fetch a fresh token: ssh NETID@{self.ap.name} condor_token_fetch > "
                f"{self.config.pool.token_dir}/{self.ap.name.split('.')[0]} && chmod 600 {self.config.pool.token_dir}/*"
            )
        if message != self._outage:
            log.error("access point unreachable; will retry", error=message)
        self._outage = message
        self._calls_allowed = False
        self._failures += 1
        self._skip_ticks = min(2 ** (self._failures - 1), 8) - 1

    def _recovered(self) -> None:
        if self._outage:
            log.info("access point reachable again")
            self._need_credentials = True
        self._outage = None
        self._failures = 0
