"""The fake access point is held to the real door: one scenario through both, compared.

`condor.Door` is the Protocol both satisfy (mypy checks it); this runs the
same small scenario (a 2-job bundle submitted with spooling, the tick's
query, retrieve, release, history) on `tests/fakes.FakeAccessPoint` and on
the real local pool, and compares what comes out at each step: the same
shapes, the same job states, the same files in the bundle's folder.
"""

from __future__ import annotations

import inspect
import secrets
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from fakes import FakeAccessPoint
from harness import access_point, wait_for, write_bundle

from chtcd import checks, condor
from chtcd import config as configuration
from chtcd.demo import write_config

SUBMIT = (
    "executable = /bin/echo\ntransfer_executable = false\narguments = hello $(Process)\n"
    "output = out.$(Process)\nshould_transfer_files = YES\nrequest_memory = 64MB\nrequest_disk = 64MB\nqueue 2\n"
)


def test_the_fake_has_the_real_doors_signatures():
    """A runtime twin of the mypy check: every method of the Door, with the same parameters and defaults."""
    members = [name for name, value in vars(condor.Door).items() if inspect.isfunction(value) and not name.startswith("_")]
    assert members, "the Door names its methods"
    for name in members:
        door = inspect.signature(getattr(condor.Door, name)).parameters
        for implementation in (condor.AccessPoint, FakeAccessPoint):
            got = inspect.signature(getattr(implementation, name)).parameters
            assert [(p.name, p.default) for p in got.values()] == [(p.name, p.default) for p in door.values()], (
                f"{implementation.__name__}.{name}"
            )


def _shape(ads: List[condor.JobAd]) -> List[Dict[str, Any]]:
    """What the pipeline reads of an answer, without the values only a real pool has (times, usage)."""
    return sorted(
        (
            {
                "proc": ad.proc,
                "status": ad.status,
                "hold_code": ad.hold_code,
                "bundle_id": ad.bundle_id is not None,
                "retrieved": ad.stage_out_at is not None,
            }
            for ad in ads
        ),
        key=lambda shape: shape["proc"],
    )


def scenario(door: condor.Door, folder: Path, description: condor.Description, finish: Callable[[int], None],
             gone: Callable[[str], None]) -> Dict[str, Any]:
    client, bundle_id = f"contract-{secrets.token_hex(4)}", f"contract-{secrets.token_hex(4)}"
    seen: Dict[str, Any] = {}
    submitted = door.submit(description, folder, condor.stamps(bundle_id, client))
    seen["submitted"] = (submitted.procs, type(submitted.cluster))
    seen["before spool"] = _shape(door.query_client(client))
    door.spool(submitted, folder)
    finish(submitted.cluster)
    seen["finished"] = _shape(door.query_client(client))
    door.retrieve([condor.job_id(submitted.cluster, proc) for proc in range(submitted.procs)])
    seen["files"] = sorted(p.name for p in folder.iterdir())
    door.release(submitted.cluster)
    gone(client)
    seen["after release"] = door.query_client(client)
    constraint = f'{condor.BUNDLE_ATTR} == "{bundle_id}"'
    seen["history"] = _shape(door.history(constraint))
    seen["history, limit 1"] = len(door.history(constraint, limit=1))
    seen["history of another bundle"] = door.history(f'{condor.BUNDLE_ATTR} == "no-such-bundle"')
    return seen


def _bundle(root: Path, config: configuration.Config) -> tuple:
    folder = write_bundle(root, "pair", {"pair.sub": SUBMIT})
    description = condor.describe(SUBMIT, folder, checks.FILE_COMMANDS, config.submit_defaults())
    return folder, description


@pytest.mark.pool
def test_the_fake_and_the_real_pool_answer_one_scenario_alike(pool, tmp_path):
    config = configuration.load(str(write_config(tmp_path / "config.toml", pool, tmp_path)))

    fake = FakeAccessPoint()

    def fake_finish(cluster: int) -> None:  # what the pool does on its own
        for proc in (0, 1):
            fake.set_status(cluster, proc, 4, exit_code=0, completed_at=1.0)

    folder, description = _bundle(tmp_path / "fake", config)
    on_fake = scenario(fake, folder, description, fake_finish, lambda client: None)

    real = access_point(pool)

    def real_finish(cluster: int) -> None:
        wait_for(lambda: [ad.status for ad in real.query(f"ClusterId == {cluster}")] == [4, 4], 180, "both jobs to finish")

    def real_gone(client: str) -> None:
        wait_for(lambda: real.query_client(client) == [], 60, "the released jobs to leave the queue")

    folder, description = _bundle(tmp_path / "real", config)
    on_pool = scenario(real, folder, description, real_finish, real_gone)

    assert on_fake == on_pool
