"""An in-memory access point with the door's interface: for fast pipeline tests, never as proof."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple, Union

from chtcd import condor, idle


@dataclass
class FakeJob:
    ad: condor.JobAd
    client: str
    folder: Path
    leave_in_queue: bool = True
    changed: float = 0.0  # the fake schedd's clock when its status last changed


@dataclass
class FakeAccessPoint:
    name: str = "ap.fake"
    jobs: Dict[Tuple[int, int], FakeJob] = field(default_factory=dict)
    next_cluster: int = 100
    calls: List[str] = field(default_factory=list)
    down: bool = False
    has_credd: bool = True
    past: List[condor.JobAd] = field(default_factory=list)
    unfetchable: Dict[str, str] = field(default_factory=dict)  # job id -> the schedd's error when retrieved
    disk_full: bool = False
    slots_meeting: Dict[str, int] = field(default_factory=lambda: {"TARGET.Memory >= RequestMemory": 1})
    """The pool as `idle_facts` sees it: each Requirements clause and how many of its one slot meet it."""
    submitted: List[condor.Description] = field(default_factory=list)
    clock: int = 0

    def _touch(self, job: "FakeJob") -> None:
        self.clock += 1
        job.changed = float(self.clock)

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise condor.Unreachable(f"{what}: Failed communication with collector.")

    def add_credentials(self, services: Sequence[str]) -> bool:
        self._call("credd")
        return self.has_credd

    def submit(self, description: condor.Description, folder: Path, stamps: Mapping[str, str]) -> condor.Submitted:
        self._call("submit")
        self.submitted.append(description)
        count = description.count
        cluster = self.next_cluster
        self.next_cluster += 1
        bundle_id = stamps[f"MY.{condor.BUNDLE_ATTR}"].strip('"')
        client = stamps[f"MY.{condor.CLIENT_ATTR}"].strip('"')
        for proc in range(count):
            ad = condor.JobAd(bundle_id=bundle_id, cluster=cluster, proc=proc, status=5, hold_code=16, entered_status_at=0.0)
            self.jobs[(cluster, proc)] = FakeJob(ad, client, folder)
            self._touch(self.jobs[(cluster, proc)])
        return condor.Submitted(cluster=cluster, procs=count, handle=cluster)

    def spool(self, submitted: condor.Submitted, cwd: Path) -> None:
        self._call("spool")
        for key, job in self.jobs.items():
            if key[0] == submitted.cluster:
                job.ad = replace(job.ad, status=1, hold_code=None)
                self._touch(job)

    def count_client(self, client_id: str, excluding: Sequence[str] = ()) -> condor.Count:
        """The schedd's summary; its clock here is a counter of the changes made to the queue."""
        self._call("count")
        self.clock += 1
        jobs = sum(1 for j in self.jobs.values() if j.client == client_id and j.ad.bundle_id not in excluding)
        return condor.Count(jobs=jobs, server_time=float(self.clock))

    def query_client(
        self, client_id: str, since: Optional[float] = None, listed: Sequence[str] = (), clusters: condor.ClusterRange = (None, None)
    ) -> List[condor.JobAd]:
        """Like the schedd's: `since` compares with when the job last changed status (here, by the change counter)."""
        self._call("query")
        low, high = clusters
        return [
            j.ad for j in self.jobs.values()
            if j.client == client_id and (since is None or j.changed >= since or j.ad.bundle_id in listed)
            and (low is None or j.ad.cluster >= low) and (high is None or j.ad.cluster < high)
        ]

    def retrieve(self, job_ids: Sequence[str]) -> None:
        self._call("retrieve")
        for jid in job_ids:
            if jid in self.unfetchable:
                raise condor.BundleFault(f"retrieving outputs of {jid}: {self.unfetchable[jid]}")
        if self.disk_full:
            raise condor.local_fault("retrieving: (errno 28) No space left on device", 28)
        for jid in job_ids:
            cluster, proc = map(int, jid.split("."))
            job = self.jobs[(cluster, proc)]
            (job.folder / f"out.{proc}").write_text(f"output of {jid}\n")
            job.ad = replace(job.ad, stage_out_at=job.ad.stage_out_at or job.ad.completed_at or 1.0)  # as the schedd's StageOutFinish

    def release(self, clusters: Union[int, Sequence[int]], keep: Optional[Mapping[int, Sequence[int]]] = None) -> None:
        self._call("release")
        for cluster in [clusters] if isinstance(clusters, int) else clusters:
            self._leave(cluster, keep=set((keep or {}).get(cluster, ())))

    def remove(self, constraint: str) -> None:
        self._call("remove")
        by_bundle = re.search(rf'{condor.BUNDLE_ATTR} == "([^"]+)"', constraint)
        if by_bundle:
            clusters = {k[0] for k, job in self.jobs.items() if job.ad.bundle_id == by_bundle.group(1)}
        else:
            by_cluster = re.search(r"ClusterId == (\d+)", constraint)
            assert by_cluster is not None, f"the fake removes by bundle id or by cluster, not {constraint!r}"
            clusters = {int(by_cluster.group(1))}
        for cluster in clusters:
            self._leave(cluster, removed=True)

    def _leave(self, cluster: int, removed: bool = False, keep: Union[Set[int], FrozenSet[int]] = frozenset()) -> None:
        for key in [k for k in self.jobs if k[0] == cluster and k[1] not in keep]:
            ad = self.jobs.pop(key).ad
            self.past.append(replace(ad, status=3) if removed and ad.status != 4 else ad)

    def history(self, constraint: str, limit: int = -1) -> List[condor.JobAd]:
        self._call("history")
        found = re.search(r'"([^"]+)"', constraint)
        assert found is not None, f"the fake reads history by bundle id, not {constraint!r}"
        matching = [ad for ad in self.past if ad.bundle_id == found.group(1)]
        return matching if limit < 0 else matching[:limit]

    def idle_facts(self, cluster: int, proc: int) -> idle.Facts:
        self._call("idle_facts")
        job = self.jobs.get((cluster, proc))
        if job is None:
            raise condor.Refused(f"job {cluster}.{proc} is no longer in the queue")
        clauses = [
            idle.Clause(text, meet, min(1, *(m for t, m in self.slots_meeting.items() if t != text)) if len(self.slots_meeting) > 1 else 1)
            for text, meet in self.slots_meeting.items()
        ]
        return idle.Facts(
            job=f"{cluster}.{proc}",
            idle_since=job.ad.entered_status_at,
            requirements=" && ".join(f"({t})" for t in self.slots_meeting),
            slots=1,
            matching=min(self.slots_meeting.values()),
            clauses=clauses,
            last_rejection="no match found",
            request_memory_mb=job.ad.request_memory_mb,
        )

    # what the pool would do on its own
    def set_status(self, cluster: int, proc: int, status: int, now: float = 0.0, **fields: Any) -> None:
        job = self.jobs[(cluster, proc)]
        job.ad = replace(job.ad, status=status, entered_status_at=now, **fields)
        self._touch(job)

    def clusters(self) -> List[int]:
        return sorted({k[0] for k in self.jobs})


if TYPE_CHECKING:
    _door: condor.Door = FakeAccessPoint()  # mypy: the fake has everything the pipeline asks of the real door


def fake_pipeline(tmp_path: Path, **tables: dict):
    """A Pipeline over temporary boxes and a FakeAccessPoint; ``tables`` add config tables (e.g. notify)."""
    from chtcd import config as configuration
    from chtcd.layout import Layout
    from chtcd.pipeline import Pipeline
    from chtcd.state import Store

    cfg = configuration.from_mapping(
        {
            "pool": {"collector": "127.0.0.1:1", "access_point": "ap.fake", "token_dir": str(tmp_path / "tokens")},
            "paths": {"outbox": str(tmp_path / "out"), "inbox": str(tmp_path / "in"), "state_dir": str(tmp_path / "state")},
            "daemon": {"tick_seconds": 1, "settle_seconds": 0, "hold_grace_seconds": 100},
            **tables,
        },
        None,
    )
    layout = Layout.from_config(cfg)
    layout.create()
    store = Store(layout.state_file)
    ap = FakeAccessPoint()
    return Pipeline(cfg, layout, store, store.load(), ap), ap, layout


def drop(layout, name: str, queue: str = "queue") -> Path:
    """A minimal bundle straight into the outbox of a fake pipeline."""
    folder = layout.outbox / name
    folder.mkdir()
    (folder / f"{name}.sub").write_text(f"executable = run.sh\n{queue}\n")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    return folder


def report(layout, name: str) -> dict:
    import json

    return json.loads((layout.inbox / name / "chtcd-report.json").read_text())
