"""The pipeline: outbox -> claim -> check -> submit and spool -> track -> retrieve -> deliver -> release.

`intake` takes new bundles in and submits them; `tick` is one full step with
`now` passed in: intake, one query for every tracked job, then for each bundle
the action `lifecycle.next_step` chose. The daemon's scheduler, `run --once`
and the tests all call these same two methods.

Every transition is saved to the state store before the next irreversible
step; the comment ``commit point`` marks the step that makes each one durable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import operator
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import bundle as bundles
from . import checks, condor, lifecycle, report
from .atomic import free_name, move_dir
from .crashpoints import crash_point
from .config import Config
from .layout import Layout
from .lifecycle import Phase
from .log import get as get_logger
from .outbox import Outbox, claim, new_bundle_id, sync_claims
from .state import BundleRecord, JobRecord, Stage, State, Store

log = get_logger("chtcd.pipeline")

KEEP_DONE_SECONDS = 7 * 86400.0
"""Finished bundles stay listed in `status` this long."""

SUBMIT_BATCH = 50
"""Bundles marked `submitting` by one save: after a crash, at most this many are looked up by id."""

QUERIED_STAGES = (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING, Stage.DELIVERED, Stage.RELEASED)

_ad_fields = operator.attrgetter(
    "proc", "status", "entered_status_at", "hold_code", "hold_subcode", "hold_reason", "exit_code", "exit_signal",
    "completed_at", "starts", "wall_seconds", "cpu_seconds", "memory_mb", "disk_kb",
)
"""What `_merge` copies from a JobAd into a JobRecord: equal on both, nothing changed."""


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
        self._warned_strays: set = set()
        self._need_credentials = True
        self._fetched: set = set()  # job ids retrieved together this tick
        self._merged: Dict[str, Any] = {}  # bundle id -> (record, its jobs dict, the answer's JobAds) of the last merge
        self._releasing: List[BundleRecord] = []  # released together at the end of the step

    # ---- intake: outbox -> claim -> check -> submit and spool -------------------------

    def intake(self, now: float) -> Optional[float]:
        """Claim ready folders and submit claimed bundles; returns when to look at the outbox again."""
        was_paused = self.state.paused
        self._control(now)
        next_check = None
        ready: List[str] = []
        if not self.state.paused:
            ready, next_check = self.outbox.ready(now)
            slots = [slot for slot in (self._claim(name, now) for name in ready) if slot is not None]
            if slots:
                sync_claims(self.layout.outbox, slots)
            # No save here: the batch's save below records them (or the one at the end, when nothing is sent).
            # A crash before either leaves unrecorded claims, which start-up adopts (restore.py).
        claimed = [r for r in self.state.bundles.values() if r.stage == Stage.CLAIMED]
        for start in range(0, len(claimed), SUBMIT_BATCH):
            if self.stopping.is_set() or not self._calls_allowed:
                break
            self._submit_batch(claimed[start:start + SUBMIT_BATCH], now)
        released = bool(self._releasing)
        self._release_together(now)
        if ready or claimed or released or self.state.paused != was_paused:
            self._save()  # (an intake that found nothing to do has nothing to save: a tick's saves its own)
        return next_check

    def _claim(self, name: str, now: float) -> Optional[Path]:
        """The claimed bundle's slot in the work area; made durable with the intake's other claims."""
        bundle_id = new_bundle_id(now)
        slot = self.layout.work_slot(bundle_id)
        try:
            with self._step("claim"):
                claim(self.layout.outbox, name, slot)  # commit point: claimed
        except OSError as exc:
            log.warning("could not claim bundle", bundle=name, error=str(exc))
            return None
        self.state.bundles[bundle_id] = BundleRecord(id=bundle_id, name=name, stage=Stage.CLAIMED, claimed_at=now)
        log.info("claimed bundle", bundle=name, id=bundle_id)
        return slot

    def _folder(self, record: BundleRecord) -> Path:
        return self.layout.work_bundle(record.id, record.name)

    def _submit(self, record: BundleRecord, now: float) -> None:
        self._submit_batch([record], now)

    def _submit_batch(self, records: List[BundleRecord], now: float) -> None:
        """Check each bundle, mark the good ones `submitting` in one save, then submit and spool them in turn.

        One save covers the batch because a `submitting` bundle is settled by its
        id on the next tick whatever happened to it (not on the schedd: submitted
        again; held for spooling: submitted again; spooled: adopted). A crash
        leaves at most the batch in doubt, and what was never sent goes back to
        `claimed`, so an outage costs no lookups.
        """
        checked = []
        for record in records:
            found = self._check(record, now)
            if found is not None:
                checked.append((record, found))
        if not checked or not self._ensure_credentials():
            return
        for record, found in checked:
            record.submit_file = found.submit_file.name
            record.stage = Stage.SUBMITTING
        self._save()  # commit point: from here each one's submit is in doubt until it returns or is reconciled
        for n, (record, found) in enumerate(checked):
            if self.stopping.is_set() or not self._calls_allowed:
                for unsent, _ in checked[n:]:
                    unsent.stage = Stage.CLAIMED
                break
            self._send(record, found, now)

    def _check(self, record: BundleRecord, now: float) -> Optional[bundles.Bundle]:
        """The bundle's submit file if it passes every rule; else it goes back to the inbox with the reason."""
        folder = self._folder(record)
        if not folder.is_dir():
            self._lost(record, "its folder was removed from the work area before it was submitted", now)
            return None
        found = None
        try:
            root = os.path.realpath(folder)  # resolved once for all the checks: each resolution walks the whole path
            found = bundles.read(folder)
            checks.check_names(folder, root)
            description = condor.describe(
                found.text, folder, checks.FILE_COMMANDS, self.config.submit_defaults(), self.config.limits.env_allowlist
            )
            checks.check(
                description, folder, found.text, found.submit_file.name, int(self.config.limits.max_upload_mb * 1e6), root
            )
            found = dataclasses.replace(found, description=description)
            record.notes = checks.env_notes(description, found.submit_file.name)
        except bundles.Rejected as exc:
            self._reject(record, str(exc), now)
            return None
        except condor.Refused as exc:
            self._reject(record, (found and bundles.syntax_error(found.text, found.submit_file.name)) or str(exc), now)
            return None
        return found

    def _send(self, record: BundleRecord, found: bundles.Bundle, now: float) -> None:
        """Submit and spool one checked bundle; its record is saved with the batch's next save."""
        folder = self._folder(record)
        try:
            with self._step("submit"):
                submitted = self.ap.submit(found.description, folder, condor.stamps(record.id, self.state.client_id))
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
        try:
            with self._step("spool"):
                self.ap.spool(submitted, folder)
        except condor.Refused as exc:
            self._refused_spool(record, str(exc), now)
            return
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        record.spooled_at = now
        record.stage = Stage.RUNNING
        self._recovered()
        log.info("submitted bundle", bundle=record.name, id=record.id, cluster=record.cluster, jobs=record.job_count)

    def _refused_spool(self, record: BundleRecord, reason: str, now: float) -> None:
        self._remove(f"ClusterId == {record.cluster}")
        self._reject(record, reason, now)

    def _reject(self, record: BundleRecord, reason: str, now: float) -> None:
        record.outcome = "rejected"
        record.reason = reason
        record.stage = Stage.READY
        log.warning("bundle rejected", bundle=record.name, reason=reason)
        self._deliver(record, now)

    # ---- the tick -------------------------------------------------------------------

    def tick(self, now: float) -> Optional[float]:
        """The tick's intake, one query, then what each bundle needs; returns when to look at the outbox again."""
        self._open_tick()
        next_check = self.intake(now)
        tracked = [r for r in self.state.bundles.values() if r.stage in QUERIED_STAGES]
        queried = False
        if tracked and self._may_call_schedd():
            try:
                with self._step("query"):
                    ads = self.ap.query_client(self.state.client_id)
            except condor.Unreachable as exc:
                self._unreachable(exc)
            else:
                self._recovered()
                self._merge(tracked, ads, now)
                queried = True
        log.debug("tick", tracked=len(tracked), queried=queried)
        planned = []
        grace = self.config.daemon.hold_grace_seconds
        stuck = max(lifecycle.SPOOL_STUCK_SECONDS, 3 * self.config.daemon.tick_seconds)
        for record in list(self.state.bundles.values()):
            if record.stage in QUERIED_STAGES and not queried:
                continue
            if record.stage in (Stage.CLAIMED, Stage.DONE):
                continue
            planned.append((record, lifecycle.next_step(record, now, grace, stuck)))
        self._retrieve_together(planned)
        for record, action in planned:
            if self.stopping.is_set():
                break
            self._act(record, action, now)
        self._release_together(now)
        self._prune(now)
        self._save()
        condor.give_back_memory()
        return next_check

    def _merge(self, tracked: List[BundleRecord], ads: List[condor.JobAd], now: float) -> None:
        """The answer into the records: only bundles whose jobs look different from last tick are gone through.

        A bundle whose answer is as last tick keeps last tick's entry in
        `_merged`: nothing made anew outlives the tick, so Python's cycle
        collector has no reason to walk the whole state again.
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
        self._strays([ad for bid, group in by_bundle.items() if bid not in self.state.bundles for ad in group])
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
        self._merged = merged

    def _strays(self, ads: List[condor.JobAd]) -> None:
        """Jobs of ours no record knows (the state was lost): let retrieved or never-spooled ones go."""
        clusters: Dict[int, List[condor.JobAd]] = {}
        for ad in ads:
            clusters.setdefault(ad.cluster, []).append(ad)
        for cluster, group in clusters.items():
            if all(ad.status == 4 and ad.stage_out_at for ad in group):
                try:
                    self.ap.release(cluster)
                except condor.Unreachable as exc:
                    self._unreachable(exc)
            elif all(ad.status == 5 and ad.hold_code == lifecycle.SPOOLING_HOLD_CODE for ad in group):
                self._remove(f"ClusterId == {cluster}")
            elif cluster not in self._warned_strays:
                self._warned_strays.add(cluster)
                log.warning(
                    "the access point holds jobs from this chtcd that no bundle record knows (state lost?); "
                    "they are left alone",
                    cluster=cluster,
                    bundle_id=group[0].bundle_id,
                )

    def _act(self, record: BundleRecord, action: lifecycle.Action, now: float) -> None:
        if isinstance(action, lifecycle.Wait):
            return
        if isinstance(action, (lifecycle.RetrieveEarly, lifecycle.Finish)) and not self._folder(record).is_dir():
            self._lost(record, "its folder was removed from the work area while its jobs ran", now)
            return
        if isinstance(action, lifecycle.RetrieveEarly):
            if self._retrieve(action.retrieve):
                for job_key in action.retrieve:
                    record.jobs[job_key.split(".")[1]].retrieved = True
                log.info("retrieved finished jobs early, before HTCondor's 10-day limit", bundle=record.name, jobs=len(action.retrieve))
        elif isinstance(action, lifecycle.Finish):
            if action.retrieve and not self._fetched.issuperset(action.retrieve) and not self._retrieve(action.retrieve):
                return
            record.outcome, record.reason = action.outcome, action.reason
            record.stage = Stage.READY
            self._save()  # commit point: outputs are in the work folder
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Vanished):
            if not self._vanished(record, action, now):
                return
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
            self._resubmit(record, action, now)

    def _retrieve_together(self, planned: List[Tuple[BundleRecord, lifecycle.Action]]) -> None:
        """One retrieve for every bundle finishing this tick (it takes job ids across clusters), not one each.

        Each bundle's own retrieve in `_act` then finds its jobs fetched. If the
        joint one fails, each bundle tries its own, so one bad bundle cannot
        hold the others back.
        """
        self._fetched = set()
        finishing = [
            action.retrieve
            for record, action in planned
            if isinstance(action, lifecycle.Finish) and action.retrieve and self._folder(record).is_dir()
        ]
        if len(finishing) < 2 or not self._may_call_schedd():
            return
        job_ids = [job_id for ids in finishing for job_id in ids]
        try:
            with self._step("retrieve"):
                self.ap.retrieve(job_ids)
        except condor.CondorError as exc:
            log.debug("joint retrieve failed; retrieving bundle by bundle", bundles=len(finishing), error=str(exc))
            return
        self._fetched.update(job_ids)

    def _retrieve(self, job_ids: List[str]) -> bool:
        if not self._may_call_schedd():
            return False
        try:
            with self._step("retrieve"):
                self.ap.retrieve(job_ids)
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return False
        return True

    def _vanished(self, record: BundleRecord, action: lifecycle.Vanished, now: float) -> bool:
        """Before reporting jobs lost, ask the history: a crash after a retrieve looks the same."""
        history = self._history(record)
        if history is None:
            return False
        retrieved = [ad for ad in history if ad.status == 4 and ad.stage_out_at]
        if retrieved and len(retrieved) >= len([j for j in record.jobs.values() if lifecycle.phase(j) == Phase.DONE]):
            record.outcome, record.reason = "delivered", None
            log.info("outputs were retrieved before a restart; delivering", bundle=record.name)
        else:
            record.outcome, record.reason = "vanished", action.reason
            log.error("jobs vanished before retrieval", bundle=record.name, cluster=record.cluster)
        record.stage = Stage.READY
        return True

    def _history(self, record: BundleRecord) -> Optional[List[condor.JobAd]]:
        if not self._may_call_schedd():
            return None
        try:
            return self.ap.history(f'{condor.BUNDLE_ATTR} == "{record.id}"')
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return None

    def _resubmit(self, record: BundleRecord, action: lifecycle.Resubmit, now: float) -> None:
        if action.remove_cluster is None:
            history = self._history(record)
            if history is None:
                return
            if any(ad.status == 4 or (ad.starts or 0) > 0 for ad in history):
                record.outcome, record.reason = "vanished", lifecycle.VANISHED_REASON
                record.stage = Stage.READY
                log.error("a submission from before a crash ran and left the queue", bundle=record.name)
                self._deliver(record, now)
                return
        elif not self._remove(f"ClusterId == {action.remove_cluster}"):
            return
        log.info("submitting again: the earlier attempt never got its inputs", bundle=record.name, cluster=record.cluster)
        record.cluster, record.jobs, record.stage = None, {}, Stage.CLAIMED
        self._submit(record, now)

    def _remove(self, constraint: str) -> bool:
        try:
            with self._step("remove"):
                self.ap.remove(constraint)
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return False
        return True

    # ---- deliver and release -------------------------------------------------------

    def _deliver(self, record: BundleRecord, now: float) -> None:
        folder = self._folder(record)
        if not folder.is_dir():
            found = self._find_delivered(record)
            if found is None:
                self._lost(record, "its folder was removed from the work area before delivery", now)
                return
            self._delivered(record, found, now)
            return
        with self._step("report"):
            report.write(folder, report.build(record, self.ap.name, now))
        target = free_name(self.layout.inbox, record.name)
        try:
            with self._step("deliver"):
                move_dir(folder, target)  # commit point: delivered
        except OSError as exc:
            record.last_error = f"could not move {record.name} into {self.layout.inbox}: {exc}"
            log.error("delivery failed; will retry next tick", bundle=record.name, error=str(exc))
            return
        self._delivered(record, target, now)

    def _delivered(self, record: BundleRecord, target: Path, now: float) -> None:
        shutil.rmtree(self.layout.work_slot(record.id), ignore_errors=True)
        record.delivered_at = now
        record.inbox_path = str(target)
        record.last_error = None
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

    def _find_delivered(self, record: BundleRecord) -> Optional[Path]:
        """After a crash between the delivery rename and the state save: find our folder by its report."""
        n = 1
        while True:
            candidate = self.layout.inbox / (record.name if n == 1 else f"{record.name}-{n}")
            if not candidate.exists():
                return None
            try:
                if json.loads((candidate / report.REPORT_NAME).read_text()).get("bundle_id") == record.id:
                    return candidate
            except (OSError, ValueError):
                pass
            n += 1

    def _release(self, record: BundleRecord, now: float) -> None:
        if record.cluster is not None:
            self._releasing.append(record)  # sent with the step's other releases by `_release_together`

    def _release_together(self, now: float) -> None:
        """One release (one edit, one remove) for every bundle released in this step, not one each."""
        records, self._releasing = self._releasing, []
        if not records or not self._may_call_schedd():
            return  # still `delivered`: released on a later tick
        try:
            with self._step("release"):
                self.ap.release([record.cluster for record in records])
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        for record in records:
            record.stage = Stage.RELEASED
            record.released_at = now

    def _lost(self, record: BundleRecord, why: str, now: float) -> None:
        """The user removed the folder from the work area: the inbox still gets a report saying so."""
        log.error("bundle folder missing", bundle=record.name, id=record.id, why=why)
        record.outcome, record.reason = "lost", why
        if record.cluster is not None:
            self._remove(f"ClusterId == {record.cluster}")
        target = free_name(self.layout.inbox, record.name)
        staging = self.layout.work_slot(record.id)
        staging.mkdir(parents=True, exist_ok=True)
        holder = staging / record.name
        holder.mkdir(exist_ok=True)
        report.write(holder, report.build(record, self.ap.name, now))
        move_dir(holder, target)
        shutil.rmtree(staging, ignore_errors=True)
        record.inbox_path, record.delivered_at, record.stage = str(target), now, Stage.DONE

    # ---- bookkeeping ---------------------------------------------------------------

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self.state.bundles.items() if r.stage == Stage.DONE and now - (r.delivered_at or r.claimed_at) > KEEP_DONE_SECONDS]:
            del self.state.bundles[key]

    def _save(self) -> None:
        with self._step("save"):
            self.store.save(self.state)

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        """Crash points around every durable step and schedd call, for the fault-injection tests."""
        crash_point(f"before-{name}")
        yield
        crash_point(f"after-{name}")

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
        kind = type(exc).__name__
        if kind != self._outage:
            log.error("access point unreachable; will retry", error=message)
        else:
            log.debug("access point still unreachable", attempt=self._failures + 1, error=message)
        self._outage = kind
        self._calls_allowed = False
        self._failures += 1
        self._skip_ticks = min(2 ** (self._failures - 1), 8) - 1

    def _recovered(self) -> None:
        if self._outage:
            log.info("access point reachable again")
            self._need_credentials = True
        self._outage = None
        self._failures = 0

    # ==== control: chtcd pause and cancel, carried out here (the requests are read by control.py) ====

    def _control(self, now: float) -> None:
        """The CLI's requests are taken up before anything is claimed, so a paused intake claims nothing."""
        from . import control

        control.apply(self, now)

    def cancel(self, record: BundleRecord, now: float) -> bool:
        """Remove a bundle's jobs, then deliver its folder as cancelled; False: try again on a later pass.

        Jobs are removed by bundle id, so a submit whose outcome is not yet known is covered too.
        """
        if record.stage in (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING):
            if not self._may_call_schedd() or not self._remove(f'{condor.BUNDLE_ATTR} == "{record.id}"'):
                return False
        record.outcome = "cancelled"
        record.reason = "cancelled with chtcd cancel; its jobs were removed from the access point"
        record.stage = Stage.READY
        self._save()
        log.info("bundle cancelled", bundle=record.name, id=record.id)
        self._deliver(record, now)
        return True

    # ==== end of control ====
