"""Nothing lost, nothing twice: the real chtcd killed at every step, against the real pool.

Each check a user would make: the bundle is in the inbox exactly once, its
cluster ran exactly once (counted in the schedd's queue and history by the
bundle id), and nothing of it is left in the access point's queue.
"""

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict

import pytest
from harness import Chtcd, jobs_in_queue, ran_clusters, wait_for, write_bundle

from chtcd import localpool
from chtcd.crashpoints import POINTS

pytestmark = pytest.mark.pool

QUICK = (
    "executable = /bin/echo\ntransfer_executable = false\narguments = hello $(Process)\noutput = out.$(Process).txt\n"
    "request_memory = 64MB\nrequest_disk = 64MB\nqueue {n}\n"
)


def quick_bundle(root: Path, name: str, n: int = 1) -> Path:
    return write_bundle(root, name, {f"{name}.sub": QUICK.format(n=n)})


def check_once(chtcd: Chtcd, pool, name: str, n: int = 1) -> Dict:
    """Delivered once, ran once, left nothing in the queue; returns the report."""
    report = chtcd.wait_delivered(name)
    copies = [p for p in chtcd.inbox.iterdir() if p.name == name or p.name.startswith(f"{name}-")]
    assert copies == [chtcd.inbox / name], f"{name} delivered {len(copies)} times"
    assert report["outcome"] == "delivered"
    for proc in range(n):
        assert (chtcd.inbox / name / f"out.{proc}.txt").read_text() == f"hello {proc}\n"
    assert ran_clusters(pool, report["bundle_id"]) == [report["cluster"]], "the bundle's jobs ran more than once"
    wait_for(lambda: not jobs_in_queue(pool, report["bundle_id"]), 90, f"{name}'s jobs to leave the queue")
    return report


def crash_at(pool, base: Path, point: str) -> str:
    chtcd = Chtcd(pool, base / point, settle=0)
    name = f"c-{point}"
    chtcd.drop(quick_bundle(base / "src", name))
    plan = ["before-spool", point] if point.endswith("-remove") else [point]
    for step in plan:
        chtcd.start(crash_at=step)
        wait_for(
            lambda: chtcd.proc.poll() is not None or (chtcd.inbox / name).exists() and not chtcd.status_in_flight(),
            120,
            f"the daemon to reach {step}",
        )
        code = chtcd.wait_exit(0.1)
        if code is None:
            chtcd.stop()
            return "not reached"
        assert code == -9, f"{point}: daemon exited with {code}, not by its crash point"
    chtcd.start()
    try:
        check_once(chtcd, pool, name)
    finally:
        assert chtcd.stop() == 0
    return "survived"


def test_every_crash_point(pool, tmp_path, capsys):
    with ThreadPoolExecutor(4) as workers:
        outcomes = dict(zip(POINTS, workers.map(lambda p: crash_at(pool, tmp_path, p), POINTS)))
    survived = [p for p, o in outcomes.items() if o == "survived"]
    with capsys.disabled():
        print(
            f"\ncrash points: {len(POINTS)} defined, {len(survived)} hit and survived, "
            f"not reached: {[p for p, o in outcomes.items() if o != 'survived'] or 'none'}; "
            "bundles lost: 0, duplicates: 0"
        )
    assert survived == list(POINTS)


def test_crash_in_the_middle_of_a_batch_of_submissions(pool, tmp_path):
    """Four bundles claimed together are marked in one save; killed at the second submit, each still goes out once."""
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0)
    names = [f"batch{i}" for i in range(4)]
    for name in names:
        chtcd.drop(quick_bundle(tmp_path / "src", name))
    chtcd.start(crash_at="after-submit:2")
    assert chtcd.wait_exit(60) == -9, "the daemon never reached its second submit"
    chtcd.start()
    try:
        for name in names:
            check_once(chtcd, pool, name)
    finally:
        assert chtcd.stop() == 0


def test_random_kills_leave_nothing_lost_or_twice(pool, tmp_path, capsys):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0)
    names = [f"r{i}" for i in range(4)]
    for i, name in enumerate(names):
        src = write_bundle(
            tmp_path / "src",
            name,
            {f"{name}.sub": QUICK.format(n=i + 1).replace("/bin/echo", "/bin/sh").replace(
                "arguments = hello $(Process)", "arguments = \"-c 'sleep 2; echo hello $(Process)'\""
            )},
        )
        chtcd.drop(src)
    kills = 0
    for _ in range(12):
        chtcd.start()
        wait_for(lambda: chtcd.ready() or chtcd.proc.poll() is not None, 60, "the daemon to serve")
        # a random moment, on purpose: the crash must land wherever it lands
        time.sleep(rng.uniform(0.0, 3.0))
        if chtcd.proc.poll() is None:
            chtcd.kill()
            kills += 1
        else:
            chtcd.proc = None
    chtcd.start()
    try:
        for i, name in enumerate(names):
            check_once(chtcd, pool, name, n=i + 1)
    finally:
        assert chtcd.stop() == 0
    with capsys.disabled():
        print(f"\nrandom kills (seed {seed}): {kills} kills survived, {len(names)} bundles delivered once, lost 0, duplicates 0")
    assert kills >= 10


def test_schedd_outage_is_ridden_out_politely(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0).start()
    src = write_bundle(
        tmp_path,
        "outage",
        {"outage.sub": "executable = /bin/sh\ntransfer_executable = false\narguments = \"-c 'sleep 4; echo hello 0'\"\n"
         "output = out.0.txt\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue\n"},
    )
    chtcd.drop(src)
    wait_for(lambda: chtcd.status_in_flight(), 60, "the bundle to be submitted")
    localpool.daemon_off(pool, "schedd")
    try:
        before = len(chtcd.log_events())
        wait_for(
            lambda: sum(1 for e in chtcd.log_events()[before:] if e["event"] == "tick") >= 6,
            90,
            "six ticks during the outage",
        )
        during = chtcd.log_events()[before:]
    finally:
        localpool.daemon_on(pool, "schedd")
    ticks = sum(1 for e in during if e["event"] == "tick")
    attempts = sum(1 for e in during if "unreachable" in e["event"])
    assert 1 <= attempts <= ticks, f"{attempts} failed attempts over {ticks} ticks"
    assert attempts < ticks, "attempts thin out while the outage lasts"
    started = [e for e in during if e["event"].startswith("access point unreachable;")]
    assert len(started) == 1, "one line when the outage starts"
    assert not any("is in trouble" in e["event"] for e in during), "an outage is nobody's bundle's fault"
    try:
        check_once(chtcd, pool, "outage")
    finally:
        assert chtcd.stop() == 0
    after = chtcd.log_events()[before:]
    assert sum(1 for e in after if e["event"] == "access point reachable again") == 1, "one line when it ends"
    assert sum(1 for e in after if e["event"].startswith("access point unreachable;")) == 1


def test_both_state_generations_corrupted_mid_flight(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", settle=0).start()
    chtcd.drop(quick_bundle(tmp_path / "src", "corrupt"))
    wait_for(lambda: chtcd.status_in_flight(), 60, "the bundle to be submitted")
    chtcd.kill()
    state = tmp_path / "chtcd" / "state"
    (state / "state.json").write_text("{ this is not json")
    (state / "state.json.prev").write_bytes(b"\x00" * 10)
    chtcd.start()
    try:
        check_once(chtcd, pool, "corrupt")
    finally:
        assert chtcd.stop() == 0
    assert list(state.glob("state.json.corrupt-*")), "the damaged state must be kept aside, not deleted"
