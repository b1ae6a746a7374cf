"""`chtcd status`: the table, the JSON, one bundle in detail, the one-line summary; from files alone, fast."""

import json
import os
import time

import pytest
from doubles import chtcd, make_jwt

from chtcd import config as configuration
from chtcd import heartbeat, status
from chtcd.layout import Layout
from chtcd.state import BundleRecord, JobRecord, Stage, State, Store

NOW = time.time()


@pytest.fixture(autouse=True)
def fresh_now():
    """Ages are read against the clock when `chtcd status` runs: take NOW per test, not at collection."""
    global NOW
    NOW = time.time()


@pytest.fixture
def setup(tmp_path):
    token_dir = tmp_path / "tokens"
    token_dir.mkdir(mode=0o700)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[pool]\naccess_point = "ap2002.chtc.wisc.edu"\ntoken_dir = "{token_dir}"\n'
        f'[paths]\noutbox = "{tmp_path}/out"\ninbox = "{tmp_path}/in"\nstate_dir = "{tmp_path}/state"\n'
    )
    layout = Layout.from_config(configuration.load(str(config)))
    layout.create()
    return config, layout, token_dir


def running(name: str, held: bool = False, claimed: float = None) -> BundleRecord:
    claimed = NOW - 600 if claimed is None else claimed
    record = BundleRecord(id=f"id-{name}", name=name, stage=Stage.RUNNING, claimed_at=claimed, cluster=42, submit_file=f"{name}.sub")
    record.jobs = {"0": JobRecord(proc=0, status=1), "1": JobRecord(proc=1, status=2), "2": JobRecord(proc=2, status=4, exit_code=0)}
    if held:
        record.jobs["3"] = JobRecord(proc=3, status=5, hold_code=34, hold_reason="memory usage exceeded request_memory")
    return record


def delivered(name: str, when: float) -> BundleRecord:
    return BundleRecord(id=f"id-{name}", name=name, stage=Stage.DONE, claimed_at=when - 60, delivered_at=when,
                        outcome="delivered", inbox_path=f"/in/{name}")


def save(layout: Layout, *records: BundleRecord) -> None:
    Store(layout.state_file).save(State(client_id="c", bundles={r.id: r for r in records}))


def test_table_shows_counts_age_next_tick_and_holds(setup):
    config, layout, _ = setup
    save(layout, running("alpha"), running("beta", held=True))
    heartbeat.write(layout.heartbeat_file, heartbeat.Heartbeat(os.getpid(), NOW - 100, 60, NOW - 20, NOW + 40))
    done = chtcd("status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    head, columns, alpha, beta = done.stdout.splitlines()
    assert f"daemon running (pid {os.getpid()}), next tick in" in head
    assert columns.split() == ["BUNDLE", "STAGE", "IDLE", "RUN", "DONE", "HELD", "AGE", "NEXT", "NOTE"]
    assert alpha.split()[:8] == ["alpha", "running", "1", "1", "1", "0", "10m", alpha.split()[7]]
    assert alpha.split()[7].endswith("s")
    assert beta.split()[5] == "1" and "held: memory usage exceeded" in beta


def test_json_has_bundles_daemon_and_token(setup):
    config, layout, token_dir = setup
    (token_dir / "ap2002").write_text(make_jwt(exp=NOW + 5 * 86400) + "\n")
    (token_dir / "ap2002").chmod(0o600)
    save(layout, running("beta", held=True))
    done = chtcd("status", "--json", "--config", str(config))
    data = json.loads(done.stdout)
    (entry,) = data["bundles"]
    assert entry["jobs"]["held"] == 1 and entry["holds"][0]["code"] == 34 and "request_memory" in entry["holds"][0]["hint"]
    assert data["daemon"] is None and data["paused"] is False
    assert data["token"]["warning"] is True and abs(data["token"]["expires_at"] - (NOW + 5 * 86400)) < 2
    assert "expires on" in done.stderr and "chtcd token fetch" in done.stderr


def test_one_line_when_nothing_in_flight(setup):
    config, layout, _ = setup
    save(layout, delivered("old", NOW - 7200), delivered("new", NOW - 60))
    (layout.pause_flag).write_text("")
    done = chtcd("status", "--config", str(config))
    (line,) = done.stdout.splitlines()
    assert line.startswith("nothing in flight; 2 came back lately, the last new (delivered, 1m ago)")
    assert "daemon not running" in line and "intake paused" in line


def test_one_bundle_in_detail_with_hold_reasons(setup):
    config, layout, _ = setup
    save(layout, running("alpha"), running("beta", held=True))
    done = chtcd("status", "beta", "--config", str(config))
    assert done.returncode == 0
    text = done.stdout
    assert "bundle:      beta" in text and "cluster:     42" in text
    assert "held:        job 42.3 (code 34): memory usage exceeded request_memory" in text
    assert "hint: the job used more memory than it requested" in text
    assert "alpha" not in text
    missing = chtcd("status", "nope", "--config", str(config))
    assert missing.returncode == 1 and "no bundle named nope" in missing.stderr


def test_status_never_writes_the_state_folder(setup):
    config, layout, _ = setup
    save(layout, running("alpha"))
    layout.state_file.write_text('{"schema": 1, "bund')
    before = sorted(p.name for p in layout.state_dir.iterdir())
    done = chtcd("status", "--config", str(config))
    assert done.returncode == 2 and "cannot read the state" in done.stderr
    assert sorted(p.name for p in layout.state_dir.iterdir()) == before


def test_two_thousand_bundles_render(setup):
    """Every bundle gets its row (how fast is the benchmark's business: bench/run.py)."""
    _, layout, token_dir = setup
    records = [running(f"b{n:04d}", held=n % 50 == 0, claimed=NOW - n) for n in range(2000)]
    save(layout, *records)
    state = status.read_state(layout)
    overview = status.Overview.read(layout, token_dir, "ap2002.chtc.wisc.edu")
    table = status.as_table(state, NOW, overview)
    assert len(table.splitlines()) == 2002
    assert len(json.loads(status.as_json(state, NOW, overview))["bundles"]) == 2000
