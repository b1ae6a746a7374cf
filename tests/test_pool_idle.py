"""Why idle, on the real pool: a bundle asks for an OS version no slot has; the real daemon names the clause."""

import json

import pytest
from harness import Chtcd, jobs_in_queue, wait_for, write_bundle

pytestmark = pytest.mark.pool

NEVER = {
    "never.sub": "executable = run.sh\nrequirements = (OpSysMajorVer == 9)\n"
                 "request_memory = 64MB\nrequest_disk = 64MB\nqueue\n",
    "run.sh": "#!/bin/sh\necho ran\n",
}


def test_status_names_the_requirements_clause_no_slot_meets(pool, tmp_path):
    chtcd = Chtcd(pool, tmp_path / "chtcd", explain_idle_after_seconds=3).start()
    bundle_id = None
    try:
        chtcd.drop(write_bundle(tmp_path / "src", "never", NEVER))

        def explained():
            done = chtcd.cli("status", "never", "--json", check=False)  # unknown until the daemon claims it
            rows = json.loads(done.stdout) if done.returncode == 0 else []
            return rows[0] if rows and rows[0].get("idle") else None

        row = wait_for(explained, 120, "an explanation of why never's job is idle")
        bundle_id = row["id"]
        why = row["idle"]
        failing = [c for c in why["clauses"] if c["slots"] == 0]
        assert [c["clause"] for c in failing] == ["OpSysMajorVer == 9"], why
        assert failing[0]["slots_meeting_the_rest"] == why["slots"] >= 1, "every slot meets the rest of the job's Requirements"
        assert why["summary"].startswith(f"no slot matches: none of the pool's {why['slots']} slot(s) meets OpSysMajorVer == 9")
        assert "drop that clause or use a container" in why["hints"][0]
        table = chtcd.cli("status").stdout
        (line,) = [r for r in table.splitlines() if r.startswith("never ")]
        assert "idle: no slot matches" in line and "OpSysMajorVer == 9" in line
        detail = chtcd.cli("status", "never").stdout
        assert "why idle:" in detail and "0 of" in detail and "meet OpSysMajorVer == 9" in detail
        events = [e for e in chtcd.log_events() if e.get("event") == "jobs idle"]
        assert len(events) == 1, "explained once, not on every tick"
    finally:
        chtcd.cli("cancel", "never", check=False)  # a job that never matches holds up the negotiator for others
        if bundle_id is not None:
            wait_for(lambda: not jobs_in_queue(pool, bundle_id), 60, "never's job to leave the queue")
            report = chtcd.wait_delivered("never", timeout=60)
        assert chtcd.stop() == 0
    assert report["outcome"] == "cancelled"
    assert report["idle"]["clauses"] == why["clauses"]
