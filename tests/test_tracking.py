"""What the tick asks for and how its answer is merged (pure rules; the real pool is in test_pool_tracking.py)."""

from __future__ import annotations

import dataclasses

from chtcd import condor, tracking
from chtcd.state import BundleRecord, JobRecord, Stage
from fakes import drop, fake_pipeline


def running(bid: str, cluster: int, n: int) -> BundleRecord:
    r = BundleRecord(id=bid, name=bid, stage=Stage.RUNNING, claimed_at=0.0, cluster=cluster)
    r.jobs = {str(p): JobRecord(proc=p, status=1) for p in range(n)}
    return r


def ad(bid: str, cluster: int, proc: int, status: int) -> condor.JobAd:
    return condor.JobAd(bundle_id=bid, cluster=cluster, proc=proc, status=status)


def test_an_answer_of_changes_leaves_the_absent_jobs_alone_and_a_full_one_marks_them_gone():
    a = running("a", 1, 3)
    tracker = tracking.Tracker()
    changes = tracking.Ask(since=100.0, listed=(), why="changes")
    tracker.merge([a], {"a": a}, [ad("a", 1, 1, 2)], 0.0, changes, condor.Count(3, 200.0))
    assert [(j.status, j.gone) for j in a.jobs.values()] == [(1, False), (2, False), (1, False)]
    tracker.merge([a], {"a": a}, [ad("a", 1, 1, 2)], 0.0, tracking.Ask(None, (), "count"), condor.Count(1, 260.0))
    assert [j.gone for j in a.jobs.values()] == [True, False, True]


def test_a_bundle_listed_in_full_has_its_absent_jobs_marked_gone_even_in_an_answer_of_changes():
    a, b = running("a", 1, 2), running("b", 2, 2)
    b.stage = Stage.RELEASED
    tracking.Tracker().merge([a, b], {"a": a, "b": b}, [ad("b", 2, 0, 4)], 0.0, tracking.Ask(100.0, ("b",), "changes"), None)
    assert [j.gone for j in a.jobs.values()] == [False, False]
    assert [j.gone for j in b.jobs.values()] == [False, True]


def test_every_job_is_asked_for_at_start_when_the_count_differs_and_every_ten_minutes():
    a = running("a", 1, 3)
    tracker = tracking.Tracker()
    assert tracker.ask([a], (), condor.Count(3, 1000.0), 0.0).why == "start"
    tracker.merge([a], {"a": a}, [ad("a", 1, p, 1) for p in range(3)], 0.0, tracking.Ask(None, (), "start"), condor.Count(3, 1000.0))
    ask = tracker.ask([a], (), condor.Count(3, 1060.0), 60.0)
    assert (ask.why, ask.since) == ("changes", 1000.0 - tracking.CHANGE_MARGIN_SECONDS)
    assert tracker.ask([a], (), condor.Count(2, 1060.0), 60.0).full, "a job left: the count differs"
    assert tracker.ask([a], (), condor.Count(3, 1600.0), tracking.FULL_EVERY_SECONDS).why == "periodic"


def test_jobs_no_record_holds_are_counted_as_expected_after_a_full_answer():
    a = running("a", 1, 1)
    tracker = tracking.Tracker()
    stray = ad("lost-state", 9, 0, 1)
    strays = tracker.merge([a], {"a": a}, [ad("a", 1, 0, 1), stray], 0.0, tracking.Ask(None, (), "start"), condor.Count(2, 10.0))
    assert strays == [stray]
    assert tracker.expected([a], ()) == 2
    assert not tracker.ask([a], (), condor.Count(2, 70.0), 60.0).full


def test_a_job_that_leaves_the_queue_without_a_change_of_status_is_noticed_on_the_next_tick(tmp_path):
    pipe, ap, layout = fake_pipeline(tmp_path)
    drop(layout, "a", "queue 2")
    pipe.tick(1.0)
    pipe.tick(2.0)
    record = next(iter(pipe.state.bundles.values()))
    ap.jobs.pop((record.cluster, 1))  # gone from the queue, no status change an answer of changes could show
    pipe.tick(3.0)
    assert record.jobs["1"].gone and not record.jobs["0"].gone


def test_a_steady_tally_means_the_lifecycle_would_only_wait():
    """Whatever the jobs, when the tally says steady, `next_step` of a running bundle out of trouble waits:
    the tick skips it on that word; and the tally's idle figures are what `idle` would find walking the jobs."""
    import random

    from chtcd import idle, lifecycle

    rng = random.Random(14)
    statuses = [(1, None), (2, None), (3, None), (4, None), (5, 16), (5, 1), (6, None)]
    steady = 0
    for _ in range(3000):
        r = running("a", 1, 0)
        r.spooled_at = 0.0
        for p in range(rng.randrange(0, 5)):
            status, code = rng.choice(statuses)
            r.jobs[str(p)] = JobRecord(proc=p, status=status, hold_code=code, gone=rng.random() < 0.15,
                                       entered_status_at=float(rng.randrange(0, 900)), completed_at=float(rng.randrange(0, 900)))
        counted = tracking.tally(r.jobs)
        now = rng.choice([1000.0, 10.0**7])
        if counted.steady:
            steady += 1
            assert isinstance(lifecycle.next_step(r, now, 100.0), lifecycle.Wait), r.jobs
        assert bool(counted.idle) == idle.still_idle(r)
        assert idle.due(r, now, 600, counted.oldest_idle) == idle.due(r, now, 600)
    assert 300 < steady < 2700, "both kinds were tried"


def test_a_full_query_s_pages_cover_every_cluster_once_each_within_the_page_size(monkeypatch):
    import random

    monkeypatch.setattr(tracking, "PAGE_JOBS", 3000)
    rng = random.Random(3)
    for _ in range(200):
        records = [running(f"b{n}", rng.randrange(1, 10_000), rng.choice([1, 1, 5, 400, 2500])) for n in range(rng.randrange(0, 40))]
        clusters = sorted({r.cluster for r in records})
        pages = tracking.pages(records)
        assert pages[0][0] is None and pages[-1][1] is None, "open at both ends: jobs no record knows are asked for too"
        assert all(a[1] == b[0] for a, b in zip(pages, pages[1:])), "each page starts where the one before ends"
        for low, high in pages:
            inside = [r for r in records if (low is None or r.cluster >= low) and (high is None or r.cluster < high)]
            jobs = sum(len(r.jobs) for r in inside)
            assert jobs <= tracking.PAGE_JOBS or len({r.cluster for r in inside}) == 1, (low, high, jobs)
        assert all(low is None or low in clusters for low, _ in pages), "pages split between clusters"
        assert sum(len(r.jobs) for r in records) <= tracking.PAGE_JOBS or len(pages) > 1


def test_a_full_query_in_pages_finds_what_one_query_would(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking, "PAGE_JOBS", 3)
    pipe, ap, layout = fake_pipeline(tmp_path)
    for name, n in (("a", 2), ("b", 3), ("c", 2), ("d", 1)):
        drop(layout, name, f"queue {n}")
    pipe.tick(1.0)
    ap.calls.clear()
    stray = next(iter(ap.jobs.values()))
    ap.jobs[(999, 0)] = dataclasses.replace(stray, ad=dataclasses.replace(stray.ad, cluster=999, bundle_id="lost"))
    pipe.tracker.full_at = None  # the next tick asks for every job
    pipe.tick(2.0)
    assert ap.calls.count("query") == len(tracking.pages([r for r in pipe.state.bundles.values()])) == 3
    assert pipe.tracker.others == 1, "the job no record knows was found in the last page"
    assert all(not j.gone for r in pipe.state.bundles.values() for j in r.jobs.values())
