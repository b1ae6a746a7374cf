"""The mission, proven: the real chtcd program against a real HTCondor pool.

The pool runs CHTC-like: token auth, a credd, and execute slots that do not
share the access point's filesystem, so every file travels by transfer.
"""

import time

import pytest
from harness import Chtcd, jobs_in_queue, wait_for, write_bundle

from chtcd.demo import example_bundle

pytestmark = pytest.mark.pool

WRITE_PROC = """#!/bin/sh
mkdir -p out
echo "job $1 says hello" > out/result.$1.txt
"""

EXIT_3 = """#!/bin/sh
echo about to fail
exit 3
"""


@pytest.fixture(scope="module")
def chtcd(pool, tmp_path_factory):
    instance = Chtcd(pool, tmp_path_factory.mktemp("chtcd"), hold_grace_seconds=6).start()
    yield instance
    if instance.proc is not None:
        assert instance.stop() == 0


def test_guide_test_job_comes_back(chtcd, pool):
    chtcd.drop(example_bundle("test"))
    report = chtcd.wait_delivered("test")
    back = chtcd.inbox / "test"
    assert report["outcome"] == "delivered"
    assert (back / "result.txt").read_text().splitlines() == [
        "Bucky Badger says hi!",
        'This line contains a "badger" and will be in the output.',
    ]
    assert "Arguments are 'rst' and '123'." in (back / "test.out").read_text()
    assert (back / "test.err").read_text() == "This is an error message\n"
    assert "Job terminated" in (back / "test.log").read_text()
    for name in ("test.sub", "test.sh", "test.txt"):
        assert (back / name).read_bytes() == (example_bundle("test") / name).read_bytes()
    assert report["access_point"] == pool.access_point
    assert report["jobs"][0]["exit_code"] == 0 and report["jobs"][0]["state"] == "done"
    assert not (chtcd.outbox / "test").exists()
    wait_for(lambda: not jobs_in_queue(pool, report["bundle_id"]), 90, "the jobs to leave the queue")


def test_queue_5_with_process_named_outputs(chtcd, tmp_path):
    src = write_bundle(
        tmp_path,
        "five",
        {
            "five.sub": "executable = write.sh\narguments = $(Process)\n"
            "output = logs/out.$(Cluster).$(Process).txt\nerror = logs/err.$(Process).txt\n"
            "log = five.log\ntransfer_output_files = out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue 5\n",
            "write.sh": WRITE_PROC,
        },
    )
    chtcd.drop(src)
    report = chtcd.wait_delivered("five")
    back = chtcd.inbox / "five"
    assert report["outcome"] == "delivered" and len(report["jobs"]) == 5
    for proc in range(5):
        assert (back / "out" / f"result.{proc}.txt").read_text() == f"job {proc} says hello\n"
        assert (back / "logs" / f"err.{proc}.txt").exists()
        assert (back / "logs" / f"out.{report['cluster']}.{proc}.txt").exists()


def test_item_data_from_a_list_file(chtcd, tmp_path):
    src = write_bundle(
        tmp_path,
        "items",
        {
            "items.sub": "executable = write.sh\narguments = $(word)\noutput = $(word).out\n"
            "transfer_output_files = out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue word from words.txt\n",
            "words.txt": "alpha\nbeta\n",
            "write.sh": WRITE_PROC,
        },
    )
    chtcd.drop(src)
    report = chtcd.wait_delivered("items")
    back = chtcd.inbox / "items"
    assert report["outcome"] == "delivered" and len(report["jobs"]) == 2
    assert (back / "out" / "result.alpha.txt").read_text() == "job alpha says hello\n"
    assert (back / "out" / "result.beta.txt").exists()


def test_nonzero_exit_is_delivered_with_its_code(chtcd, tmp_path):
    src = write_bundle(
        tmp_path,
        "fails",
        {
            "fails.sub": "executable = fail.sh\noutput = fail.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
            "fail.sh": EXIT_3,
        },
    )
    chtcd.drop(src)
    report = chtcd.wait_delivered("fails")
    assert report["outcome"] == "delivered"
    assert report["jobs"][0]["exit_code"] == 3
    assert (chtcd.inbox / "fails" / "fail.out").read_text() == "about to fail\n"


def test_held_job_is_delivered_after_grace_and_removed(chtcd, pool, tmp_path):
    src = write_bundle(
        tmp_path,
        "holds",
        {
            "holds.sub": "executable = write.sh\narguments = $(Process)\ntransfer_output_files = out\n"
            "on_exit_hold = ProcId == 1\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue 2\n",
            "write.sh": WRITE_PROC,
        },
    )
    chtcd.drop(src)
    report = chtcd.wait_delivered("holds")
    assert report["outcome"] == "partial"
    held = [j for j in report["jobs"] if j["state"] == "held"]
    assert len(held) == 1 and held[0]["hold_code"] == 3 and held[0]["hold_reason"]
    assert "policy" in held[0]["hint"]
    assert (chtcd.inbox / "holds" / "out" / "result.0.txt").exists()
    wait_for(lambda: not jobs_in_queue(pool, report["bundle_id"]), 90, "the held job to be removed")


def test_status_json_in_flight_and_after(chtcd, tmp_path):
    src = write_bundle(
        tmp_path,
        "slow",
        {
            "slow.sub": "executable = slow.sh\noutput = slow.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
            "slow.sh": "#!/bin/sh\nsleep 6\necho done\n",
        },
    )
    chtcd.drop(src)

    def entry():
        return next((b for b in chtcd.status()["bundles"] if b["name"] == "slow"), None)

    in_flight = wait_for(lambda: (e := entry()) and e["stage"] == "running" and e["jobs"]["running"] == 1 and e, 120, "slow running")
    assert in_flight["cluster"] and in_flight["outcome"] is None
    chtcd.wait_delivered("slow")
    after = wait_for(lambda: (e := entry()) and e["stage"] in ("released", "done") and e, 60, "slow released")
    assert after["outcome"] == "delivered" and after["jobs"]["done"] == 1
    assert after["inbox_path"].endswith("/slow")


def test_sigterm_mid_flight_then_restart_still_delivers(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd").start()
    src = write_bundle(
        tmp_path,
        "survivor",
        {
            "survivor.sub": "executable = slow.sh\noutput = s.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
            "slow.sh": "#!/bin/sh\nsleep 5\necho survived\n",
        },
    )
    chtcd.drop(src)
    (entry,) = wait_for(
        lambda: [b for b in chtcd.status()["bundles"] if b["stage"] == "running"], 60, "the bundle to be submitted"
    )
    started = time.monotonic()
    assert chtcd.stop() == 0
    assert time.monotonic() - started < 10
    assert not (chtcd.inbox / "survivor").exists()
    chtcd.start()
    try:
        report = chtcd.wait_delivered("survivor")
    finally:
        assert chtcd.stop() == 0
    assert report["outcome"] == "delivered"
    assert report["cluster"] == entry["cluster"], "the restarted daemon must adopt the cluster, not submit again"
    assert report["jobs"][0]["starts"] == 1
    assert (chtcd.inbox / "survivor" / "s.out").read_text() == "survived\n"
    assert len([p for p in chtcd.inbox.iterdir()]) == 1


def test_on_exit_hold_with_periodic_release_retries_until_it_works(pool, tmp_path):
    """A submit file written for the access point's retry idiom runs unchanged: held, released, run again."""
    chtcd = Chtcd(pool, tmp_path / "chtcd", hold_grace_seconds=300).start()
    src = write_bundle(
        tmp_path,
        "retries",
        {
            "retries.sub": "executable = flaky.sh\noutput = flaky.out\n"
            "on_exit_hold = ExitCode != 0\n"
            "periodic_release = (NumJobStarts < 3) && ((time() - EnteredCurrentStatus) > 1)\n"
            "request_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
            "flaky.sh": '#!/bin/sh\n# fails on its first run only (JobRunCount counts this run)\n'
            'if grep -q "^JobRunCount = 1$" "$_CONDOR_JOB_AD"; then exit 1; fi\necho "worked"\n',
        },
    )
    chtcd.drop(src)
    try:
        report = chtcd.wait_delivered("retries")
    finally:
        assert chtcd.stop() == 0
    assert report["outcome"] == "delivered"
    assert report["jobs"][0]["exit_code"] == 0 and report["jobs"][0]["starts"] == 2
    assert (chtcd.inbox / "retries" / "flaky.out").read_text() == "worked\n"


def test_submit_file_the_schedd_client_refuses_comes_back_rejected(chtcd, tmp_path):
    """An error HTCondor finds only while building the job ad is the bundle's to fix, not an outage to retry."""
    src = write_bundle(
        tmp_path,
        "badargs",
        {"badargs.sub": 'executable = /bin/sh\ntransfer_executable = false\narguments = -c "sleep 1"\nqueue\n'},
    )
    chtcd.drop(src)
    report = chtcd.wait_delivered("badargs")
    assert report["outcome"] == "rejected"
    assert "double-quote" in report["reason"]
    assert chtcd.proc.poll() is None
