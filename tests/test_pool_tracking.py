"""The tick asks for what changed, on the real pool: what comes through the door, and what is never missed.

A pipeline runs in this process against the real schedd with the real door
(`condor.AccessPoint`), its ticks called by the test with the wall clock, so
each answer can be counted (job ads, attributes) and each call seen. Jobs
never match a slot (``requirements = false``): they change only when the test
changes them behind chtcd's back, with the bindings (hold, release, remove).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from harness import wait_for

from chtcd import condor, localpool, tracking
from chtcd import config as configuration
from chtcd.layout import Layout
from chtcd.pipeline import Pipeline
from chtcd.state import Stage, Store

pytestmark = pytest.mark.pool

PARKED = "executable = /bin/true\ntransfer_executable = false\nrequirements = false\nrequest_memory = 16MB\nrequest_disk = 16MB\nqueue {n}\n"


class Door(condor.AccessPoint):
    """The real door, noting each call the tick makes and what each query's answer held."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.calls: List[Tuple[str, Any]] = []
        self.between: Any = None  # run once right after the next count, before the query (a change in the gap)

    def count_client(self, client_id, excluding=()):
        count = super().count_client(client_id, excluding)
        self.calls.append(("count", count.jobs))
        if self.between is not None:
            act, self.between = self.between, None
            act()
        return count

    def act_on(self, job: str, action: str) -> None:
        """Hold or release one job as someone else would, behind chtcd's back: as the pool's administrator."""
        cluster, proc = job.split(".")
        localpool.as_administrator(localpool.describe(), f"condor_{action.lower()}", f"ClusterId == {cluster} && ProcId == {proc}")

    def query_client(self, client_id, since=None, listed=(), clusters=(None, None)):
        jobs = super().query_client(client_id, since, listed, clusters)
        self.calls.append(("query", "full" if since is None else "changes", self.last_answer_ads, self.last_answer_attributes))
        return jobs


def make_pipeline(pool: localpool.LocalPool, base: Path) -> Tuple[Pipeline, Door]:
    tokens = base / "tokens"
    if not tokens.exists():
        localpool.issue_token(pool, "tracking-" + secrets.token_hex(3), tokens)
    config = configuration.from_mapping(
        {
            "pool": {"collector": pool.collector, "access_point": pool.access_point, "token_dir": str(tokens)},
            "paths": {"outbox": str(base / "outbox"), "inbox": str(base / "inbox"), "state_dir": str(base / "state")},
            "daemon": {"tick_seconds": 1, "settle_seconds": 0},
            "submit": dict(pool.submit_defaults),
        },
        None,
    )
    layout = Layout.from_config(config)
    layout.create()
    store = Store(layout.state_file)
    door = Door(pool.collector, pool.access_point, tokens)
    return Pipeline(config, layout, store, store.load(), door), door


def drop(pipe: Pipeline, name: str, n: int) -> None:
    folder = pipe.layout.outbox / name
    folder.mkdir()
    (folder / f"{name}.sub").write_text(PARKED.format(n=n))


@pytest.fixture
def parked(pool, tmp_path):
    """A pipeline with two bundles of parked jobs in flight (3 and 2 jobs), all of them spooled and idle."""
    pipe, door = make_pipeline(pool, tmp_path)
    drop(pipe, "three", 3)
    drop(pipe, "two", 2)
    try:
        pipe.tick(time.time())
        wait_for(lambda: pipe.tick(time.time()) or all_idle(pipe), 60, "every job out of its spooling hold")
        yield pipe, door
    finally:
        localpool.as_administrator(pool, "condor_rm", f'{condor.CLIENT_ATTR} == "{pipe.state.client_id}"')


def all_idle(pipe: Pipeline) -> bool:
    jobs = [j for r in pipe.state.bundles.values() for j in r.jobs.values()]
    return len(jobs) == 5 and all(j.status == 1 for j in jobs)


def record(pipe: Pipeline, name: str):
    return next(r for r in pipe.state.bundles.values() if r.name == name)


def tick(pipe: Pipeline, door: Door) -> List[Tuple[str, Any]]:
    """One tick; the calls it made to the schedd."""
    door.calls.clear()
    pipe.tick(time.time())
    return list(door.calls)


def quiet(pipe: Pipeline, door: Door) -> None:
    """Ticks until one asks only for changes and gets nothing: the last change is older than the margin."""
    wait_for(lambda: tick(pipe, door)[-1] == ("query", "changes", 0, 0), tracking.CHANGE_MARGIN_SECONDS + 30, "a quiet tick")


def test_a_quiet_tick_brings_no_job_ads(parked):
    pipe, door = parked
    quiet(pipe, door)
    for _ in range(3):
        assert tick(pipe, door) == [("count", 5), ("query", "changes", 0, 0)], "a count, and an empty answer"
    assert all(r.stage == Stage.RUNNING for r in pipe.state.bundles.values())


def test_a_job_that_changes_between_two_ticks_is_seen(parked):
    pipe, door = parked
    three = record(pipe, "three")
    quiet(pipe, door)
    seen = []
    for n, proc in enumerate([0, 1, 2, 0]):
        job = f"{three.cluster}.{proc}"
        door.act_on(job, "Hold" if three.jobs[str(proc)].status == 1 else "Release")
        want = 5 if three.jobs[str(proc)].status == 1 else 1
        calls = tick(pipe, door)
        assert calls[-1][:2] == ("query", "changes"), "only the changes were asked for"
        assert three.jobs[str(proc)].status == want, f"change {n}: job {job} not seen by the next tick"
        seen.append(calls[-1][2])
    # A change in the gap between the count and the query, and one right after the query: both seen.
    door.between = lambda: door.act_on(f"{three.cluster}.1", "Release")
    tick(pipe, door)
    door.act_on(f"{three.cluster}.2", "Release")
    tick(pipe, door)
    assert three.jobs["1"].status == 1 and three.jobs["2"].status == 1
    assert all(0 < n <= 5 for n in seen), f"answers held only recently changed jobs: {seen}"


def test_a_job_removed_behind_chtcds_back_is_noticed_by_the_count(parked, pool):
    pipe, door = parked
    two = record(pipe, "two")
    quiet(pipe, door)
    localpool.as_administrator(pool, "condor_rm", f"ClusterId == {two.cluster} && ProcId == 1")
    # The removed job leaves the queue at once: no answer need ever show it removed, the count shows it gone.
    calls = []
    wait_for(lambda: calls.extend(tick(pipe, door)) or two.jobs["1"].gone, 30, "the removed job to be noticed")
    assert ("query", "full") in [c[:2] for c in calls], "the count differed, so every job was asked for"
    assert not two.jobs["0"].gone and all(not j.gone for j in record(pipe, "three").jobs.values())
    calls = tick(pipe, door)
    assert [c[:2] for c in calls] == [("count", 4), ("query", "changes")], "the counts agree again"


@pytest.mark.parametrize("page", [tracking.PAGE_JOBS, 3])
def test_a_restart_rebuilds_from_the_state_and_one_full_query(parked, pool, tmp_path, monkeypatch, page):
    """With pages of 3 jobs, the full query is two: the bundles of 3 and 2 jobs, each in a page of its own."""
    monkeypatch.setattr(tracking, "PAGE_JOBS", page)
    pipe, door = parked
    quiet(pipe, door)
    before = {r.id: (r.stage, r.cluster, {k: (j.status, j.gone) for k, j in r.jobs.items()}) for r in pipe.state.bundles.values()}
    three = record(pipe, "three")
    door.act_on(f"{three.cluster}.2", "Hold")  # changed while chtcd was down
    again, door2 = make_pipeline(pool, tmp_path)
    assert again.state.client_id == pipe.state.client_id
    calls = tick(again, door2)
    pages = 1 if page >= 5 else 2
    assert [c[:2] for c in calls] == [("count", 5)] + [("query", "full")] * pages, f"a count and one query for every job, in pages: {calls}"
    assert [c[2] for c in calls[1:]] == ([5] if pages == 1 else [3, 2])
    before[three.id][2]["2"] = (5, False)
    after = {r.id: (r.stage, r.cluster, {k: (j.status, j.gone) for k, j in r.jobs.items()}) for r in again.state.bundles.values()}
    assert after == before
    assert [c[:2] for c in tick(again, door2)] == [("count", 5), ("query", "changes")]
