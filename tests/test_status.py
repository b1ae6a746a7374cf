"""`chtcd status`: the table, the JSON, one bundle in detail, the one-line summary; from files alone, fast."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
from doubles import REPO, chtcd, make_jwt

from chtcd import config as configuration
from chtcd import glance, heartbeat, status
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
    assert columns.split() == ["BUNDLE", "STAGE", "IDLE", "RUNNING", "DONE", "HELD", "AGE", "NEXT", "NOTE"]
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


def test_nothing_in_flight_one_line_then_the_last_days_bundles(setup):
    config, layout, _ = setup
    refused = BundleRecord(id="id-bad", name="bad", stage=Stage.DONE, claimed_at=NOW - 120, delivered_at=NOW - 100,
                           outcome="rejected", reason="line 3: no queue statement", inbox_path="/in/bad")
    save(layout, delivered("ancient", NOW - 2 * 86400), delivered("old", NOW - 7200), refused, delivered("new", NOW - 60))
    (layout.pause_flag).write_text("")
    done = chtcd("status", "--config", str(config))
    line, header, *rows = done.stdout.splitlines()
    assert line.startswith("nothing in flight; 4 came back lately, the last new (delivered, 1m ago)")
    assert "daemon not running" in line and "intake paused" in line
    assert header.split()[0] == "BUNDLE"
    assert [r.split()[0] for r in rows] == ["old", "bad", "new"], "the last day's bundles, oldest first; not the one of two days ago"
    assert "rejected: line 3: no queue statement" in rows[1]


def test_nothing_at_all_is_one_line(setup):
    config, layout, _ = setup
    save(layout, delivered("ancient", NOW - 2 * 86400))
    (line,) = chtcd("status", "--config", str(config)).stdout.splitlines()
    assert line.startswith("nothing in flight; 1 came back lately")


def test_table_and_detail_use_the_same_words_for_jobs_waiting_for_inputs(setup):
    config, layout, _ = setup
    record = BundleRecord(id="id-new", name="new", stage=Stage.RUNNING, claimed_at=NOW - 5, cluster=7,
                          jobs={"0": JobRecord(proc=0, status=5, hold_code=16)})
    save(layout, record)
    _, header, row = chtcd("status", "--config", str(config)).stdout.splitlines()
    assert dict(zip(header.split()[2:6], row.split()[2:6])) == {"IDLE": "1", "RUNNING": "0", "DONE": "0", "HELD": "0"}
    text = chtcd("status", "new", "--config", str(config)).stdout
    assert "jobs:        1 idle (of the idle, 1 still waiting for their inputs)" in text
    assert "spooling" not in text


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
    state = status.read(layout)
    overview = status.Overview.read(layout, token_dir, "ap2002.chtc.wisc.edu")
    table = status.as_table(state, NOW, overview)
    assert len(table.splitlines()) == 2002
    assert len(json.loads(status.as_json(state, NOW, overview))["bundles"]) == 2000
    assert table == status.as_table(glance.Snapshot.of(status.read_state(layout)), NOW, overview)  # from the file as from the records


def test_table_warns_before_the_access_point_drops_finished_outputs(setup):
    config, layout, _ = setup
    record = running("slow")
    record.jobs["2"] = dataclasses.replace(record.jobs["2"], completed_at=NOW - 7 * 86400 - 60)  # done a week ago, not fetched yet
    save(layout, record, running("fresh"))
    done = chtcd("status", "--config", str(config))
    slow = next(line for line in done.stdout.splitlines() if line.startswith("slow"))
    assert "warning: finished outputs are dropped by the access point in 2d" in slow
    rows = {b["name"]: b for b in json.loads(chtcd("status", "--json", "--config", str(config)).stdout)["bundles"]}
    assert 2 * 86400 < rows["slow"]["outputs_expire_in_seconds"] < 3 * 86400
    assert rows["fresh"]["outputs_expire_in_seconds"] is None


def test_detail_counts_every_phase_and_the_exit_codes(setup):
    config, layout, _ = setup
    record = running("mixed")
    record.jobs.update({
        "3": JobRecord(proc=3, status=5, hold_code=16),  # waiting for its inputs: spooling, not held
        "4": JobRecord(proc=4, status=4, exit_code=3, completed_at=NOW - 60),
        "5": JobRecord(proc=5, status=4, exit_code=7, completed_at=NOW - 60, retrieved=True),
        "6": JobRecord(proc=6, status=1, gone=True),
        "7": JobRecord(proc=7, status=5, hold_code=13, hold_reason="Transfer input files failure"),
    })
    save(layout, record)
    text = chtcd("status", "mixed", "--config", str(config)).stdout
    assert "jobs:        2 idle, 1 running, 3 done, 1 held, 1 removed (of the idle, 1 still waiting for their inputs)" in text
    assert "exit codes:  2 job(s) exited non-zero: 3, 7" in text
    assert "held:        job 42.7 (code 13): Transfer input files failure" in text
    (row,) = json.loads(chtcd("status", "mixed", "--json", "--config", str(config)).stdout)
    assert row["jobs"] == {"spooling": 1, "idle": 1, "running": 1, "held": 1, "done": 3, "removed": 1}


def test_a_save_cut_short_is_read_as_the_save_before_it(setup):
    config, layout, _ = setup
    store = Store(layout.state_file)
    store.save(State(client_id="c", bundles={"id-alpha": running("alpha")}))
    store.save(State(client_id="c", bundles={"id-alpha": running("alpha"), "id-beta": running("beta")}))
    store.files.journal.write_bytes(store.files.journal.read_bytes()[:-20])  # the second save's line, cut short
    done = chtcd("status", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[2:]] == ["alpha"]


def test_status_needs_none_of_the_daemons_modules(setup):
    """Reading a file and printing a table: no HTCondor bindings, scheduler or watcher, nor the daemon's records
    (only a held job's hint brings those in, with `report`)."""
    config, layout, _ = setup
    save(layout, running("alpha"))
    script = (
        "import sys, contextlib, io\n"
        "from chtcd.cli import main\n"
        "for args in (['status'], ['status', '--json']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        f"        assert main(args + ['--config', {str(config)!r}]) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    loaded = set(done.stdout.split())
    assert "chtcd.status" in loaded, done.stderr
    heavy = {"htcondor", "htcondor2", "classad", "classad2", "apscheduler", "watchdog", "structlog",
             "chtcd.condor", "chtcd.pipeline", "chtcd.daemon", "chtcd.state", "chtcd.lifecycle"}
    assert loaded & heavy == set()


def test_detail_and_json_show_requested_against_used_for_finished_jobs(setup):
    config, layout, _ = setup
    record = running("sized")
    for key in record.jobs:
        record.jobs[key] = dataclasses.replace(record.jobs[key], request_memory_mb=8192)
    record.jobs["2"] = dataclasses.replace(record.jobs["2"], memory_mb=700)
    save(layout, record)
    text = chtcd("status", "sized", "--config", str(config)).stdout
    assert "resources:   memory: requested 8.0 GB, used at most 700 MB (median 700 MB)" in text
    assert "next time: request_memory = 896MB" in text
    (row,) = json.loads(chtcd("status", "sized", "--json", "--config", str(config)).stdout)
    assert row["resources"]["memory"]["used"] == {"max": 700, "median": 700}
    assert row["resources"]["suggestions"][0]["line"] == "request_memory = 896MB"


def test_why_idle_in_the_table_in_detail_and_in_json(setup):
    from chtcd import idle

    config, layout, _ = setup
    record = BundleRecord(id="id-stuck", name="stuck", stage=Stage.RUNNING, claimed_at=NOW - 900, cluster=7,
                          jobs={"0": JobRecord(proc=0, status=1, entered_status_at=NOW - 800)}, idle_explained_at=NOW - 60)
    facts = idle.Facts(job="7.0", idle_since=NOW - 800, requirements="(OpSysMajorVer == 9) && (TARGET.Memory >= RequestMemory)",
                       slots=4, matching=0, clauses=[idle.Clause("OpSysMajorVer == 9", 0, 4), idle.Clause("TARGET.Memory >= RequestMemory", 4, 0)])
    record.idle = idle.explain(facts, NOW - 60)
    save(layout, record)
    _, _, row = chtcd("status", "--config", str(config)).stdout.splitlines()
    assert "idle: no slot matches: none of the pool's 4 slot(s) meets OpSysMajorVer == 9 (4 meet the rest); no slot has" in row
    text = chtcd("status", "stuck", "--config", str(config)).stdout
    assert "why idle:    job 7.0: no slot matches: none of the pool's 4 slot(s) meets OpSysMajorVer == 9" in text
    assert "hint: no slot has OpSysMajorVer == 9: drop that clause or use a container" in text
    assert "    0 of 4 slot(s) meet OpSysMajorVer == 9" in text
    (full,) = json.loads(chtcd("status", "stuck", "--json", "--config", str(config)).stdout)
    assert full["idle"]["clauses"][0] == {"clause": "OpSysMajorVer == 9", "slots": 0, "slots_meeting_the_rest": 4, "undefined": 0}
    listed = json.loads(chtcd("status", "--json", "--config", str(config)).stdout)["bundles"][0]
    assert listed["idle"] == full["idle"]
