"""The state file's incremental encoder: whatever changed, and however, the file says what the state says."""

import dataclasses
import json
import random

import pytest

from chtcd import atomic
from chtcd.state import BundleRecord, JobRecord, Stage, State, Store


def state_with(bundles: int, jobs: int) -> State:
    state = State(client_id="abc")
    for b in range(bundles):
        record = BundleRecord(id=f"b{b}", name=f"run{b}", stage=Stage.RUNNING, claimed_at=1.0 + b, cluster=100 + b)
        record.jobs = {str(p): JobRecord(proc=p, status=1, entered_status_at=5.0, starts=0, wall_seconds=0.0) for p in range(jobs)}
        state.bundles[record.id] = record
    return state


def on_disk(store: Store) -> dict:
    return json.loads(store.path.read_bytes())


def test_the_file_follows_every_kind_of_change(tmp_path):
    rng = random.Random(5)
    store = Store(tmp_path / "state.json")
    state = state_with(6, 30)
    store.save(state)
    for step in range(60):
        before = json.loads(json.dumps(state.to_json()))
        record = rng.choice(list(state.bundles.values()))
        if not record.jobs:
            record.jobs["0"] = JobRecord(proc=0, status=1)
        kind = step % 6
        if kind == 0:  # a job changed (records are frozen: a change is a new record)
            key = rng.choice(list(record.jobs))
            record.jobs[key] = dataclasses.replace(record.jobs[key], status=5, hold_reason=f"held {step}")
        elif kind == 1:  # a job replaced by a new record with the same values but one
            key = rng.choice(list(record.jobs))
            old = record.jobs[key]
            record.jobs[key] = dataclasses.replace(old, gone=True)
        elif kind == 2:  # the bundle itself
            record.stage, record.outcome = Stage.DELIVERED, "delivered"
        elif kind == 3:  # a job added, one removed
            record.jobs[str(1000 + step)] = JobRecord(proc=1000 + step, status=2)
            record.jobs.pop(next(iter(record.jobs)))
        elif kind == 4:  # a bundle added, another forgotten
            state.bundles[f"n{step}"] = BundleRecord(id=f"n{step}", name="new", stage=Stage.CLAIMED, claimed_at=9.0)
            del state.bundles[next(iter(state.bundles))]
        else:  # the whole jobs dict swapped for an equal one
            record.jobs = dict(record.jobs)
        assert store.save(state) == (state.to_json() != before), f"step {step}: written iff something changed"
        assert on_disk(store) == state.to_json()
        assert State.from_json(on_disk(store)) == state


def test_defaults_are_left_out_and_read_back(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(1, 1)
    store.save(state)
    job = on_disk(store)["bundles"][0]["jobs"]["0"]
    assert "gone" not in job and "hold_code" not in job and job["starts"] == 0 and job["wall_seconds"] == 0.0
    assert Store(tmp_path / "state.json").load() == state


def test_nothing_changed_nothing_written(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(3, 5)
    assert store.save(state)
    before = store.path.stat()
    assert not store.save(state)
    again = Store(store.path)
    assert not again.save(again.load())  # reloaded: the same file, not rewritten
    after = store.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_failed_write_is_written_again_next_time(tmp_path, monkeypatch):
    store = Store(tmp_path / "state.json")
    state = state_with(2, 2)
    store.save(state)
    state.bundles["b0"].jobs["0"] = dataclasses.replace(state.bundles["b0"].jobs["0"], status=4)

    def disk_full(path, data, mode=0o600):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(atomic, "write_bytes", disk_full)
        with pytest.raises(OSError):
            store.save(state)
    assert store.save(state), "the change that never reached the disk must be saved now"
    assert on_disk(store) == state.to_json()


def test_several_jobs_of_a_large_bundle_changed_at_once(tmp_path):
    """First, last and scattered jobs of a bundle changed between two saves, their texts longer or shorter."""
    store = Store(tmp_path / "state.json")
    state = state_with(3, 200)
    store.save(state)
    rng = random.Random(7)
    for step in range(20):
        jobs = state.bundles[f"b{step % 3}"].jobs
        keys = list(jobs)
        for key in {keys[0], keys[-1], *rng.sample(keys, 5)}:
            if rng.random() < 0.5:
                jobs[key] = dataclasses.replace(jobs[key], wall_seconds=float(step))
            else:
                jobs[key] = dataclasses.replace(jobs[key], status=5, hold_reason="held " * rng.randrange(1, 9))
        assert store.save(state)
        assert on_disk(store) == state.to_json()


def test_a_job_record_cannot_change_behind_the_stores_back():
    """The store finds changed jobs by identity: a job record changed in place would be missed, so it cannot be."""
    job = JobRecord(proc=0, status=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = 4  # type: ignore[misc]
