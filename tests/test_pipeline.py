"""The pipeline against the in-memory fake: fast checks of the flow's logic, not of HTCondor."""

import dataclasses
import time

import pytest
from fakes import drop, fake_pipeline, report

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
    now = time.time()
    drop(layout, "copying")  # its files were written just now
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


def test_outage_is_retried_with_backoff_and_nothing_lost(env):
    pipe, ap, layout = env
    drop(layout, "o")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.down = True
    ap.calls.clear()
    for t in range(2, 12):
        pipe.tick(float(t))
    assert len(ap.calls) <= 4
    ap.down = False
    ap.set_status(cluster, 0, 4, exit_code=0)
    for t in range(12, 30):
        pipe.tick(float(t))
    assert report(layout, "o")["outcome"] == "delivered"


def test_outage_in_the_middle_of_a_batch_sends_the_rest_later_once_each(env):
    pipe, ap, layout = env
    for name in ("a", "b", "c"):
        drop(layout, name)
    submit = ap.submit

    def second_fails(*args, **kwargs):
        if ap.calls.count("submit") == 1:
            ap.down = True
        return submit(*args, **kwargs)

    ap.submit = second_fails
    pipe.intake(1.0)
    stages = {r.name: r.stage for r in pipe.state.bundles.values()}
    assert stages == {"a": Stage.RUNNING, "b": Stage.SUBMITTING, "c": Stage.CLAIMED}
    assert {r.name: r.stage for r in pipe.store.load().bundles.values()} == stages, "the batch's outcome is on disk"
    ap.down, ap.submit = False, submit
    for t in range(2, 12):
        pipe.tick(float(t))
    assert sorted(job.ad.bundle_id for job in ap.jobs.values()) == sorted(pipe.state.bundles), "each bundle once"
    assert {r.stage for r in pipe.state.bundles.values()} == {Stage.RUNNING}


def test_crash_after_claim_before_save_is_adopted(env):
    pipe, ap, layout = env
    slot = layout.work_slot("20260101-000000-abcdef")
    slot.mkdir()
    (slot / "orphan").mkdir()
    (slot / "orphan" / "orphan.sub").write_text("queue\n")
    restore(pipe.state, layout, 1.0)
    pipe.tick(1.0)
    assert ap.clusters() != []


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


def test_jobs_gone_after_a_retrieve_before_a_crash_are_delivered_not_vanished(env):
    pipe, ap, layout = env
    drop(layout, "r")
    pipe.tick(1.0)
    (cluster,) = ap.clusters()
    ap.set_status(cluster, 0, 4, exit_code=0, stage_out_at=5.0)
    pipe.tick(2.0)
    assert report(layout, "r")["outcome"] == "delivered"


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
