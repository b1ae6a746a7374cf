from chtcd import lifecycle
from chtcd.lifecycle import Finish, Forget, Phase, Release, Resubmit, Adopt, Vanished, Wait, next_step
from chtcd.state import BundleRecord, JobRecord, Stage

GRACE = 100.0


def record(stage=Stage.RUNNING, jobs=(), cluster=7):
    r = BundleRecord(id="b1", name="b", stage=stage, claimed_at=0.0, cluster=cluster)
    r.jobs = {str(j.proc): j for j in jobs}
    return r


def job(proc, status, **kw):
    return JobRecord(proc=proc, status=status, **kw)


def test_spooling_hold_is_not_a_hold():
    assert lifecycle.phase(job(0, 5, hold_code=16)) == Phase.SPOOLING
    assert lifecycle.phase(job(0, 5, hold_code=3)) == Phase.HELD


def test_running_bundle_waits():
    assert next_step(record(jobs=[job(0, 4), job(1, 2)]), 10, GRACE) == Wait()


def test_all_done_retrieves_every_job():
    action = next_step(record(jobs=[job(0, 4), job(1, 4)]), 10, GRACE)
    assert action == Finish(["7.0", "7.1"], "delivered")


def test_held_within_grace_waits_then_finishes_partial():
    r = record(jobs=[job(0, 4), job(1, 5, hold_code=3, entered_status_at=50.0)])
    assert next_step(r, 100.0, GRACE) == Wait()
    action = next_step(r, 151.0, GRACE)
    assert isinstance(action, Finish)
    assert action.retrieve == ["7.0"] and action.outcome == "partial"
    assert "hold" in action.reason


def test_all_jobs_gone_before_retrieval_is_vanished():
    assert isinstance(next_step(record(jobs=[job(0, 4, gone=True)]), 0, GRACE), Vanished)


def test_removed_job_that_left_counts_as_removed():
    action = next_step(record(jobs=[job(0, 4), job(1, 2, gone=True)]), 0, GRACE)
    assert action == Finish(["7.0"], "partial", action.reason)
    assert "removed" in action.reason


def test_after_delivery_release_then_forget():
    assert next_step(record(Stage.DELIVERED, [job(0, 4)]), 0, GRACE) == Release()
    assert next_step(record(Stage.RELEASED, [job(0, 4)]), 0, GRACE) == Wait()
    assert next_step(record(Stage.RELEASED, [job(0, 4, gone=True)]), 0, GRACE) == Forget()


def test_reconcile_after_crash():
    assert next_step(record(Stage.SUBMITTING, [], cluster=None), 0, GRACE) == Resubmit(None)
    assert next_step(record(Stage.SUBMITTED, [job(0, 5, hold_code=16)]), 0, GRACE) == Resubmit(7)
    assert next_step(record(Stage.SUBMITTED, [job(0, 1)]), 0, GRACE) == Adopt(7)


def test_spool_that_the_schedd_lost_is_submitted_again():
    r = record(jobs=[job(0, 5, hold_code=16)])
    r.spooled_at = 0.0
    assert next_step(r, 30.0, GRACE) == Wait()
    assert next_step(r, 61.0, GRACE) == Resubmit(7)
