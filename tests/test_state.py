import json
import stat

from chtcd.state import BundleRecord, JobRecord, Stage, State, Store


def sample() -> State:
    state = State(client_id="abc")
    r = BundleRecord(id="b1", name="run", stage=Stage.RUNNING, claimed_at=1.0, cluster=3)
    r.jobs["0"] = JobRecord(proc=0, status=2)
    state.bundles[r.id] = r
    return state


def test_round_trip_and_private(tmp_path):
    store = Store(tmp_path / "state.json")
    assert store.save(sample())
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    loaded = Store(tmp_path / "state.json").load()
    assert loaded.bundles["b1"].jobs["0"].status == 2
    assert loaded.bundles["b1"].stage == Stage.RUNNING


def test_save_only_when_changed(tmp_path):
    store = Store(tmp_path / "state.json")
    state = sample()
    assert store.save(state)
    assert not store.save(state)
    state.bundles["b1"].stage = Stage.READY
    assert store.save(state)


def test_schema_version_is_written(tmp_path):
    Store(tmp_path / "state.json").save(sample())
    assert json.loads((tmp_path / "state.json").read_text().splitlines()[0])["schema"] == 1
