"""The pipeline against the in-memory fake: fast checks of the flow's logic, not of HTCondor."""

import dataclasses
import os

import pytest
from fakes import drop, fake_pipeline, report
from structlog.testing import capture_logs

from chtcd import condor, lifecycle
from chtcd.restore import restore
from chtcd.state import Stage


@pytest.fixture
def env(tmp_path):
    return fake_pipeline(tmp_path)


def test_bundle_goes_out_and_comes_back(env):
    pipe, ap, layout = env
    drop(layout, "job", "queue 2")
    pipe.tick(1.0)
    assert not (layout.outbox / "job").exists()
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(2.0)
    assert not (layout.inbox / "job").exists()
    ap.set_status(cluster, 1, 4, exit_code=3)
    pipe.tick(3.0)
    rep = report(layout, "job")
    assert rep["outcome"] == "delivered"
    assert [j["exit_code"] for j in rep["jobs"]] == [0, 3]
    assert (layout.inbox / "job" / "out.1").read_text() == f"output of {cluster}.1\n"
    assert ap.clusters() == []
    pipe.tick(4.0)
    assert pipe.state.bundles[next(iter(pipe.state.bundles))].stage == Stage.DONE


def test_a_folder_still_being_written_is_looked_at_again_when_it_settles(tmp_path):
    """The tick's intake says when to look again: the outbox is watched without recursion, so no event
    from inside the folder would wake the daemon before the next tick."""
    pipe, ap, layout = fake_pipeline(tmp_path, daemon={"tick_seconds": 60, "settle_seconds": 5, "hold_grace_seconds": 100})
    now = 1_800_000_000.0
    folder = drop(layout, "copying")
    for path in (folder, *folder.iterdir()):
        os.utime(path, (now, now))  # its files were written just now (the tick's clock, not the wall clock)
    again = pipe.tick(now)
    assert again is not None and now < again <= now + 5
    assert (layout.outbox / "copying").is_dir() and "submit" not in ap.calls
    assert pipe.tick(again) is None
    assert not (layout.outbox / "copying").exists() and "submit" in ap.calls


def test_one_query_per_tick_for_all_bundles(env):
    pipe, ap, layout = env
    for n in range(3):
        drop(layout, f"b{n}")
    pipe.tick(1.0)
    ap.calls.clear()
    pipe.tick(2.0)
    assert ap.calls.count("query") == 1


def test_idle_daemon_makes_no_calls(env):
    pipe, ap, _ = env
    pipe.tick(1.0)
    pipe.tick(2.0)
    assert ap.calls == []


def test_rejected_bundle_comes_back_with_reason(env):
    pipe, ap, layout = env
    folder = layout.outbox / "bad"
    folder.mkdir()
    (folder / "data.txt").write_text("x")
    pipe.tick(1.0)
    rep = report(layout, "bad")
    assert rep["outcome"] == "rejected" and "no submit file" in rep["reason"]
    assert (layout.inbox / "bad" / "data.txt").read_text() == "x"
    assert "submit" not in ap.calls


def test_name_collision_in_inbox(env):
    pipe, ap, layout = env
    (layout.inbox / "bad").mkdir()
    (layout.outbox / "bad").mkdir()
    pipe.tick(1.0)
    assert report(layout, "bad-2")["outcome"] == "rejected"


def test_held_job_past_grace_is_delivered_and_removed(env):
    pipe, ap, layout = env
    drop(layout, "h", "queue 2")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    ap.set_status(cluster, 1, 5, now=10.0, hold_code=3, hold_reason="on_exit_hold was true")
    pipe.tick(50.0)
    assert not (layout.inbox / "h").exists()
    pipe.tick(111.0)
    rep = report(layout, "h")
    assert rep["outcome"] == "partial"
    held = [j for j in rep["jobs"] if j["state"] == "held"][0]
    assert held["hold_reason"] == "on_exit_hold was true" and "policy" in held["hint"]
    assert ap.clusters() == []


def test_during_an_outage_attempts_thin_out_and_nothing_is_lost(env):
    pipe, ap, layout = env
    drop(layout, "o")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.down = True
    ap.calls.clear()
    tried = []
    for t in range(2, 42):
        before = len(ap.calls)
        pipe.tick(float(t))
        assert len(ap.calls) - before <= 1, "at most one attempt per tick"
        if len(ap.calls) > before:
            tried.append(t)
    gaps = [b - a for a, b in zip(tried, tried[1:])]
    assert gaps == [1, 2, 4, 8, 8, 8, 8], f"attempts thin out as the outage lasts (ticks {tried})"
    assert pipe.outage.ongoing
    ap.down = False
    ap.set_status(cluster, 0, 4, exit_code=0)
    for t in range(12, 30):
        pipe.tick(float(t))
    assert report(layout, "o")["outcome"] == "delivered"


def intake_of_three(env, call: str, then) -> dict:
    """Bundles a, b and c dropped and taken in as one batch, ``then`` done as `call` is made the second time;
    the stages they end in."""
    pipe, ap, layout = env
    for name in ("a", "b", "c"):
        drop(layout, name)
    real = getattr(ap, call)

    def second(*args, **kwargs):
        if ap.calls.count(call) == 1:
            then()
        return real(*args, **kwargs)

    setattr(ap, call, second)
    try:
        pipe.intake(1.0)
    finally:
        setattr(ap, call, real)
    return {r.name: r.stage for r in pipe.state.bundles.values()}


def back_up_each_goes_out_once(pipe, ap) -> None:
    """The access point back: a few ticks later every bundle runs, each submitted once."""
    ap.down = False
    for t in range(2, 12):
        pipe.tick(float(t))
    assert sorted(job.ad.bundle_id for job in ap.jobs.values()) == sorted(pipe.state.bundles), "each bundle once"
    assert {r.stage for r in pipe.state.bundles.values()} == {Stage.RUNNING}


def test_outage_in_the_middle_of_a_batch_sends_the_rest_later_once_each(env):
    pipe, ap, layout = env
    stages = intake_of_three(env, "submit", lambda: setattr(ap, "down", True))
    assert stages == {"a": Stage.SUBMITTED, "b": Stage.SUBMITTING, "c": Stage.CLAIMED}, "no spool once the access point is gone"
    assert {r.name: r.stage for r in pipe.store.load().bundles.values()} == stages, "the batch's outcome is on disk"
    back_up_each_goes_out_once(pipe, ap)


def test_a_batch_is_submitted_whole_before_any_spool(env):
    pipe, ap, layout = env
    for name in ("a", "b", "c"):
        drop(layout, name)
    pipe.intake(1.0)
    sent = [c for c in ap.calls if c in ("submit", "spool")]
    assert sent == ["submit"] * 3 + ["spool"] * 3
    assert {r.stage for r in pipe.state.bundles.values()} == {Stage.RUNNING}


def test_outage_during_the_spools_leaves_the_rest_submitted_and_each_goes_out_once(env):
    pipe, ap, layout = env
    stages = intake_of_three(env, "spool", lambda: setattr(ap, "down", True))
    assert stages == {"a": Stage.RUNNING, "b": Stage.SUBMITTED, "c": Stage.SUBMITTED}
    assert ap.calls.count("spool") == 2, "the outage stops the batch's spools"
    back_up_each_goes_out_once(pipe, ap)


def test_a_stop_during_a_batch_spools_what_was_submitted_and_sends_nothing_more(env):
    pipe, ap, layout = env
    stages = intake_of_three(env, "submit", pipe.stopping.set)
    assert stages == {"a": Stage.RUNNING, "b": Stage.RUNNING, "c": Stage.CLAIMED}
    assert [c for c in ap.calls if c in ("submit", "spool")] == ["submit", "submit", "spool", "spool"]


def test_crash_after_claim_before_save_is_adopted(env):
    pipe, ap, layout = env
    slot = layout.work_slot("20260101-000000-abcdef")
    slot.mkdir()
    (slot / "orphan").mkdir()
    (slot / "orphan" / "orphan.sub").write_text("queue\n")
    restore(pipe.state, layout, 1.0)
    record = pipe.state.bundles["20260101-000000-abcdef"]
    assert (record.name, record.stage) == ("orphan", Stage.SUBMITTING)
    pipe.tick(1.0)
    assert "history" in ap.calls, "a bundle in doubt is looked up before it is sent again"
    assert [job.ad.bundle_id for job in ap.jobs.values()] == ["20260101-000000-abcdef"], "submitted once, under its id"
    assert record.stage == Stage.RUNNING and record.cluster == ap.clusters()[0]


def test_submitting_record_without_jobs_is_submitted_again(env):
    pipe, ap, layout = env
    drop(layout, "s")
    pipe.intake(1.0)
    rec = next(iter(pipe.state.bundles.values()))
    ap.jobs.clear()
    rec.stage, rec.cluster, rec.jobs = Stage.SUBMITTING, None, {}
    pipe.tick(2.0)
    assert len(ap.clusters()) == 1
    assert rec.stage == Stage.RUNNING


def test_finished_jobs_are_fetched_early_before_the_ten_day_limit(env):
    pipe, ap, layout = env
    drop(layout, "long", "queue 2")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0, completed_at=2.0)
    ap.set_status(cluster, 1, 2)
    pipe.tick(3.0)
    assert "retrieve" not in ap.calls
    pipe.tick(8 * 86400.0)
    assert ap.calls.count("retrieve") == 1
    work = layout.work_bundle(next(iter(pipe.state.bundles)), "long")
    assert (work / "out.0").exists() and not (work / "out.1").exists()
    ap.set_status(cluster, 1, 4, exit_code=0)
    pipe.tick(8 * 86400.0 + 1)
    assert ap.calls.count("retrieve") == 2
    assert report(layout, "long")["outcome"] == "delivered"


def test_crash_between_delivery_and_save_is_not_reported_lost(env):
    pipe, ap, layout = env
    drop(layout, "d")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    rec = next(iter(pipe.state.bundles.values()))
    pipe.tick(2.0)
    # as if the state save after the rename never happened
    rec.stage, rec.delivered_at, rec.inbox_path = Stage.READY, None, None
    pipe.tick(3.0)
    assert rec.outcome == "delivered" and rec.inbox_path.endswith("/d")
    assert not (layout.inbox / "d-2").exists()


def test_folder_deleted_from_work_area_still_gets_a_report(env):
    pipe, ap, layout = env
    drop(layout, "gone")
    pipe.tick(1.0)
    rec = next(iter(pipe.state.bundles.values()))
    import shutil

    shutil.rmtree(layout.work_bundle(rec.id, "gone"))
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    pipe.tick(2.0)
    assert report(layout, "gone")["outcome"] == "lost"
    assert ap.clusters() == []


def _gone_while_down(pipe, ap, layout, retrieved: bool):
    """A bundle whose jobs finished and left the queue while the daemon was down, with its last steps unsaved."""
    drop(layout, "r", "queue 2")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    for proc in (0, 1):
        ap.set_status(cluster, proc, 4, exit_code=0, stage_out_at=5.0 if retrieved else None)
    if retrieved:  # the crashed daemon's retrieve and release, which its saved state never heard of
        ap.retrieve([f"{cluster}.0", f"{cluster}.1"])
        ap.release(cluster)
    else:  # the jobs left without their outputs (removed, or dropped after ten days)
        ap.remove(f"ClusterId == {cluster}")
    assert ap.clusters() == []
    ap.calls.clear()
    pipe.tick(6.0)
    return next(iter(pipe.state.bundles.values()))


def test_jobs_gone_after_a_retrieve_before_a_crash_are_delivered_not_vanished(env):
    pipe, ap, layout = env
    record = _gone_while_down(pipe, ap, layout, retrieved=True)
    assert all(job.gone for job in record.jobs.values()), "the query no longer lists them"
    assert "history" in ap.calls, "the history is asked before the jobs are called vanished"
    assert report(layout, "r")["outcome"] == "delivered"
    assert (layout.inbox / "r" / "out.1").is_file()


def test_jobs_gone_without_a_retrieve_come_back_vanished(env):
    pipe, ap, layout = env
    _gone_while_down(pipe, ap, layout, retrieved=False)
    assert "history" in ap.calls
    rep = report(layout, "r")
    assert rep["outcome"] == "vanished" and rep["reason"] == lifecycle.VANISHED_REASON


def test_inbox_not_writable_is_retried_and_delivered_once(env, monkeypatch):
    import errno

    from chtcd import pipeline as pipeline_module

    pipe, ap, layout = env
    drop(layout, "w")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    real_move = pipeline_module.move_dir
    failures = []

    def refusing_move(src, dst):
        if not failures:
            failures.append(dst)
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real_move(src, dst)

    monkeypatch.setattr(pipeline_module, "move_dir", refusing_move)
    pipe.tick(2.0)
    assert not (layout.inbox / "w").exists()
    rec = next(iter(pipe.state.bundles.values()))
    assert "Permission denied" in rec.last_error
    pipe.tick(3.0)
    assert report(layout, "w")["outcome"] == "delivered"
    assert sorted(p.name for p in layout.inbox.iterdir()) == ["w"]
    assert ap.calls.count("retrieve") == 1


def test_status_warns_as_finished_outputs_near_the_ten_day_limit(env):
    from chtcd import glance, status

    pipe, ap, layout = env
    drop(layout, "near", "queue 2")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0, completed_at=2.0)
    ap.set_status(cluster, 1, 2)
    pipe.tick(3.0)
    rec = next(iter(pipe.state.bundles.values()))
    assert "warning" not in status.as_table(glance.Snapshot.of(pipe.state), 3.0)
    # seven days on: a daemon that was asleep all week has not yet fetched job 0
    rec.jobs["0"] = dataclasses.replace(rec.jobs["0"], retrieved=False)
    table = status.as_table(glance.Snapshot.of(pipe.state), 2.0 + 7 * 86400)
    assert "warning: finished outputs are dropped by the access point in 3d" in table
    assert status.bundle_summary(glance.of_record(rec), 2.0 + 7 * 86400)["outputs_expire_in_seconds"] == 3 * 86400


def test_a_refused_token_says_how_to_fetch_a_new_one(env):
    pipe, ap, layout = env
    drop(layout, "t")
    pipe.tick(1.0)

    def refused(client_id, *args):
        raise condor.AuthRefused("querying the queue: AUTHENTICATE:1003:Failed to authenticate with any method")

    ap.count_client = ap.query_client = refused
    with capture_logs() as logs:
        pipe.tick(2.0)
    (line,) = [e for e in logs if e["log_level"] == "error"]
    assert "refused the token" in line["event"]
    assert "ssh NETID@ap.fake condor_token_fetch" in line["error"] and "chtcd token fetch" in line["error"]
    assert str(pipe.config.pool.token_dir) in line["error"]


def test_stray_jobs_of_this_client_are_let_go_or_left_alone(env):
    """Jobs stamped with this client's id whose bundle no record knows (the state was lost)."""
    pipe, ap, layout = env
    drop(layout, "known")
    pipe.tick(1.0)
    stamps = condor.stamps("lost-bundle", pipe.state.client_id)
    description = ap.submitted[0]
    fetched = ap.submit(description, layout.outbox, stamps)  # retrieved before the state was lost
    ap.spool(fetched, layout.outbox)
    ap.set_status(fetched.cluster, 0, 4, exit_code=0, stage_out_at=3.0)
    waiting = ap.submit(description, layout.outbox, stamps)  # never got its inputs
    running = ap.submit(description, layout.outbox, stamps)  # still running: only the user knows what it is
    ap.spool(running, layout.outbox)
    ap.set_status(running.cluster, 0, 2)
    with capture_logs() as logs:
        pipe.tick(2.0)
        pipe.tick(3.0)
    clusters = ap.clusters()
    assert fetched.cluster not in clusters and waiting.cluster not in clusters
    assert running.cluster in clusters
    assert [ad.status for ad in ap.past if ad.cluster == fetched.cluster] == [4], "released, not removed"
    assert [ad.status for ad in ap.past if ad.cluster == waiting.cluster] == [3], "removed"
    warned = [e for e in logs if "no bundle record knows" in e["event"]]
    assert [e["cluster"] for e in warned] == [running.cluster], "said once, not every tick"
    (known,) = pipe.state.bundles.values()
    assert known.stage == Stage.RUNNING and known.cluster in clusters


def test_a_release_that_did_not_take_is_sent_again(env):
    pipe, ap, layout = env
    drop(layout, "rel")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0)
    real_release = ap.release
    ap.release = lambda clusters, keep=None: ap.calls.append("release")  # answered, but the jobs stay
    pipe.tick(2.0)
    (record,) = pipe.state.bundles.values()
    assert record.stage == Stage.RELEASED and ap.clusters() == [cluster]
    ap.release = real_release
    pipe.tick(3.0)
    assert ap.calls.count("release") == 1, "not again at once"
    pipe.tick(3.0 + lifecycle.RELEASE_RETRY_SECONDS + 1)
    assert ap.calls.count("release") == 2 and ap.clusters() == []
    pipe.tick(3.0 + lifecycle.RELEASE_RETRY_SECONDS + 2)
    assert record.stage == Stage.DONE
