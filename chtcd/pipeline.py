"""The pipeline: outbox -> claim -> check -> submit and spool -> track -> retrieve -> deliver -> release.

`intake` takes new bundles in and submits them; `tick` is one full step with
`now` passed in: intake, a count and one query for what changed, then for each bundle
the action `lifecycle.next_step` chose. The daemon's scheduler, `run --once`
and the tests all call these same two methods.

Every transition is saved to the state store before the next irreversible
step; the comment ``commit point`` marks the step that makes each one durable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import bundle as bundles
from . import admission, condor, control, faults, idle, lifecycle, memory, report, tracking
from .atomic import free_name, move_dir
from .crashpoints import INJECTED, crash_point, failing
from .config import Config
from .layout import Layout
from .faults import Outage
from .lifecycle import Phase
from .log import get as get_logger
from .outbox import Outbox, claim, new_bundle_id, sync_claims
from .state import BundleRecord, Stage, State, Store
from .tracking import Tracker

log = get_logger("chtcd.pipeline")

KEEP_DONE_SECONDS = 7 * 86400.0
"""Finished bundles stay listed in `status` this long."""

SUBMIT_BATCH = 50
"""Bundles marked `submitting` by one save: after a crash, at most this many are looked up by id."""

QUERIED_STAGES = (Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING, Stage.DELIVERED, Stage.RELEASED)

def _change(record: BundleRecord, key: str, **fields: Any) -> None:
    """A job record with some fields changed: a new object (job records are frozen, so a save sees the change by identity)."""
    record.jobs[key] = dataclasses.replace(record.jobs[key], **fields)


class Pipeline:
    def __init__(self, config: Config, layout: Layout, store: Store, state: State, access_point: condor.Door):
        self.config = config
        self.layout = layout
        self.store = store
        self.state = state
        self.ap = access_point
        self.outbox = Outbox(layout.outbox, config.daemon.settle_seconds)
        self.stopping = threading.Event()
        self.outage = Outage()
        self.tracker = Tracker()
        self._warned_strays: set = set()
        self._need_credentials = True
        self._fetched: set = set()  # job ids retrieved together this tick
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
        claimed = [r for r in self.state.bundles.values() if r.stage == Stage.CLAIMED and not faults.waiting(r, now)]
        for start in range(0, len(claimed), SUBMIT_BATCH):
            if self.stopping.is_set() or not self.outage.calls_allowed:
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
        """Check each bundle, mark the good ones `submitting` in one save, submit them all, then spool them all.

        One save covers the batch because a `submitting` bundle is settled by its
        id on the next tick whatever happened to it (not on the schedd: submitted
        again; held for spooling: submitted again; spooled: adopted). A crash
        leaves at most the batch in doubt, and what was never sent goes back to
        `claimed`, so an outage costs no lookups. Submits go first because the
        schedd forks a worker for each spool's transfer (`spoolJobFiles`), and a
        submit that follows a spool waits on it: on the local pool, 40 small
        bundles went out in 0.85 of the time of submit-and-spool in turn.
        """
        checked = self._check(records, now)
        if not checked or not self._ensure_credentials():
            return
        for record, found in checked:
            record.submit_file = found.submit_file.name
            record.stage = Stage.SUBMITTING
        self._save()  # commit point: from here each one's submit is in doubt until it returns or is reconciled
        sent: List[Tuple[BundleRecord, condor.Submitted]] = []
        for n, (record, found) in enumerate(checked):
            if self.stopping.is_set() or not self.outage.calls_allowed:
                for unsent, _ in checked[n:]:
                    unsent.stage = Stage.CLAIMED
                break
            submitted = self._send(record, found, now)
            if submitted is not None:
                sent.append((record, submitted))
        for record, submitted in sent:  # spooled even when stopping: what was submitted is finished, not left in doubt
            if not self.outage.calls_allowed:
                break  # the rest stay `submitted`, held for spooling: settled by their ids like any in doubt
            self._upload(record, submitted, now)

    def _check(self, records: List[BundleRecord], now: float) -> List[Tuple[BundleRecord, bundles.Bundle]]:
        """The bundles that may be sent (`admission`), with what to send; the others go back with the reason."""
        present = []
        for record in records:
            if self._folder(record).is_dir():
                present.append(record)
            else:
                self._lost(record, "its folder was removed from the work area before it was submitted", now)
        verdicts = admission.examine(
            [self._folder(r) for r in present], self.config.submit_defaults(), self.config.limits.env_allowlist,
            int(self.config.limits.max_upload_mb * 1e6),
        )
        passed = []
        for record, verdict in zip(present, verdicts):
            if isinstance(verdict, admission.Refusal):
                self._reject(record, verdict.reason, now)
                continue
            record.notes = verdict.notes
            passed.append((record, verdict.found))
        return passed

    def _send(self, record: BundleRecord, found: bundles.Bundle, now: float) -> Optional[condor.Submitted]:
        """Submit one checked bundle; None if that failed. Its record is saved with the batch's next save.

        A submit that fails for this bundle alone leaves it `submitting`, on its own
        budget: a later tick settles it by its id and sends it again.
        """
        try:
            with self._step("submit"):
                submitted = self.ap.submit(found.description, self._folder(record), condor.stamps(record.id, self.state.client_id))
        except condor.Refused as exc:
            self._reject(record, str(exc), now)
            return None
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return None
        except condor.BundleFault as exc:
            self._trouble(record, exc, now)
            return None
        record.cluster = submitted.cluster
        record.job_count = submitted.procs
        record.submitted_at = now
        record.jobs = tracking.spooling(submitted.procs)
        record.stage = Stage.SUBMITTED
        return submitted

    def _upload(self, record: BundleRecord, submitted: condor.Submitted, now: float) -> None:
        """Spool a submitted bundle's inputs; one that fails stays `submitted`, on its own budget, settled by its id."""
        try:
            with self._step("spool"):
                self._spool(submitted, self._folder(record))
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        except condor.BundleFault as exc:
            self._trouble(record, exc, now)
            return
        record.spooled_at = now
        record.stage = Stage.RUNNING
        self._answered()
        self._cleared(record)
        log.info("submitted bundle", bundle=record.name, id=record.id, cluster=record.cluster, jobs=record.job_count)

    def _spool(self, submitted: condor.Submitted, folder: Path) -> None:
        if failing("spool", folder.name):
            self.ap.remove(f"ClusterId == {submitted.cluster}")  # as the schedd does when a spool fails
            raise condor.BundleFault(f"spooling the inputs of cluster {submitted.cluster}: {INJECTED}")
        self.ap.spool(submitted, folder)

    def _reject(self, record: BundleRecord, reason: str, now: float) -> None:
        record.outcome = "rejected"
        record.reason = reason
        record.stage = Stage.READY
        log.warning("bundle rejected", bundle=record.name, reason=reason)
        self._deliver(record, now)

    # ---- the tick -------------------------------------------------------------------

    def tick(self, now: float) -> Optional[float]:
        """The tick's intake, a count and one query for what changed (`tracking`), then what each bundle needs.

        Returns when to look at the outbox again.
        """
        self.outage.open_tick()
        next_check = self.intake(now)
        tracked = [r for r in self.state.bundles.values() if r.stage in QUERIED_STAGES]
        queried, ask, answer = False, None, 0
        if tracked and self._may_call_schedd():
            client = self.state.client_id
            try:
                with self._step("query"):
                    in_full = tracking.listed(self.state.bundles)
                    count = self.ap.count_client(client, in_full)
                    ask = self.tracker.ask(tracked, in_full, count, now)
                    if ask.full:  # a page at a time: the bindings hold each answer whole, as ClassAds
                        ads = [ad for page in tracking.pages(tracked) for ad in self.ap.query_client(client, None, ask.listed, page)]
                    else:
                        ads = self.ap.query_client(client, ask.since, ask.listed)
            except condor.Unreachable as exc:
                self._unreachable(exc)
            else:
                self._answered()
                self._strays(self.tracker.merge(tracked, self.state.bundles, ads, now, ask, count))
                queried, answer = True, len(ads)
        log.debug("tick", tracked=len(tracked), queried=queried, asked=ask and ask.why, answer=answer)
        planned = []
        daemon = self.config.daemon
        stuck = max(lifecycle.SPOOL_STUCK_SECONDS, 3 * daemon.tick_seconds)
        for record in list(self.state.bundles.values()):
            if record.stage in QUERIED_STAGES and not queried:
                continue
            if record.stage in (Stage.CLAIMED, Stage.DONE):
                continue
            if record.stage == Stage.RUNNING and not faults.in_trouble(record) and self.tracker.tally(record).steady:
                continue  # its jobs only wait or run: `next_step` would wait (see `tracking.Tally.steady`)
            planned.append((record, lifecycle.next_step(record, now, daemon.hold_grace_seconds, stuck, daemon.fault_grace_seconds)))
        self._retrieve_together(planned)
        for record, action in planned:
            if self.stopping.is_set():
                break
            self._act(record, action, now)
        self._release_together(now)
        if queried:
            self._explain_idle(now)
        self._prune(now)
        self._save()
        memory.give_back_memory()
        return next_check

    def _strays(self, ads: List[condor.JobAd]) -> None:
        """Jobs of ours no record knows (the state was lost): let retrieved or never-spooled ones go."""
        clusters: Dict[int, List[condor.JobAd]] = {}
        for ad in ads:
            clusters.setdefault(ad.cluster, []).append(ad)
        for cluster, group in clusters.items():
            try:
                if all(ad.status == 4 and ad.stage_out_at for ad in group):
                    self.ap.release(cluster)
                elif all(ad.status == 5 and ad.hold_code == lifecycle.SPOOLING_HOLD_CODE for ad in group):
                    self.ap.remove(f"ClusterId == {cluster}")
                elif cluster not in self._warned_strays:
                    self._warned_strays.add(cluster)
                    log.warning(
                        "the access point holds jobs from this chtcd that no bundle record knows (state lost?); "
                        "they are left alone",
                        cluster=cluster,
                        bundle_id=group[0].bundle_id,
                    )
            except condor.Unreachable as exc:
                self._unreachable(exc)
                return
            except condor.BundleFault as exc:
                log.debug("could not let go of a stray cluster; tried again next tick", cluster=cluster, error=str(exc))

    def _act(self, record: BundleRecord, action: lifecycle.Action, now: float) -> None:
        if isinstance(action, lifecycle.Wait):
            return
        if isinstance(action, (lifecycle.RetrieveEarly, lifecycle.Finish)) and not self._folder(record).is_dir():
            self._lost(record, "its folder was removed from the work area while its jobs ran", now)
            return
        if isinstance(action, lifecycle.RetrieveEarly):
            if self._retrieve(record, action.retrieve, now):
                for job_key in action.retrieve:
                    _change(record, job_key.split(".")[1], retrieved=True)
                log.info("retrieved finished jobs early, before HTCondor's 10-day limit", bundle=record.name, jobs=len(action.retrieve))
        elif isinstance(action, lifecycle.Finish):
            if action.retrieve and not self._fetched.issuperset(action.retrieve) and not self._retrieve(record, action.retrieve, now):
                return
            record.outcome, record.reason = action.outcome, action.reason
            record.stage = Stage.READY
            self._cleared(record)
            self._save()  # commit point: outputs are in the work folder
            self._deliver(record, now)
        elif isinstance(action, lifecycle.GiveUp):
            self._give_up(record, action, now)
        elif isinstance(action, lifecycle.Vanished):
            if not self._vanished(record, action, now):
                return
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Deliver):
            self._deliver(record, now)
        elif isinstance(action, lifecycle.Release):
            self._release(record, now)
        elif isinstance(action, lifecycle.Forget):
            if faults.in_trouble(record):
                log.warning("giving up releasing a bundle's jobs; HTCondor drops them within 10 days", bundle=record.name, error=record.last_error)
            record.stage = Stage.DONE
        elif isinstance(action, lifecycle.Adopt):
            record.stage = Stage.RUNNING
            record.spooled_at = record.spooled_at or now
            self._cleared(record)
            log.info("adopted cluster after restart", bundle=record.name, cluster=action.cluster)
        elif isinstance(action, lifecycle.Resubmit):
            self._resubmit(record, action, now)

    def _give_up(self, record: BundleRecord, action: lifecycle.GiveUp, now: float) -> None:
        """The grace period of its trouble is over: back to the inbox with what there is, and why."""
        log.error("giving up on a bundle in trouble; it comes back with what could be fetched", bundle=record.name,
                  outcome=action.outcome, attempts=record.failures, error=record.last_error)
        if action.outcome == "rejected":
            if not self._remove(f'{condor.BUNDLE_ATTR} == "{record.id}"', record, now):
                return
            record.cluster, record.jobs = None, {}
        for proc in action.unfetched:
            _change(record, str(proc), fetch_error=record.jobs[str(proc)].fetch_error or record.last_error)
        record.outcome, record.reason = action.outcome, action.reason
        record.stage = Stage.READY
        self._save()  # commit point: what will come back is decided
        self._deliver(record, now)

    def _retrieve_together(self, planned: List[Tuple[BundleRecord, lifecycle.Action]]) -> None:
        """One retrieve for every bundle finishing this tick (it takes job ids across clusters), not one each.

        Each bundle's own retrieve in `_act` then finds its jobs fetched. If the
        joint one fails for anything but an outage, each bundle tries its own, so
        one bad bundle cannot hold the others back.
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
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return
        except condor.CondorError as exc:
            log.debug("joint retrieve failed; retrieving bundle by bundle", bundles=len(finishing), error=str(exc))
            return
        self._fetched.update(job_ids)

    def _retrieve(self, record: BundleRecord, job_ids: List[str], now: float) -> bool:
        """Fetch these jobs' outputs; True when all came. A failure is the bundle's, and is narrowed to its jobs."""
        failed = self._fetch(record, job_ids, now)
        if failed is None:
            return False
        if not failed:
            return True
        for jid, error in failed.items():
            _change(record, jid.split(".")[1], fetch_error=error)
        first = sorted(failed)[0]
        self._trouble(record, f"{len(failed)} of {len(job_ids)} jobs' outputs could not be fetched: job {first}: {failed[first]}", now)
        return False

    def _fetch(self, record: BundleRecord, job_ids: List[str], now: float) -> Optional[Dict[str, str]]:
        """Retrieve, and when the access point answers with an error, retrieve again in halves down to single jobs.

        Returns the jobs that failed alone, with their errors: the siblings of a
        bad job get their outputs. None when an outage or this computer (a full
        disk) stopped it: what was fetched so far is marked, the rest waits.
        """
        failed: Dict[str, str] = {}
        pending = [job_ids]
        while pending:
            part = pending.pop()
            if not part:
                continue
            if not self._may_call_schedd():
                return None
            try:
                with self._step("retrieve"):
                    self.ap.retrieve(part)
            except condor.Unreachable as exc:
                self._unreachable(exc)
                return None
            except condor.LocalFault as exc:
                self._trouble(record, exc, now)
                return None
            except condor.BundleFault as exc:
                if len(part) == 1:
                    failed[part[0]] = str(exc)
                else:
                    pending += [part[: len(part) // 2], part[len(part) // 2 :]]
                continue
            for jid in part:
                _change(record, jid.split(".")[1], retrieved=True, fetch_error=None)
        return failed

    def _vanished(self, record: BundleRecord, action: lifecycle.Vanished, now: float) -> bool:
        """Before reporting jobs lost, ask the history: a crash after a retrieve looks the same."""
        history = self._history(record, now)
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

    def _history(self, record: BundleRecord, now: float) -> Optional[List[condor.JobAd]]:
        if not self._may_call_schedd():
            return None
        try:
            return self.ap.history(f'{condor.BUNDLE_ATTR} == "{record.id}"')
        except condor.Unreachable as exc:
            self._unreachable(exc)
        except condor.BundleFault as exc:
            self._trouble(record, exc, now)
        return None

    def _resubmit(self, record: BundleRecord, action: lifecycle.Resubmit, now: float) -> None:
        if action.remove_cluster is None:
            history = self._history(record, now)
            if history is None:
                return
            if any(ad.status == 4 or (ad.starts or 0) > 0 for ad in history):
                record.outcome, record.reason = "vanished", lifecycle.VANISHED_REASON
                record.stage = Stage.READY
                log.error("a submission from before a crash ran and left the queue", bundle=record.name)
                self._deliver(record, now)
                return
        elif not self._remove(f"ClusterId == {action.remove_cluster}", record, now):
            return
        if faults.in_trouble(record):
            log.info("sending a bundle in trouble again", bundle=record.name, attempt=record.failures + 1)
        else:
            log.info("submitting again: the earlier attempt never got its inputs", bundle=record.name, cluster=record.cluster)
        record.cluster, record.jobs, record.stage = None, {}, Stage.CLAIMED
        self._submit(record, now)

    def _remove(self, constraint: str, record: Optional[BundleRecord] = None, now: float = 0.0) -> bool:
        try:
            with self._step("remove"):
                self.ap.remove(constraint)
        except condor.Unreachable as exc:
            self._unreachable(exc)
            return False
        except condor.BundleFault as exc:
            if record is not None:
                self._trouble(record, exc, now)
            else:
                log.warning("could not remove jobs; tried again later", constraint=constraint, error=str(exc))
            return False
        return True

    EXPLAIN_PER_TICK = 2
    """Idle bundles explained in one tick (two queries each); the others wait for the next tick."""

    def _explain_idle(self, now: float) -> None:
        """Why jobs idle past `explain_idle_after_seconds` do not start (`idle`): once, then at most hourly."""
        after, budget = self.config.daemon.explain_idle_after_seconds, self.EXPLAIN_PER_TICK
        for record in self.state.bundles.values():
            counted = self.tracker.tally(record) if record.stage == Stage.RUNNING else None
            if record.idle is not None and not (counted.idle if counted is not None else idle.still_idle(record)):
                record.idle = None  # they started, or left: the explanation no longer holds
            if not budget or not self._may_call_schedd():
                continue
            proc = idle.due(record, now, after) if counted is None else idle.due(record, now, after, counted.oldest_idle)
            if proc is None or record.cluster is None:
                continue
            budget -= 1
            record.idle_explained_at = now  # tried: whatever the answer, not again within the hour
            try:
                facts = self.ap.idle_facts(record.cluster, proc)
            except condor.Unreachable as exc:
                self._unreachable(exc)
                return
            except condor.CondorError as exc:
                log.warning("could not work out why jobs are idle; trying again in an hour", bundle=record.name, error=str(exc))
                continue
            record.idle = idle.explain(facts, now)
            log.warning("jobs idle", bundle=record.name, why=record.idle["summary"], hints=record.idle["hints"])

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
        target = free_name(self.layout.inbox, record.name)
        try:
            with self._step("report"):
                report.write(folder, report.build(record, self.ap.name, now))
            with self._step("deliver"):
                move_dir(folder, target)  # commit point: delivered
        except OSError as exc:
            where = exc.filename or self.layout.inbox
            self._trouble(record, condor.local_fault(f"could not deliver {record.name} into {self.layout.inbox} ({where}: {exc.strerror})", exc.errno), now)
            return
        self._delivered(record, target, now)

    def _delivered(self, record: BundleRecord, target: Path, now: float) -> None:
        shutil.rmtree(self.layout.work_slot(record.id), ignore_errors=True)
        record.delivered_at = now
        record.inbox_path = str(target)
        faults.clear(record)
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
        """One release (one edit, one remove) for every bundle released in this step, not one each.

        If it fails for anything but an outage, each bundle is released on its own, so that
        the failure lands on the bundle it belongs to. Jobs whose outputs never came are kept.
        """
        records, self._releasing = self._releasing, []
        if not records or not self._may_call_schedd():
            return  # still `delivered`: released on a later tick
        groups = [records] if len(records) > 1 else []
        groups += [[record] for record in records]
        done: set = set()
        for group in groups:
            group = [r for r in group if r.id not in done]
            if not group or not self._may_call_schedd():
                continue
            keep = {r.cluster: [j.proc for j in r.jobs.values() if j.fetch_error is not None] for r in group if r.cluster is not None}
            try:
                with self._step("release"):
                    self.ap.release([r.cluster for r in group if r.cluster is not None], keep=keep)
            except condor.Unreachable as exc:
                self._unreachable(exc)
                return
            except condor.BundleFault as exc:
                if len(group) == 1:
                    self._trouble(group[0], exc, now)
                continue
            for record in group:
                done.add(record.id)
                record.stage = Stage.RELEASED
                record.released_at = now
                self._cleared(record)

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
        except condor.BundleFault as exc:
            log.warning("could not add credentials at the credd; jobs may go on hold with 'Job credentials not available'", error=str(exc))
            found = True
        if not found:
            log.warning(
                "no credd found for the access point; jobs may go on hold with 'Job credentials not available'",
                access_point=self.ap.name,
            )
        self._need_credentials = False
        return True

    # ---- faults: the outage and each bundle's trouble (rules in faults.py) ------------

    def _may_call_schedd(self) -> bool:
        return self.outage.calls_allowed

    def _unreachable(self, exc: condor.Unreachable) -> None:
        self.outage.failed(exc, self.ap.name, str(self.config.pool.token_dir))

    def _answered(self) -> None:
        if self.outage.answered():
            self._need_credentials = True

    def _trouble(self, record: BundleRecord, error: Any, now: float) -> None:
        """A step of this bundle alone failed: said once, then retried on the bundle's own backoff."""
        text = str(error)
        if faults.charge(record, text, now, self.config.daemon.tick_seconds):
            grace = self.config.daemon.fault_grace_seconds
            log.warning(
                f"{record.name} is in trouble; the other bundles go on, and chtcd tries it again on its own",
                bundle=record.name,
                error=text,
                gives_up_after=f"{grace / 3600:g} h" if grace >= 3600 else f"{grace:g} s",
            )
        else:
            log.debug("bundle still in trouble", bundle=record.name, attempt=record.failures, error=text)

    def _cleared(self, record: BundleRecord) -> None:
        attempts = record.failures
        if faults.clear(record):
            log.info(f"{record.name} is moving again", bundle=record.name, after_attempts=attempts)

    # ==== control: chtcd pause and cancel, carried out here (the requests are read by control.py) ====

    def _control(self, now: float) -> None:
        """The CLI's requests, taken up before anything is claimed, so a paused intake claims nothing.

        A cancel that cannot reach the schedd stays for the next pass; a retry
        makes a bundle in trouble due at once.
        """
        asked = control.pending(self.layout)
        if asked.paused != self.state.paused:
            self.state.paused = asked.paused
            if asked.paused:
                log.info("intake paused: new bundles wait in the outbox; bundles in flight are still tracked")
            else:
                log.info("intake resumed")
        for name in asked.cancel:
            records = [r for r in self.state.bundles.values() if r.name == name and r.stage in control.CANCELLABLE]
            if not records:
                log.info("nothing to cancel: no bundle of that name is in flight", bundle=name)
            if all([self.cancel(record, now) for record in records]):
                control.done(self.layout, "cancel", name)
        for name in asked.retry:
            for record in control.in_trouble(self.state, name):
                record.retry_at = None
                log.info("trying a bundle in trouble again now, as asked", bundle=name, attempts=record.failures)
            control.done(self.layout, "retry", name)

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
