"""A fault belongs to whoever it is about: the classification, each bundle's budget, and the pipeline around them.

The error texts below are the exact ones the local pool's schedd and the
htcondor2 bindings produced (HTCondor 23.9 daemons, bindings 25.x), each with
the fault that provoked it. The pool tests in test_pool_faults.py inject the
same faults on the real pool.
"""

from __future__ import annotations

import dataclasses


import pytest
from fakes import drop, fake_pipeline, report

from chtcd import condor, faults, lifecycle
from chtcd.state import BundleRecord, JobRecord, Stage

# (what was done on the pool, the exception's text, its class)
RECORDED = [
    ("output removed from the job's spool folder, then retrieve",
     "DCSchedd::receiveJobSandbox:7003:File transfer failed for target job 1.0: SCHEDD at 127.0.0.1 failed to send "
     "file(s) to <127.0.0.1:5091>: |Error: reading from file /var/spool/condor/1/0/cluster1.proc0.subproc0/result.txt: "
     "(errno 2) No such file or directory; TOOL failed to receive file(s) from <127.0.0.1:19618>", "remote"),
    ("retrieve into a full 1 MB tmpfs",
     "DCSchedd::receiveJobSandbox:7003:File transfer failed for target job 2.0: TOOL at 127.0.0.1 - |Error: writing "
     "to file /tmp/errs/small/b/result.txt: (errno 28) No space left on device", "local"),
    ("retrieve into a read-only mount",
     "DCSchedd::receiveJobSandbox:7003:File transfer failed for target job 2.0: TOOL at 127.0.0.1 - |Error: writing "
     "to file /tmp/errs/small/b/result.txt: (errno 30) Read-only file system", "local"),
    ("spool after an input was deleted locally",
     "DCSchedd::spoolJobFiles:7002:File transfer failed for target job 3.0: TOOL at 127.0.0.1 failed to send file(s) "
     "to <127.0.0.1:19618>: |Error: 1 total failures: first failure: reading from file /tmp/errs/c/data.txt: (errno 2) "
     "No such file or directory; SCHEDD failed to receive file(s) from <127.0.0.1:29915>", "local"),
    ("spool of a cluster removed meanwhile",
     "DCSchedd::spoolJobFiles:7002:File transfer failed for target job 4.0: Failed to receive GoAhead message from 127.0.0.1.",
     "unknown"),
    ("query of a schedd that is not listening", "Failed to fetch ads from schedd, errmsg=CEDAR:6001:Failed to connect to <127.0.0.1:9>", "unreachable"),
    ("retrieve from a schedd that is not listening", "DCSchedd::receiveJobSandbox:6001:Failed to connect to schedd", "unreachable"),
    ("edit on a schedd that is not listening", "Failed to connect to schedd.", "unreachable"),
    ("remove on a schedd that is not listening", "Error when performing action on the schedd.", "unknown"),
    ("history of a schedd that is not listening", "Failed to connect to <127.0.0.1:9>", "unreachable"),
    ("submit to a schedd that is not listening", "Failed to connect to schedd, errmsg=CEDAR:6001:Failed to connect to <127.0.0.1:9>", "unreachable"),
    ("locate with the collector down", "Failed communication with collector.", "unreachable"),
    ("query with a token whose signature is wrong",
     "Failed to fetch ads from schedd, errmsg=AUTHENTICATE:1003:Failed to authenticate with any method|AUTHENTICATE:1004:"
     "Failed to authenticate using IDTOKENS|AUTHENTICATE:1004:Failed to authenticate using FS|FS:1004:Directory name "
     "doesn't match server's network address.", "auth"),
    ("retrieve with a token whose signature is wrong",
     "AUTHENTICATE:1003:Failed to authenticate with any method|AUTHENTICATE:1004:Failed to authenticate using IDTOKENS",
     "auth"),
    ("history with a token whose signature is wrong", "Failed to authenticate with any method", "auth"),
    ("edit matching no job", "Unable to edit jobs matching constraint", "unknown"),
]


@pytest.mark.parametrize("what,text,kind", RECORDED, ids=[r[0] for r in RECORDED])
def test_errors_are_classed_by_the_ids_and_sides_htcondor_names(what, text, kind):
    assert condor.classify(text) == kind


def test_a_message_that_merely_says_permission_denied_is_not_a_refused_token():
    text = ("DCSchedd::receiveJobSandbox:7003:File transfer failed for target job 5.0: SCHEDD at 127.0.0.1 failed to "
            "send file(s) to <127.0.0.1:1>: |Error: reading from file /spool/x: (errno 13) Permission denied")
    assert condor.classify(text) == "remote"


def test_local_faults_say_what_to_do_by_their_errno():
    assert isinstance(condor.local_fault("x", 28), condor.DiskFull)
    assert "free some space" in str(condor.local_fault("x", 28))
    assert "writable" in str(condor.local_fault("x", 30))
    assert condor.errno_of(RECORDED[1][1]) == 28


class _Schedd:
    """Stands in for the bindings' Schedd: `retrieve` raises what the real one said; `query` answers or not."""

    def __init__(self, retrieve_error: str, answers: bool):
        self.retrieve_error, self.answers = retrieve_error, answers

    def retrieve(self, ids):
        raise RuntimeError(self.retrieve_error)

    def query(self, *args, **kwargs):
        if not self.answers:
            raise RuntimeError("Failed to fetch ads from schedd, errmsg=CEDAR:6001:Failed to connect to <127.0.0.1:9>")
        return []


def _door(schedd: _Schedd) -> condor.AccessPoint:
    door = condor.AccessPoint.__new__(condor.AccessPoint)
    door.name, door.collector_host, door._schedd = "ap.test", "127.0.0.1:1", schedd
    door._connect = lambda: schedd  # type: ignore[method-assign]
    return door


def test_an_ambiguous_failure_is_the_bundles_when_the_schedd_still_answers():
    with pytest.raises(condor.BundleFault) as caught:
        _door(_Schedd("Error when performing action on the schedd.", answers=True)).retrieve(["1.0"])
    assert not isinstance(caught.value, condor.LocalFault)


def test_an_ambiguous_failure_is_an_outage_when_the_schedd_does_not_answer():
    with pytest.raises(condor.Unreachable):
        _door(_Schedd("Error when performing action on the schedd.", answers=False)).retrieve(["1.0"])


def test_a_missing_output_on_the_access_point_is_the_bundles_and_a_full_disk_is_local():
    with pytest.raises(condor.BundleFault) as remote:
        _door(_Schedd(RECORDED[0][1], answers=True)).retrieve(["1.0"])
    assert not isinstance(remote.value, condor.LocalFault) and "errno 2" in str(remote.value)
    with pytest.raises(condor.DiskFull):
        _door(_Schedd(RECORDED[1][1], answers=True)).retrieve(["2.0"])


# ---- a bundle's budget -----------------------------------------------------------------------


def _record(**fields) -> BundleRecord:
    return BundleRecord(id="b1", name="b", stage=Stage.RUNNING, claimed_at=0.0, **fields)


def test_a_bundles_retries_thin_out_and_keep_its_first_error():
    record = _record()
    gaps = []
    for n, now in enumerate((100.0, 200.0, 300.0, 400.0, 500.0)):
        first = faults.charge(record, f"error {n}", now, tick=60.0)
        assert first == (n == 0)
        gaps.append(record.retry_at - now)
    assert gaps == [60.0, 120.0, 240.0, 480.0, 960.0]
    assert (record.failures, record.first_error, record.first_error_at, record.last_error) == (5, "error 0", 100.0, "error 4")
    for _ in range(20):
        faults.charge(record, "again", 600.0, tick=60.0)
    assert record.retry_at - 600.0 == faults.MAX_RETRY_SECONDS
    assert faults.clear(record) and not faults.in_trouble(record) and record.failures == 0


def test_a_bundle_waiting_on_its_backoff_is_left_alone_until_due():
    record = _record(jobs={"0": JobRecord(proc=0, status=4)}, cluster=7, spooled_at=1.0)
    faults.charge(record, "boom", 100.0, tick=60.0)
    assert isinstance(lifecycle.next_step(record, 159.0, 100.0), lifecycle.Wait)
    assert isinstance(lifecycle.next_step(record, 160.0, 100.0), lifecycle.Finish)


def test_after_the_grace_a_bundle_comes_back_partial_or_failed_naming_the_unfetched_jobs():
    jobs = {"0": JobRecord(proc=0, status=4, retrieved=True), "1": JobRecord(proc=1, status=4, fetch_error="gone")}
    record = _record(jobs=jobs, cluster=7, spooled_at=1.0)
    faults.charge(record, "reading from file result.txt: (errno 2)", 100.0, tick=60.0)
    record.retry_at = None
    assert isinstance(lifecycle.next_step(record, 100.0 + 99, 100.0, fault_grace=100.0), lifecycle.Finish)
    action = lifecycle.next_step(record, 200.0, 100.0, fault_grace=100.0)
    assert isinstance(action, lifecycle.GiveUp)
    assert (action.outcome, action.unfetched) == ("partial", [1])
    assert "condor_transfer_data 7.1" in action.reason and "errno 2" in action.reason
    jobs["0"] = dataclasses.replace(jobs["0"], retrieved=False)
    assert lifecycle.next_step(record, 200.0, 100.0, fault_grace=100.0).outcome == "failed"


def test_a_bundle_that_could_never_be_sent_comes_back_rejected():
    record = BundleRecord(id="b1", name="b", stage=Stage.SUBMITTED, claimed_at=0.0, cluster=3,
                          jobs={"0": JobRecord(proc=0, status=5, hold_code=16)})
    faults.charge(record, "spooling: injected", 10.0, tick=1.0)
    record.retry_at = None
    action = lifecycle.next_step(record, 20.0, 100.0, fault_grace=5.0)
    assert isinstance(action, lifecycle.GiveUp) and action.outcome == "rejected" and "injected" in action.reason


# ---- the pipeline: the others go on ---------------------------------------------------------


@pytest.fixture
def env(tmp_path):
    return fake_pipeline(tmp_path, daemon={"tick_seconds": 1, "settle_seconds": 0, "hold_grace_seconds": 100,
                                           "fault_grace_seconds": 50})


def _finish_all(ap):
    for cluster in ap.clusters():
        for (c, proc) in [k for k in ap.jobs if k[0] == cluster]:
            ap.set_status(c, proc, 4, exit_code=0)


def test_one_unfetchable_job_holds_back_neither_its_siblings_nor_other_bundles(env):
    pipe, ap, layout = env
    drop(layout, "bad", queue="queue 4")
    drop(layout, "good")
    pipe.tick(1.0)
    _finish_all(ap)
    bad = {r.name: r for r in pipe.state.bundles.values()}["bad"]
    ap.unfetchable[f"{bad.cluster}.2"] = "reading from file result.txt: (errno 2) No such file or directory"
    pipe.tick(2.0)
    assert (layout.inbox / "good").is_dir() and not (layout.inbox / "bad").exists()
    folder = pipe.layout.work_bundle(bad.id, "bad")
    assert sorted(p.name for p in folder.glob("out.*")) == ["out.0", "out.1", "out.3"]
    assert [k for k, j in bad.jobs.items() if j.fetch_error] == ["2"]
    assert not pipe.outage.ongoing and bad.failures == 1
    retrieves = ap.calls.count("retrieve")
    for t in range(3, 50):
        pipe.tick(float(t))
    assert ap.calls.count("retrieve") - retrieves <= 6, "retried on the bundle's backoff, not every tick"
    assert ap.calls.count("query") >= 40, "the other ticks went on as usual"
    pipe.tick(52.0)
    rep = report(layout, "bad")
    assert rep["outcome"] == "partial" and "condor_transfer_data" in rep["reason"]
    unfetched = [j for j in rep["jobs"] if j.get("fetch_error")]
    assert [j["job"] for j in unfetched] == [f"{bad.cluster}.2"] and "errno 2" in unfetched[0]["fetch_error"]
    assert unfetched[0]["files_not_fetched"] == ["result.txt"]
    for _ in range(3):
        pipe.tick(60.0)
    assert list(ap.jobs) == [(bad.cluster, 2)], "the unfetched job is left on the access point, the rest released"


def test_a_full_disk_is_the_bundles_trouble_not_an_outage_and_it_arrives_once_there_is_room(env):
    pipe, ap, layout = env
    drop(layout, "big")
    pipe.tick(1.0)
    _finish_all(ap)
    ap.disk_full = True
    for t in range(2, 10):
        pipe.tick(float(t))
    (record,) = pipe.state.bundles.values()
    assert record.stage == Stage.RUNNING and "disk is full" in record.last_error
    assert not pipe.outage.ongoing and ap.calls.count("query") == 9
    ap.disk_full = False
    for t in range(10, 30):
        pipe.tick(float(t))
    assert report(layout, "big")["outcome"] == "delivered"
    assert record.last_error is None and record.failures == 0


def test_a_spool_that_keeps_failing_is_retried_on_a_backoff_and_ends_rejected(env, monkeypatch):
    pipe, ap, layout = env
    monkeypatch.setenv("CHTCD_FAIL", "spool:s")
    drop(layout, "s")
    drop(layout, "fine")
    pipe.tick(1.0)
    _finish_all(ap)
    for t in range(2, 60):
        pipe.tick(float(t))
    assert ap.calls.count("submit") <= 8, "not submitted again on every tick"
    assert report(layout, "fine")["outcome"] == "delivered"
    rep = report(layout, "s")
    assert rep["outcome"] == "rejected" and "CHTCD_FAIL" in rep["reason"]
    (s_id,) = [r.id for r in pipe.state.bundles.values() if r.name == "s"]
    assert not any(job.ad.bundle_id == s_id for job in ap.jobs.values()), "nothing of it left on the access point"
    assert not pipe.outage.ongoing


def test_a_spell_of_trouble_is_announced_once_and_a_new_spell_again(env, monkeypatch):
    from chtcd import notify

    pipe, ap, layout = env
    shown = []
    monkeypatch.setattr(notify.Notifier, "notify", lambda self, title, body: shown.append((title, body)))
    watcher = notify.Watcher(notify.Notifier(pipe.config), pipe.state)
    drop(layout, "big")
    pipe.tick(1.0)
    _finish_all(ap)
    ap.disk_full = True
    for t in range(2, 12):
        pipe.tick(float(t))
        watcher.look(pipe.state)
    stuck = [title for title, _ in shown if "stuck" in title]
    assert stuck == ["chtcd: big is stuck; chtcd keeps trying"]
    assert "disk is full" in [body for title, body in shown if "stuck" in title][0]
    (record,) = pipe.state.bundles.values()
    faults.clear(record)
    faults.charge(record, "again", 20.0, tick=1.0)
    watcher.look(pipe.state)
    assert len([title for title, _ in shown if "stuck" in title]) == 2


def test_a_transfer_error_is_said_in_plain_words_before_htcondors_own():
    assert condor.plain_words(RECORDED[0][1]) == "the access point no longer has result.txt (no such file or directory)"
    assert condor.plain_words(RECORDED[1][1]) == "this computer could not write /tmp/errs/small/b/result.txt (no space left on device)"
    assert condor.plain_words("Failed to connect to schedd.") == "Failed to connect to schedd."
    with pytest.raises(condor.BundleFault) as remote:
        _door(_Schedd(RECORDED[0][1], answers=True)).retrieve(["1.0"])
    assert str(remote.value).startswith("the access point no longer has result.txt") and "HTCondor said: DCSchedd" in str(remote.value)


def test_a_bundle_whose_early_retrieve_keeps_failing_is_not_given_up_while_its_jobs_run():
    jobs = {"0": JobRecord(proc=0, status=4, completed_at=1.0), "1": JobRecord(proc=1, status=2)}
    record = _record(jobs=jobs, cluster=7, spooled_at=1.0)
    faults.charge(record, "the access point no longer has result.txt", 100.0, tick=60.0)
    later = 100.0 + lifecycle.EARLY_RETRIEVE_SECONDS
    record.retry_at = None
    assert isinstance(lifecycle.next_step(record, later, 100.0, fault_grace=50.0), lifecycle.RetrieveEarly)
    jobs["1"] = dataclasses.replace(jobs["1"], status=4)
    assert isinstance(lifecycle.next_step(record, later, 100.0, fault_grace=50.0), lifecycle.GiveUp)
