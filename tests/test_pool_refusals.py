"""An act the access point refuses is said, not ignored: its jobs stay, and the caller hears why.

The schedd answers a remove it refuses with counts in an ad (`TotalPermissionDenied`),
not an error, and an edit it refuses with the same words as an edit that matched
nothing. A release or a remove that went unheard left jobs in the queue for ten days,
or a resubmission beside jobs that were never removed. Each call here runs in a process
of its own, as one identity: the bindings keep one security session per process.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from doubles import REPO
from harness import wait_for

from chtcd import localpool

pytestmark = pytest.mark.pool

AS = r"""
import json, sys
from pathlib import Path
from chtcd import condor, localpool
p = localpool.describe()
door = condor.AccessPoint(p.collector, p.access_point, Path(sys.argv[1]))
what, arg = sys.argv[2], sys.argv[3]
try:
    if what == "submit":
        import htcondor2
        result = door._connect().submit(htcondor2.Submit(arg), count=int(sys.argv[4]))
        print(json.dumps({"cluster": result.cluster()}))
    elif what == "remove":
        door.remove(arg)
        print(json.dumps({"ok": True}))
    elif what == "release":
        door.release(int(arg))
        print(json.dumps({"ok": True}))
    elif what == "jobs":
        print(json.dumps({"jobs": sorted((ad.proc, ad.status) for ad in door.query(arg))}))
except condor.CondorError as exc:
    print(json.dumps({"error": type(exc).__name__, "said": str(exc)}))
"""

PARKED = "executable = /bin/true\ntransfer_executable = false\nrequirements = false\n"
KEPT = (  # not spooled: its folder is one the access point has (it runs in the pool's root)
    "executable = /bin/true\ntransfer_executable = false\ninitialdir = /tmp\nshould_transfer_files = YES\n"
    "leave_in_queue = true\nrequest_memory = 64MB\nrequest_disk = 64MB\n"
)


def as_identity(tokens: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", AS, str(tokens), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_remove_or_release_the_access_point_refuses_is_said_and_its_jobs_stay(pool, tmp_path):
    owner, other = tmp_path / "owner", tmp_path / "other"
    localpool.issue_token(pool, "owner-" + secrets.token_hex(3), owner)
    localpool.issue_token(pool, "other-" + secrets.token_hex(3), other)
    parked = as_identity(owner, "submit", PARKED, "2")["cluster"]
    kept = as_identity(owner, "submit", KEPT, "1")["cluster"]
    both = f"ClusterId == {parked} || ClusterId == {kept}"
    try:
        wait_for(lambda: as_identity(owner, "jobs", f"ClusterId == {kept}")["jobs"] in ([[0, 4]], [[0, 5]]), 120, "the kept job to finish", 1.0)
        assert as_identity(owner, "jobs", f"ClusterId == {kept}")["jobs"] == [[0, 4]], "it completed (not held)"

        removed = as_identity(other, "remove", f"ClusterId == {parked}")
        assert removed["error"] == "BundleFault" and "permission denied" in removed["said"], removed
        assert "chtcd token fetch" in removed["said"], "the refusal says what to do"

        released = as_identity(other, "release", str(parked))  # idle jobs: the remove half of a release is refused
        assert released["error"] == "BundleFault" and "permission denied" in released["said"], released

        finished = as_identity(other, "release", str(kept))  # a finished job: the edit half is refused, with no count to read
        assert finished["error"] == "BundleFault" and "would not let them leave" in finished["said"], finished

        assert as_identity(owner, "jobs", both)["jobs"] == [[0, 1], [0, 4], [1, 1]], "every job is still in the queue"
        assert as_identity(owner, "release", str(kept)) == {"ok": True}, "its owner may let it go"
    finally:  # the kept job let go before anything is removed: removed, it would stay for good (leave_in_queue)
        as_identity(owner, "release", str(kept))
        as_identity(owner, "remove", f"ClusterId == {parked}")
        wait_for(lambda: as_identity(owner, "jobs", both)["jobs"] == [], 120, "the test's jobs to leave the queue", 1.0)
