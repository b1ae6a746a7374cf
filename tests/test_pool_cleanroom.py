"""Issue 12 on the real pool, through the real daemon: what is checked is what is sent.

The daemon runs with a secret in its environment. Bundles that compose
``$ENV(...)`` and ``$RANDOM_CHOICE(...)`` out of macros (``A = $`` then
``$(A)ENV(NAME)``), which no screen of the raw text can see, must not get the
secret, or a file outside the bundle, to the pool: not into the job's
arguments or environment, the schedd's job ad, the spool, the execute
directory or the inbox. A real tutorial's ``environment = ...; PATH=$ENV(PATH)``
with ``getenv = true`` is accepted, and the job sees only allowlisted values.
"""

import os
import uuid
from typing import Any, Dict, List

import pytest
from harness import Chtcd, access_point, write_bundle
from test_pool_hostile import contents_with

from chtcd import condor
from chtcd.cli import submit_folder

pytestmark = pytest.mark.pool

MARKER = f"chtcd-cleanroom-marker-{uuid.uuid4().hex}"
SHOW = '#!/bin/sh\necho "args: $*"\nenv | sort\n'


def job_ads(pool, bundle_id: str) -> List[Any]:
    """Every attribute of the bundle's jobs, from the schedd's queue and history."""
    door = access_point(pool)
    constraint = f'{condor.BUNDLE_ATTR} == "{bundle_id}"'
    with door._call("reading the test's job ads") as schedd:
        return list(schedd.query(constraint)) + list(schedd.history(constraint, projection=[]))


def job_env(text: str) -> Dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("args:"))


def test_composed_env_and_random_choice_cannot_leak_and_real_getenv_files_run(pool, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "id_rsa").write_text(f"{MARKER}\n")
    monkeypatch.setenv("CHTCD_TEST_SECRET", MARKER)
    monkeypatch.setenv("LC_CHTCD_TEST", "allowed-by-pattern")
    chtcd = Chtcd(pool, tmp_path / "chtcd")

    src = tmp_path / "src"
    job = "executable = show.sh\nrequest_memory = 64MB\nrequest_disk = 64MB\npriority = 20\n"
    write_bundle(src, "composed-env", {
        "composed-env.sub": job + "A = $\n"
        "arguments = $(A)ENV(CHTCD_TEST_SECRET) $(Process) $(Cluster) $$(OpSys) $(DOLLAR)ENV(CHTCD_TEST_SECRET)\n"
        "output = out.$(Cluster).$(Process).txt\nqueue 2\n",
        "show.sh": SHOW,
    })
    write_bundle(src, "tutorial", {
        # as a public HTCondor tutorial writes it (V1 environment), plus getenv
        "tutorial.sub": job + "environment = SOFT_DIR=/opt/soft; PATH=$ENV(PATH)\ngetenv = true\n"
        "arguments = $ENV(LC_CHTCD_TEST)\noutput = out.txt\nqueue\n",
        "show.sh": SHOW,
    })
    randoms = [f"random-{n}" for n in range(4)]
    for name in randoms:
        write_bundle(src, name, {
            f"{name}.sub": job + f"A = $\npick = $(A)RANDOM_CHOICE(inside.txt, {secrets}/id_rsa)\n"
            "transfer_input_files = $(pick)\noutput = out.txt\nqueue\n",
            "show.sh": SHOW + "cat inside.txt id_rsa 2>/dev/null\n",
            "inside.txt": "inside\n",
        })

    chtcd.start()
    try:
        for folder in sorted(src.iterdir()):
            submit_folder(folder, chtcd.outbox)
        reports = {name: chtcd.wait_delivered(name, timeout=180) for name in ["composed-env", "tutorial", *randoms]}
        assert chtcd.proc.poll() is None
    finally:
        assert chtcd.stop() == 0

    composed = reports["composed-env"]
    assert composed["outcome"] == "delivered", composed
    cluster = composed["cluster"]
    assert any("CHTCD_TEST_SECRET" in note and "env_allowlist" in note for note in composed["notes"]), composed
    for proc in (0, 1):
        out = (chtcd.inbox / "composed-env" / f"out.{cluster}.{proc}.txt").read_text()
        # the variable outside the allowlist is unset in the clean room ($ENV writes UNDEFINED); Cluster is the
        # schedd's, and $$(OpSys) was left for the execute side
        assert out.splitlines()[0] == f"args: UNDEFINED {proc} {cluster} LINUX $ENV(CHTCD_TEST_SECRET)", out
    ads = job_ads(pool, composed["bundle_id"])
    assert len(ads) >= 2 and all(MARKER not in str(ad) for ad in ads)

    tutorial = reports["tutorial"]
    assert tutorial["outcome"] == "delivered", tutorial
    assert tutorial["notes"] == []
    out = (chtcd.inbox / "tutorial" / "out.txt").read_text()
    env = job_env(out)
    assert out.splitlines()[0] == "args: allowed-by-pattern", out
    assert env["SOFT_DIR"] == "/opt/soft"
    assert env["PATH"] == os.environ["PATH"]
    assert env["LC_CHTCD_TEST"] == "allowed-by-pattern", "getenv takes what the allowlist allows"
    assert "CHTCD_TEST_SECRET" not in env and MARKER not in out
    assert "CONDOR_CONFIG" not in env and "PYTHONPATH" not in env
    (tutorial_ad,) = [ad for ad in job_ads(pool, tutorial["bundle_id"]) if "Environment" in ad][:1]
    assert "CHTCD_TEST_SECRET" not in str(tutorial_ad["Environment"])
    assert "SOFT_DIR=/opt/soft" in str(tutorial_ad["Environment"])
    assert tutorial_ad.get("GetEnv") in (None, False)

    for name in randoms:
        report = reports[name]
        if report["outcome"] == "rejected":  # the clean room picked the outside file: that is what was checked
            assert "outside the bundle" in report["reason"], report
            continue
        assert report["outcome"] == "delivered", report
        assert (chtcd.inbox / name / "out.txt").read_text().endswith("inside\n")
        for ad in job_ads(pool, report["bundle_id"]):
            assert "RANDOM_CHOICE" not in str(ad)
            assert str(ad.get("SUBMIT_TransferInput") or ad.get("TransferInput")).endswith("inside.txt"), str(ad)

    needle = MARKER.encode()
    assert contents_with(pool.spool_dir, needle) == []
    assert contents_with(pool.execute_dir, needle) == []
    assert contents_with(chtcd.inbox, needle) == []
    assert contents_with(chtcd.base / "state", needle) == []
