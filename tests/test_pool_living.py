"""Living with the real daemon on the real pool: status, pause, cancel, retry, notifications, logs, the demo."""

import json
import os
import subprocess
import sys

import pytest
from doubles import REPO, recorded, recording_script
from harness import Chtcd, jobs_in_queue, wait_for, write_bundle

from chtcd import localpool
from chtcd.demo import example_bundle

pytestmark = pytest.mark.pool

SLEEPER = {
    "nap.sub": "executable = nap.sh\noutput = nap.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
    "nap.sh": "#!/bin/sh\nsleep 600\n",
}


@pytest.fixture(scope="module")
def chtcd(pool, tmp_path_factory):
    base = tmp_path_factory.mktemp("living")
    notes = base / "notifications.log"
    hook = recording_script(base / "on-delivery", base / "on-delivery.log")
    instance = Chtcd(pool, base / "chtcd", hold_grace_seconds=6)
    with open(instance.config, "a") as f:
        f.write(f'\n[notify]\ndesktop = true\non_delivery = "{hook}"\n')
    os.environ["CHTCD_NOTIFY_COMMAND"] = str(recording_script(base / "notifier", notes))
    try:
        instance.start()
    finally:
        del os.environ["CHTCD_NOTIFY_COMMAND"]
    instance.notes = notes
    instance.hook_log = base / "on-delivery.log"
    yield instance
    if instance.proc is not None:
        assert instance.stop() == 0


def entry(chtcd, name):
    return next((b for b in chtcd.status()["bundles"] if b["name"] == name), None)


def test_delivery_is_announced_and_on_delivery_runs(chtcd):
    chtcd.drop(example_bundle("test"))
    assert chtcd.wait_delivered("test")["outcome"] == "delivered"
    back = str(chtcd.inbox / "test")
    wait_for(lambda: recorded(chtcd.hook_log), 30, "the on_delivery command to run")
    (hook,) = recorded(chtcd.hook_log)
    assert hook["argv"] == [back] and hook["cwd"] == back and hook["outcome"] == "delivered"
    wait_for(lambda: any(n["argv"] == ["chtcd: test is back", back] for n in recorded(chtcd.notes)), 30, "the notification")


def test_held_job_is_announced(chtcd, tmp_path):
    src = write_bundle(
        tmp_path,
        "holder",
        {
            "holder.sub": "executable = ok.sh\non_exit_hold = true\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
            "ok.sh": "#!/bin/sh\necho ok\n",
        },
    )
    chtcd.drop(src)
    wait_for(
        lambda: any(n["argv"][0].startswith("chtcd: holder: job ") and n["argv"][0].endswith(" held") for n in recorded(chtcd.notes)),
        120,
        "the hold notification",
    )
    assert chtcd.wait_delivered("holder")["outcome"] == "partial"
    wait_for(lambda: any(n["argv"][0] == "chtcd: holder is back, partly" for n in recorded(chtcd.notes)), 30, "the partial notice")


def test_status_table_detail_and_cancel(chtcd, pool, tmp_path):
    chtcd.drop(write_bundle(tmp_path, "nap", SLEEPER))
    running = wait_for(lambda: (e := entry(chtcd, "nap")) and e["jobs"]["running"] == 1 and e, 120, "nap running")
    table = chtcd.cli("status").stdout
    assert f"daemon running (pid {chtcd.proc.pid}), next tick in" in table
    (row,) = [line for line in table.splitlines() if line.startswith("nap ")]
    assert row.split()[1:6] == ["running", "0", "1", "0", "0"]
    detail = chtcd.cli("status", "nap").stdout
    assert f"cluster:     {running['cluster']}" in detail and "jobs:        1 running" in detail

    done = chtcd.cli("cancel", "nap")
    assert "asked the daemon to cancel nap" in done.stdout
    report = chtcd.wait_delivered("nap", timeout=60)
    assert report["outcome"] == "cancelled" and report["cluster"] == running["cluster"]
    assert (chtcd.inbox / "nap" / "nap.sh").exists()
    wait_for(lambda: not jobs_in_queue(pool, running["id"]), 60, "the cancelled job to leave the queue")
    assert not list((chtcd.base / "state" / "requests").glob("cancel-*"))
    assert recorded(chtcd.hook_log)[-1]["argv"] != [str(chtcd.inbox / "nap")], "on_delivery is for outputs, not cancels"


def test_pause_keeps_new_bundles_waiting_and_resume_takes_them(chtcd, tmp_path):
    assert "paused" in chtcd.cli("pause").stdout
    wait_for(lambda: chtcd.status()["paused"], 30, "the daemon to take up the pause")
    waiting = write_bundle(tmp_path / "a", "waiting", {
        "waiting.sub": "executable = ok.sh\noutput = ok.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
        "ok.sh": "#!/bin/sh\necho ok\n",
    })
    tracked = write_bundle(tmp_path / "b", "tracked", {
        "tracked.sub": "executable = ok.sh\noutput = ok.out\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
        "ok.sh": "#!/bin/sh\nsleep 2\necho ok\n",
    })
    chtcd.cli("resume")
    wait_for(lambda: not chtcd.status()["paused"], 30, "the daemon to resume")
    chtcd.drop(tracked)
    wait_for(lambda: entry(chtcd, "tracked") is not None, 60, "tracked to be claimed")
    chtcd.cli("pause")
    wait_for(lambda: chtcd.status()["paused"], 30, "the daemon to take up the pause")
    chtcd.drop(waiting)
    assert chtcd.wait_delivered("tracked")["outcome"] == "delivered", "tracking goes on while paused"
    assert (chtcd.outbox / "waiting").is_dir() and entry(chtcd, "waiting") is None
    assert "resumed" in chtcd.cli("resume").stdout
    assert chtcd.wait_delivered("waiting")["outcome"] == "delivered"


def test_retry_sends_a_rejected_bundle_through_again(chtcd, tmp_path):
    src = write_bundle(tmp_path, "fixme", {"fixme.sh": "#!/bin/sh\necho fixed > fixed.txt\n"})
    os.rename(src, chtcd.outbox / "fixme")  # `chtcd submit` would refuse it: no submit file
    assert chtcd.wait_delivered("fixme")["outcome"] == "rejected"
    back = chtcd.inbox / "fixme"
    (back / "fixme.sub").write_text(
        "executable = fixme.sh\ntransfer_output_files = fixed.txt\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n"
    )
    done = chtcd.cli("retry", "fixme")
    assert "back in the outbox" in done.stdout
    wait_for(lambda: (back / "chtcd-report.json").exists() and json.loads((back / "chtcd-report.json").read_text())["outcome"] != "rejected",
             180, "fixme delivered again")
    assert chtcd.report("fixme")["outcome"] == "delivered"
    assert (back / "fixed.txt").read_text() == "fixed\n"


def test_logs_show_the_daemon_at_work(chtcd):
    text = chtcd.cli("logs", "-n", "500").stdout
    assert "claimed bundle" in text and "bundle=test" in text and "test is back" in text


def test_demo_ends_with_the_result_in_its_inbox_and_leaves_a_running_pool_up(pool):
    """The README's first command; the pool is already up here, so the demo must leave it running."""
    done = subprocess.run([sys.executable, "-m", "chtcd", "demo", "--timeout", "300"], cwd=REPO,
                          capture_output=True, text=True, timeout=420, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    inbox = next(line.split("inbox: ", 1)[1] for line in done.stdout.splitlines() if "inbox: " in line)
    result = os.path.join(inbox.strip(), "test", "result.txt")
    assert open(result).read().splitlines()[0] == "Bucky Badger says hi!"
    assert "left the local pool running" in done.stdout
    assert localpool.is_up()
