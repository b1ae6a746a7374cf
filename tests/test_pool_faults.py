"""One bundle's trouble stays that bundle's: real faults injected on the real pool, beside bundles that must go on.

Each test keeps at least three healthy bundles in flight beside the faulty
one, checks that they arrive within a tick or two of their jobs finishing,
and counts the daemon's log lines per fault, so a fault said again on every
tick fails the test.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from harness import Chtcd, jobs_in_queue, ran_clusters, wait_for, write_bundle

pytestmark = pytest.mark.pool

TICK = 2.0
LAG = 6.0
"""How long the schedd may take to show a finished job as finished (its queue updates come every 2 s here)."""

RESULTS = (
    "executable = /bin/sh\ntransfer_executable = false\n"
    "arguments = \"-c 'sleep {sleep}; head -c {size} /dev/zero > result.txt; echo job $(Process) >> result.txt'\"\n"
    "should_transfer_files = YES\ntransfer_output_files = result.txt\n"
    "transfer_output_remaps = \"result.txt = result.$(Process).txt\"\n"
    "request_memory = 64MB\nrequest_disk = 64MB\nqueue {n}\n"
)


def results_bundle(root: Path, name: str, n: int = 1, size: int = 0, sleep: int = 0) -> Path:
    return write_bundle(root, name, {f"{name}.sub": RESULTS.format(n=n, size=size, sleep=sleep)})


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def assert_prompt(chtcd: Chtcd, name: str) -> Dict:
    """Delivered whole, once, within a tick (and the schedd's lag) of its last job finishing."""
    report = chtcd.wait_delivered(name)
    assert report["outcome"] == "delivered", report
    assert [p.name for p in chtcd.inbox.iterdir() if p.name.startswith(name)] == [name], "delivered once"
    last_done = max(_seconds(job["completed"]) for job in report["jobs"])
    late = _seconds(report["timestamps"]["delivered"]) - last_done
    assert late <= TICK + LAG, f"{name} came {late:.0f} s after its jobs finished"
    return report


def drop_healthy(chtcd: Chtcd, src: Path, prefix: str = "good") -> List[str]:
    """Three healthy bundles beside the faulty one: their jobs take a few seconds."""
    names = [f"{prefix}{i}" for i in range(3)]
    for name in names:
        chtcd.drop(results_bundle(src, name, sleep=3))
    return names


def events(chtcd: Chtcd, text: str, bundle: str = "") -> List[Dict]:
    return [e for e in chtcd.log_events() if text in e["event"] and (not bundle or e.get("bundle") == bundle)]


def no_outage_said(chtcd: Chtcd) -> None:
    said = [e["event"] for e in chtcd.log_events() if "unreachable" in e["event"] or "refused the token" in e["event"]]
    assert said == [], f"a bundle's fault was taken for an outage: {said}"


def test_an_output_missing_on_the_access_point_comes_back_partial_and_stalls_no_one(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0, fault_grace_seconds=20).start()
    chtcd.drop(results_bundle(tmp_path / "src", "bad", n=3))
    wait_for(lambda: chtcd.status_in_flight() and any(b["stage"] == "running" for b in chtcd.status()["bundles"]),
             60, "bad to be spooled")
    assert chtcd.stop() == 0  # the laptop sleeps while the jobs finish
    (bad_id,) = [b["id"] for b in chtcd.status()["bundles"] if b["name"] == "bad"]
    jobs = wait_for(lambda: (lambda ads: ads if len(ads) == 3 and all(a.status == 4 for a in ads) else None)(jobs_in_queue(pool, bad_id)),
                    120, "bad's jobs to finish")
    cluster = jobs[0].cluster
    (lost,) = pool.spool_dir.glob(f"*/*/cluster{cluster}.proc1.subproc0/result.txt")
    lost.unlink()  # the access point loses one job's output before chtcd fetches it
    chtcd.start()
    others = drop_healthy(chtcd, tmp_path / "src")
    try:
        for name in others:
            assert_prompt(chtcd, name)
        report = chtcd.wait_delivered("bad", timeout=120)
    finally:
        assert chtcd.stop() == 0
    assert report["outcome"] == "partial"
    assert "condor_transfer_data" in report["reason"] and f"{cluster}.1" in report["reason"]
    folder = chtcd.inbox / "bad"
    assert (folder / "result.0.txt").read_text() == "job 0\n" and (folder / "result.2.txt").read_text() == "job 2\n"
    assert not (folder / "result.1.txt").exists()
    (unfetched,) = [j for j in report["jobs"] if "fetch_error" in j]
    assert unfetched["job"] == f"{cluster}.1" and unfetched["files_not_fetched"] == ["result.txt"]
    assert "errno 2" in unfetched["fetch_error"]
    left = wait_for(lambda: (lambda ads: ads if [a.proc for a in ads] == [1] else None)(jobs_in_queue(pool, bad_id)),
                    90, "bad's fetched jobs to be released and the unfetched one kept")
    assert left[0].status == 4, "the unfetched job stays on the access point, for the user to fetch by hand"
    assert len(events(chtcd, "is in trouble", "bad")) == 1
    assert len(events(chtcd, "giving up on a bundle in trouble", "bad")) == 1
    no_outage_said(chtcd)
    from harness import access_point

    access_point(pool).remove(f"ClusterId == {cluster}")


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB filesystem for one chtcd's inbox, outbox and state (so its work area too)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_holds_back_only_the_bundle_that_does_not_fit_and_loses_nothing(pool, tmp_path, small_disk):
    chtcd = Chtcd(pool, small_disk / "chtcd", settle=0).start()
    filler = small_disk / "filler"
    free = os.statvfs(small_disk)
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 3_000_000))  # leave 3 MB: a 5 MB output cannot fit
    chtcd.drop(results_bundle(tmp_path / "src", "big", size=5_000_000, sleep=3))
    others = drop_healthy(chtcd, tmp_path / "src", "small")
    try:
        for name in others:
            assert_prompt(chtcd, name)
        wait_for(lambda: [b for b in chtcd.status()["bundles"] if b["name"] == "big" and b["trouble"]], 60, "big in trouble")
        (big,) = [b for b in chtcd.status()["bundles"] if b["name"] == "big"]
        assert big["stage"] == "running" and "disk is full" in big["trouble"]["last_error"]
        table = chtcd.cli("status").stdout
        assert "trouble" in table and "disk is full" in table
        filler.unlink()
        chtcd.cli("retry", "big")
        report = chtcd.wait_delivered("big", timeout=60)
    finally:
        assert chtcd.stop() == 0
    assert report["outcome"] == "delivered"
    assert (chtcd.inbox / "big" / "result.0.txt").stat().st_size == 5_000_000 + len("job 0\n")
    assert sorted(p.name for p in chtcd.inbox.iterdir()) == ["big", *others], "each bundle once, nothing lost"
    assert len(events(chtcd, "is in trouble", "big")) == 1
    assert len(events(chtcd, "is moving again", "big")) == 1
    no_outage_said(chtcd)
    assert ran_clusters(pool, report["bundle_id"]) == [report["cluster"]]


def test_a_spool_that_keeps_failing_ends_rejected_on_its_budget_while_the_others_go_on(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0, fault_grace_seconds=16).start(fail="spool:bad")
    chtcd.drop(results_bundle(tmp_path / "src", "bad"))
    others = drop_healthy(chtcd, tmp_path / "src")
    try:
        for name in others:
            assert_prompt(chtcd, name)
        report = chtcd.wait_delivered("bad", timeout=90)
    finally:
        assert chtcd.stop() == 0
    assert report["outcome"] == "rejected" and "CHTCD_FAIL" in report["reason"]
    assert "attempts" in report["reason"] and "Nothing of it ran" in report["reason"]
    ticks = len(events(chtcd, "tick"))
    tries = 1 + len(events(chtcd, "sending a bundle in trouble again", "bad"))
    assert 2 <= tries <= 5, f"{tries} submissions of bad over {ticks} ticks: not on a backoff"
    assert len(events(chtcd, "is in trouble", "bad")) == 1
    no_outage_said(chtcd)
    assert ran_clusters(pool, report["bundle_id"]) == []
    assert jobs_in_queue(pool, report["bundle_id"]) == []
