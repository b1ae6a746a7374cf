"""The state store's snapshot and journal: whatever changed, and however, and wherever a save is cut short,
what is read back is what a save left."""

import dataclasses
import json
import os
import random

import pytest

from chtcd import glance, journal, state as state_module
from chtcd.state import BundleRecord, JobRecord, Stage, State, Store, read


def state_with(bundles: int, jobs: int) -> State:
    state = State(client_id="abc")
    for b in range(bundles):
        record = BundleRecord(id=f"b{b}", name=f"run{b}", stage=Stage.RUNNING, claimed_at=1.0 + b, cluster=100 + b)
        record.jobs = {str(p): JobRecord(proc=p, status=1, entered_status_at=5.0, starts=0, wall_seconds=0.0) for p in range(jobs)}
        state.bundles[record.id] = record
    return state


def copy(state: State) -> State:
    return State.from_json(json.loads(json.dumps(state.to_json())))


def _facts(tally: glance.Tally) -> tuple:
    return tally.counts, tally.held, tally.oldest_unfetched, tally.exit_codes


def lines(store: Store) -> list:
    return journal.entries(store.files.journal.read_bytes(), json.loads, read(store.path).generation)[0] if store.files.journal.exists() else []


def goes_on_from(store: Store, saved: State) -> None:
    """What is read back is ``saved``; a daemon starting there saves on from it, its next save read back whole."""
    assert read(store.path).value == saved
    again = Store(store.path)
    loaded = again.load()
    assert loaded == saved
    loaded.bundles["b1"].reason = "after the crash"
    assert again.save(loaded)
    assert read(store.path).value == loaded, "the next save follows what was read, not what was cut short"


@pytest.fixture
def small_journal(monkeypatch):
    """A snapshot every few saves, so that the changes below cross many generations."""
    monkeypatch.setattr(state_module, "JOURNAL_MIN_BYTES", 3000)


def test_what_is_read_follows_every_kind_of_change(tmp_path, small_journal):
    rng = random.Random(5)
    store = Store(tmp_path / "state.json")
    state = state_with(6, 30)
    store.save(state)
    generations = set()
    for step in range(90):
        before = copy(state)
        record = rng.choice(list(state.bundles.values()))
        if not record.jobs:
            record.jobs["0"] = JobRecord(proc=0, status=1)
        kind = step % 7
        if kind == 0:  # a job changed (records are frozen: a change is a new record)
            key = rng.choice(list(record.jobs))
            record.jobs[key] = dataclasses.replace(record.jobs[key], status=5, hold_reason=f"held {step}")
        elif kind == 1:  # a job replaced by a new record with the same values but one
            key = rng.choice(list(record.jobs))
            record.jobs[key] = dataclasses.replace(record.jobs[key], gone=True)
        elif kind == 2:  # the bundle itself
            record.stage, record.outcome = Stage.DELIVERED, "delivered"
        elif kind == 3:  # a job added, one removed
            record.jobs[str(1000 + step)] = JobRecord(proc=1000 + step, status=2)
            record.jobs.pop(next(iter(record.jobs)))
        elif kind == 4:  # a bundle added, another forgotten
            state.bundles[f"n{step}"] = BundleRecord(id=f"n{step}", name="new", stage=Stage.CLAIMED, claimed_at=9.0)
            del state.bundles[next(iter(state.bundles))]
        elif kind == 5:  # the whole jobs dict swapped for an equal one
            record.jobs = dict(record.jobs)
        else:
            state.paused = not state.paused
        assert store.save(state) == (state != before), f"step {step}: written iff something changed"
        found = read(store.path)
        generations.add(found.generation)
        assert found.value == state, f"step {step}"
        assert list(found.value.bundles) == list(state.bundles), "bundles in the daemon's order"
        shown = [(b["id"], _facts(b["jobs"])) for b in glance.read(store.path).bundles]
        assert shown == [(r.id, _facts(glance.tally_of(r.jobs.values()))) for r in state.bundles.values()], "status, jobs unread"
    assert len(generations) > 3, "the run crossed several snapshots"
    assert Store(store.path).load() == state


def test_one_changed_job_is_one_line_holding_that_job(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(3, 500)
    store.save(state)
    snapshot = store.path.read_bytes()
    jobs = state.bundles["b1"].jobs
    jobs["417"] = dataclasses.replace(jobs["417"], status=2)
    assert store.save(state)
    (line,) = lines(store)
    (entry,) = line["bundles"]
    assert entry["id"] == "b1" and entry["changed_jobs"] == {"417": {"proc": 417, "status": 2, "entered_status_at": 5.0, "starts": 0, "wall_seconds": 0.0}}
    assert store.path.read_bytes() == snapshot, "the snapshot is not rewritten for a change"
    assert read(store.path).value == state


def test_defaults_are_left_out_and_read_back(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(1, 1)
    store.save(state)
    job = journal.snapshot(store.path.read_bytes(), json.loads, lambda bundle: True)["bundles"][0]["jobs"]["0"]
    assert "gone" not in job and "hold_code" not in job and job["starts"] == 0 and job["wall_seconds"] == 0.0
    assert Store(tmp_path / "state.json").load() == state


def test_nothing_changed_nothing_written(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(3, 5)
    assert store.save(state)
    state.bundles["b0"].stage = Stage.READY
    assert store.save(state)
    files = [store.path, store.files.journal]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in files]
    assert not store.save(state)
    again = Store(store.path)
    assert not again.save(again.load())  # reloaded: the same state, nothing written
    assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in files] == before


def test_a_save_cut_short_is_read_as_the_save_before_it(tmp_path):
    store = Store(tmp_path / "state.json")
    state = state_with(2, 4)
    store.save(state)
    state.bundles["b0"].stage = Stage.READY
    store.save(state)
    saved = copy(state)
    state.bundles["b1"].stage = Stage.READY
    store.save(state)
    whole = store.files.journal.read_bytes()
    store.files.journal.write_bytes(whole[:-7])  # the last append cut short, as a crash mid-write leaves it
    goes_on_from(store, saved)


def test_a_failed_append_is_taken_back_and_written_next_time(tmp_path, monkeypatch):
    store = Store(tmp_path / "state.json")
    state = state_with(2, 2)
    store.save(state)
    state.bundles["b0"].jobs["0"] = dataclasses.replace(state.bundles["b0"].jobs["0"], status=4)
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data)[:10])
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(state_module.os, "write", disk_full)
        with pytest.raises(OSError):
            store.save(state)
    assert not store.files.journal.exists() or store.files.journal.read_bytes() == b"", "the partial line is cut off"
    assert store.save(state), "the change that never reached the disk must be saved now"
    assert read(store.path).value == state


@pytest.mark.parametrize("cut_at", range(4))
def test_a_snapshot_cut_short_at_any_step_loses_nothing(tmp_path, monkeypatch, cut_at):
    """Each step of writing a new snapshot (aside, journal moved, snapshot moved, new one in) interrupted:
    what is read back is the state of the last save, and saving goes on from there."""
    store = Store(tmp_path / "state.json")
    state = state_with(3, 20)
    store.save(state)
    for n in range(3):
        state.bundles[f"b{n}"].jobs["5"] = dataclasses.replace(state.bundles[f"b{n}"].jobs["5"], status=2)
        store.save(state)
    saved = copy(state)
    state.bundles["b2"].stage = Stage.READY
    calls = []
    real_replace, real_aside = os.replace, state_module.atomic.write_aside

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) >= cut_at:
            raise KeyboardInterrupt("the power went")
        real_replace(src, dst)

    def aside(path, parts):
        real_aside(path, parts)
        raise KeyboardInterrupt("the power went")

    monkeypatch.setattr(state_module, "JOURNAL_MIN_BYTES", 0)
    with monkeypatch.context() as patched:
        patched.setattr(state_module.os, "replace", interrupted)
        if cut_at == 0:
            patched.setattr(state_module.atomic, "write_aside", aside)
        with pytest.raises(KeyboardInterrupt):
            store.save(state)
    assert cut_at == 0 or len(calls) == cut_at
    goes_on_from(store, saved)


def test_a_damaged_snapshot_falls_back_to_the_generation_before_with_its_journal(tmp_path, monkeypatch):
    store = Store(tmp_path / "state.json")
    state = state_with(2, 10)
    store.save(state)
    state.bundles["b0"].stage = Stage.READY
    store.save(state)  # a line of generation 1
    before_snapshot = copy(state)
    monkeypatch.setattr(state_module, "JOURNAL_MIN_BYTES", 0)
    state.bundles["b1"].stage = Stage.READY
    store.save(state)  # generation 2 holds this change; generation 1 and its journal move aside
    state.bundles["b1"].reason = "only in generation 2's journal"
    store.save(state)
    store.path.write_text('{"schema": 1, "bund')
    again = Store(store.path)
    assert again.load() == before_snapshot, "generation 1 and its journal: every save but the last two"
    assert again.recovered_from == "previous generation"


def test_a_journal_left_without_its_snapshot_never_follows_a_new_one(tmp_path):
    """Both snapshots deleted by hand, the journals left: a new state's first snapshot is generation 1 again,
    and the old generation-1 lines must not be replayed onto it."""
    store = Store(tmp_path / "state.json")
    old = state_with(2, 3)
    store.save(old)
    old.bundles["b0"].stage = Stage.DONE
    store.save(old)  # a line of generation 1
    store.path.unlink()
    again = Store(store.path)
    fresh = again.load()
    assert fresh.bundles == {}
    fresh.bundles["n"] = BundleRecord(id="n", name="new", stage=Stage.CLAIMED, claimed_at=9.0)
    assert again.save(fresh)
    assert read(store.path).value == fresh
    assert list(tmp_path.glob("state.journal.corrupt-*")), "the old journal is kept aside, not deleted"


def test_a_state_file_from_before_the_journal_is_read_and_continued(tmp_path):
    state = state_with(2, 3)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state.to_json()))  # schema 1, no generation, no journal
    store = Store(path)
    assert store.load() == state
    state.bundles["b0"].stage = Stage.DONE
    assert store.save(state)
    assert Store(path).load() == state


def test_a_job_record_cannot_change_behind_the_stores_back():
    """The store finds changed jobs by identity: a job record changed in place would be missed, so it cannot be."""
    job = JobRecord(proc=0, status=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = 4  # type: ignore[misc]
