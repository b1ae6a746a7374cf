"""`glance`, the state file as `status` reads it: the same counts, holds and dates as the daemon's records give."""

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chtcd import glance, lifecycle, state
from chtcd.state import BundleRecord, JobRecord, Stage, State, Store


def test_the_names_it_shares_are_the_records_own():
    assert glance.STAGES == {stage.value for stage in Stage}
    assert glance.PHASES == tuple(phase.value for phase in lifecycle.Phase)
    assert glance.SCHEMA_VERSION == state.SCHEMA_VERSION
    assert glance.SPOOLING_HOLD_CODE == lifecycle.SPOOLING_HOLD_CODE


def test_a_jobs_phase_is_lifecycles():
    for status in range(-1, 10):
        for gone in (False, True):
            for hold_code in (None, 0, 13, lifecycle.SPOOLING_HOLD_CODE, 34):
                job = JobRecord(proc=0, status=status, gone=gone, hold_code=hold_code)
                assert glance.phase(status, gone, hold_code) == lifecycle.phase(job).value, job


jobs = st.builds(  # mostly at the defaults, as most jobs are, so that alike jobs and the file's short form come up
    JobRecord,
    proc=st.integers(0, 50),
    status=st.sampled_from([0, 1, 2, 3, 4, 4, 5, 5, 6, 7]),
    entered_status_at=st.none() | st.floats(0, 2e9),
    hold_code=st.sampled_from([None, None, None, 0, 13, 16, 34]),
    hold_reason=st.none() | st.text(max_size=30),
    exit_code=st.sampled_from([None, None, None, 0, 1, 3, -1]),
    completed_at=st.none() | st.sampled_from([0, 0.0]) | st.floats(0, 2e9) | st.integers(0, 2_000_000_000),
    gone=st.sampled_from([False, False, True]),
    retrieved=st.sampled_from([False, False, True]),
)


def _expected(record: BundleRecord):
    """What `status` showed of these jobs when it read them as records (before `glance`)."""
    jobs = record.jobs.values()
    held = [
        (j.proc, j.hold_code, j.hold_reason)
        for j in sorted(jobs, key=lambda j: j.proc)
        if j.status == 5 and lifecycle.phase(j) == lifecycle.Phase.HELD
    ]
    waiting = [j.completed_at for j in jobs if j.completed_at and j.status == 4 and not j.gone and not j.retrieved]
    failed = Counter(j.exit_code for j in jobs if j.exit_code not in (None, 0))
    return lifecycle.counts(jobs), held, (min(waiting) if waiting else None), dict(failed)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(jobs, max_size=8), min_size=1, max_size=4))
@example([[JobRecord(proc=0, status=4, completed_at=5.0), JobRecord(proc=1, status=4, completed_at=0.0)]])
@example([[JobRecord(proc=1, status=5, hold_code=34, hold_reason='"quoted" \\'), JobRecord(proc=0, status=5, hold_code=12)]])
def test_the_file_read_tallies_as_the_records_do(bundles):
    records = []
    for n, job_list in enumerate(bundles):
        record = BundleRecord(id=f"id{n}", name=f"b{n}", stage=Stage.RUNNING, claimed_at=1e9 + n / 3, cluster=n)
        record.jobs = {str(j.proc): j for j in job_list}
        records.append(record)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        Store(path).save(State(client_id="c", bundles={r.id: r for r in records}))
        read = glance.read(path)  # the tallies the daemon kept beside each bundle, the jobs unread
        with_jobs = glance.read(path, [r.name for r in records])
    assert [b["name"] for b in read.bundles] == [r.name for r in records]
    for record, bundle, jobs in zip(records, read.bundles, with_jobs.bundles):
        tally = bundle["jobs"]
        assert (tally.counts, tally.held, tally.oldest_unfetched, tally.exit_codes) == _expected(record)
        assert bundle["claimed_at"] == record.claimed_at
        assert bundle["job_fields"] == {}, "status reads no job it does not show"
        counted = glance.tally(jobs["job_fields"])  # the jobs as the file holds them, counted by `status NAME` alike
        assert (counted.counts, counted.held, counted.oldest_unfetched, counted.exit_codes) == _expected(record)


def test_bundles_alike_tally_alike_and_held_ones_keep_their_own_reasons():
    one = {"0": {"proc": 0, "status": 2}}
    first, second = glance.tally(one), glance.tally({"0": {"proc": 0, "status": 2}})
    assert (first.counts, first.held, first.exit_codes) == (second.counts, second.held, second.exit_codes)
    held = {"0": {"proc": 0, "status": 5, "hold_code": 34, "hold_reason": "a"}}
    assert glance.tally(held).held == [(0, 34, "a")]
    assert glance.tally({"0": {"proc": 0, "status": 5, "hold_code": 34, "hold_reason": "b"}}).held == [(0, 34, "b")]
    assert glance.tally(held).held == [(0, 34, "a")], "an earlier bundle's reason is not shown for a later one"
