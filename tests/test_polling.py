"""Kind to the access point: one count and one job query per tick while anything is in flight, none when idle.

The pool tests count the commands the schedd itself received, in its SchedLog
(`SCHEDD_DEBUG = D_COMMAND`), from the daemon under test only: it gets a token
of its own identity (`localpool.issue_token`), so other clients of the shared
pool do not blur the count. Ticks are counted from the daemon's JSON log. The
other tests here check the same economy against the in-memory access point:
retrieves and releases go together, unchanged ticks do not rewrite the state.
Speed is measured by `bench/run.py`, not here.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Tuple

import pytest
from fakes import fake_pipeline
from harness import Chtcd, wait_for, write_bundle

from chtcd import condor, localpool
from chtcd.daemon import Daemon
from chtcd.layout import Layout
from chtcd.state import Stage

# ---- counting what the schedd received ------------------------------------------------------

_COMMAND = re.compile(r"for command \d+ \((\w+)\) from (\S+) <")


class SchedLog:
    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> Tuple[int, int]:
        st = os.stat(self.path)
        return st.st_ino, st.st_size

    def commands(self, start: Tuple[int, int], identity: str) -> Counter:
        """Commands from ``identity`` since ``start`` (SchedLog.old first, should the log have rolled over)."""
        text = b""
        if os.stat(self.path).st_ino != start[0]:
            old = self.path.with_name(self.path.name + ".old")
            if old.exists() and old.stat().st_ino == start[0]:
                with open(old, "rb") as f:
                    f.seek(start[1])
                    text = f.read()
            start = (0, 0)
        with open(self.path, "rb") as f:
            f.seek(start[1])
            text += f.read()
        found: Counter = Counter()
        for name, sender in _COMMAND.findall(text.decode("utf-8", "replace")):
            if sender == identity:
                found[name] += 1
        return found


def own_identity(pool: localpool.LocalPool, chtcd: Chtcd) -> str:
    """Give the daemon a token of its own, so its commands can be told apart in SchedLog."""
    tokens = chtcd.base / "tokens"
    identity = localpool.issue_token(pool, "polling-" + secrets.token_hex(3), tokens)
    text = chtcd.config.read_text()
    chtcd.config.write_text(re.sub(r'^token_dir = .*$', f'token_dir = "{tokens}"', text, count=1, flags=re.M))
    return identity


def ticks(chtcd: Chtcd, since: int = 0) -> List[Dict[str, Any]]:
    return [e for e in chtcd.log_events()[since:] if e.get("event") == "tick"]


PARKED = "executable = /bin/true\ntransfer_executable = false\nrequirements = false\nrequest_memory = 16MB\nrequest_disk = 16MB\nqueue {n}\n"
"""Jobs that never match a slot: in flight for as long as the test wants, at no cost to the machine."""


@pytest.mark.pool
def test_nothing_in_flight_no_schedd_traffic(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", tick=2)
    identity = own_identity(pool, chtcd)
    schedlog = SchedLog(pool.schedd_log)
    chtcd.start()
    try:
        wait_for(lambda: ticks(chtcd), 60, "the daemon's first tick")
        since, mark = len(chtcd.log_events()), schedlog.mark()
        # The window is five of the daemon's own ticks, counted from its log (about 10 s), not a sleep.
        wait_for(lambda: len(ticks(chtcd, since)) >= 5, 60, "five idle ticks")
        sent = schedlog.commands(mark, identity)
        window = ticks(chtcd, since)
    finally:
        assert chtcd.stop() == 0
    assert all(not t["queried"] and t["tracked"] == 0 for t in window)
    assert sent == Counter(), f"an idle daemon sent the schedd {dict(sent)}"


@pytest.mark.pool
def test_one_count_and_one_query_per_tick_for_all_bundles_in_flight(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", tick=2)
    identity = own_identity(pool, chtcd)
    schedlog = SchedLog(pool.schedd_log)
    for n in (1, 2, 3):
        write_bundle(tmp_path / "src", f"parked{n}", {f"parked{n}.sub": PARKED.format(n=n)})
    chtcd.start()
    client = None
    try:
        for n in (1, 2, 3):
            chtcd.drop(tmp_path / "src" / f"parked{n}")
        wait_for(lambda: sum(1 for e in chtcd.log_events() if e.get("event") == "submitted bundle") == 3, 60, "three bundles submitted")
        client = (chtcd.base / "state" / "client-id").read_text().strip()
        wait_for(lambda: any(t["tracked"] == 3 and t["queried"] for t in ticks(chtcd)), 60, "a tick over all three")
        # From just after one tick's query to just after the sixth tick's: exactly those six queries.
        since, mark = len(chtcd.log_events()), schedlog.mark()
        wait_for(lambda: len(ticks(chtcd, since)) >= 6, 60, "six ticks in flight")
        sent = schedlog.commands(mark, identity)
        window = ticks(chtcd, since)
    finally:
        # The jobs never match: the daemon, under its own identity, removes them (a remove from this process
        # would go out under whichever identity its bindings first used, and be refused without a word).
        for n in (1, 2, 3):
            chtcd.cli("cancel", f"parked{n}", check=False)
        wait_for(lambda: all((chtcd.inbox / f"parked{n}").is_dir() for n in (1, 2, 3)) or chtcd.proc.poll() is not None,
                 60, "the parked bundles to come back cancelled")
        assert chtcd.stop() == 0
        if client:
            wait_for(lambda: not condor.AccessPoint(pool.collector, pool.access_point, pool.token_dir).query(
                f'{condor.CLIENT_ATTR} == "{client}"'), 60, "the parked jobs to leave the queue")
    queried = sum(1 for t in window if t["queried"])
    assert all(t["tracked"] == 3 for t in window)
    assert queried == len(window), "every tick with something in flight queries"
    # Each tick sends two: the summary count (one ad) and the query for what changed (here: nothing after the
    # first ticks). A seventh tick may have queried between the last log line and the mark: at most two more.
    assert sent["QUERY_JOB_ADS"] in (2 * queried, 2 * queried + 2), f"{sent['QUERY_JOB_ADS']} queries over {queried} ticks"
    assert set(sent) == {"QUERY_JOB_ADS"}, f"jobs that only wait need nothing else: {dict(sent)}"


# ---- the same economy against the in-memory access point ------------------------------------


@pytest.fixture
def env(tmp_path):
    return fake_pipeline(tmp_path)


def drop(layout: Layout, name: str) -> None:
    folder = layout.outbox / name
    folder.mkdir()
    (folder / f"{name}.sub").write_text("executable = run.sh\nqueue\n")
    (folder / "run.sh").write_text("#!/bin/sh\n")


def test_bundles_finishing_together_are_retrieved_and_released_together(env):
    pipe, ap, layout = env
    for name in ("a", "b", "c"):
        drop(layout, name)
    pipe.tick(1.0)
    for cluster in ap.clusters():
        ap.set_status(cluster, 0, 4, exit_code=0)
    ap.calls.clear()
    pipe.tick(2.0)
    assert ap.calls == ["count", "query", "retrieve", "release"]
    assert sorted(p.name for p in layout.inbox.iterdir()) == ["a", "b", "c"]
    assert all(r.stage == Stage.RELEASED for r in pipe.state.bundles.values())


def test_a_joint_retrieve_failed_by_one_bundle_still_delivers_the_others_in_that_tick(env):
    pipe, ap, layout = env
    for name in ("a", "b", "c"):
        drop(layout, name)
    pipe.tick(1.0)
    for cluster in ap.clusters():
        ap.set_status(cluster, 0, 4, exit_code=0)
    bad = {r.name: r for r in pipe.state.bundles.values()}["b"]
    ap.unfetchable[f"{bad.cluster}.0"] = "reading from file result.txt: (errno 2) No such file or directory"
    ap.calls.clear()
    pipe.tick(2.0)
    assert ap.calls.count("retrieve") == 4  # the joint one, then one each
    assert sorted(p.name for p in layout.inbox.iterdir()) == ["a", "c"]
    assert bad.stage == Stage.RUNNING and "errno 2" in bad.last_error
    assert not pipe.outage.ongoing


def test_a_tick_that_changes_nothing_does_not_write_the_state(env):
    pipe, ap, layout = env
    drop(layout, "a")
    pipe.tick(1.0)
    pipe.tick(2.0)
    before = layout.state_file.stat()
    pipe.tick(3.0)
    pipe.tick(4.0)
    after = layout.state_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert ap.calls.count("count") == ap.calls.count("query") == 4  # it did look, every tick


# ---- the door's conversion of an answer -----------------------------------------------------


class FakeAd:
    """What `query_client` and `_job_ad` ask of a ClassAd: its size, its JSON print, eval."""

    def __init__(self, **attrs: Any):
        self.attrs = attrs

    def __len__(self) -> int:
        return len(self.attrs)

    def printJson(self) -> str:
        import json

        return json.dumps({k: (f"/Expr({v[1:]})/" if isinstance(v, str) and v.startswith("=") else v) for k, v in self.attrs.items()})

    def eval(self, key: str) -> Any:
        return {"=RemoteUserCpu * 2": 3.0}.get(self.attrs[key])


def test_the_door_turns_an_answer_into_job_ads_and_asks_only_for_changes_when_told(monkeypatch):
    door = condor.AccessPoint.__new__(condor.AccessPoint)
    asked: List[str] = []
    answer = [
        FakeAd(ClusterId=7, ProcId=0, JobStatus=5, ServerTime=100, ChtcdBundleId="b", HoldReason="on hold\nServerTime = 220\n"),
        FakeAd(ClusterId=7, ProcId=1, JobStatus=1, ServerTime=100, ChtcdBundleId="b", RemoteUserCpu=1.5, RemoteSysCpu="=RemoteUserCpu * 2"),
    ]
    monkeypatch.setattr(door, "_query", lambda constraint: asked.append(constraint) or list(answer))
    held, idle = door.query_client("c")
    assert (held.status, held.hold_reason, held.bundle_id) == (5, "on hold\nServerTime = 220\n", "b")
    assert idle.cpu_seconds == 4.5  # 1.5 + the expression, evaluated by HTCondor
    assert held.cluster is idle.cluster or held.cluster == idle.cluster == 7
    assert (door.last_answer_ads, door.last_answer_attributes) == (2, 13)
    door.query_client("c", since=1000.0, listed=["x", "y"])
    assert asked == [
        'ChtcdClient == "c"',
        'ChtcdClient == "c" && (EnteredCurrentStatus >= 1000 || member(ChtcdBundleId, {"x", "y"}))',
    ]


# ---- the daemon takes a folder in at once, even mid-intake ------------------------------------


def test_a_folder_arriving_during_an_intake_gets_an_intake_of_its_own():
    """An intake asked for while one runs must follow it, not be skipped and then block later ones."""
    running, release, calls = threading.Event(), threading.Event(), []

    def intake(now: float) -> None:
        calls.append(now)
        if len(calls) == 1:
            running.set()
            release.wait(10)

    pipeline = SimpleNamespace(config=SimpleNamespace(daemon=SimpleNamespace(tick_seconds=60, settle_seconds=5)), intake=intake)
    daemon = Daemon(pipeline)  # type: ignore[arg-type]
    daemon.scheduler.start()
    try:
        daemon.schedule_intake(0.0)
        wait_for(running.is_set, 10, "the first intake to start")
        daemon.schedule_intake(0.0)  # a folder renamed in while the first intake runs
        # until the scheduler has tried it (a date job leaves the job store once fired or, before the fix, skipped)
        wait_for(lambda: daemon.scheduler.get_job("intake") is None, 10, "the scheduler to try the second intake")
        release.set()
        wait_for(lambda: len(calls) >= 2, 10, "the second intake")
        daemon.schedule_intake(0.0)  # and later requests are not swallowed either
        wait_for(lambda: len(calls) >= 3, 10, "a third intake")
    finally:
        release.set()
        daemon.scheduler.shutdown(wait=False)
