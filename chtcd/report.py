"""`chtcd-report.json`: what happened to a bundle, written into the folder the user gets back.

Saved before the jobs are released, so nobody needs the slow history query
later, and worded for a researcher: each hold comes with a hint by its code.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional

from . import atomic, sizing
from .lifecycle import phase
from .state import BundleRecord, JobRecord

REPORT_NAME = "chtcd-report.json"

HOLD_HINTS = {
    1: "held by a user or administrator (condor_hold); ask the CHTC facilitators if it was not you",
    3: "your submit file's own policy (on_exit_hold or periodic_hold) held it",
    6: "the executable could not be started: check that it exists, is executable and has a valid #! line",
    7: "the job's output file could not be opened",
    8: "the job's input file could not be opened",
    12: "output transfer failed: check that every file in transfer_output_files is created by the job",
    13: "input transfer failed: check that every file in transfer_input_files exists and URLs are right",
    14: "the job's working directory could not be accessed",
    21: "the execute machine's policy held it",
    26: "the access point's system policy held it (often: running too long or too many restarts)",
    32: "the inputs are larger than allowed: put large files in /staging and use osdf:// URLs",
    33: "the outputs are larger than allowed: write large outputs to /staging",
    34: "the job used more memory than it requested: raise request_memory",
    35: "the container image is invalid",
    46: "the job ran longer than allowed",
    47: "the job ran longer than allowed",
}


def hold_hint(code: Optional[int], reason: Optional[str]) -> Optional[str]:
    if code is None:
        return None
    text = (reason or "").lower()
    if "credential" in text:
        return "job credentials missing at the access point: restart chtcd so it adds them to the credd"
    if "disk" in text and ("exceed" in text or "usage" in text):
        return "the job used more disk than it requested: raise request_disk"
    return HOLD_HINTS.get(code, "see the hold reason; the CHTC facilitators can help")


_SPOOLED_FILE = re.compile(r"(?:reading from|writing to) file (?P<path>[^:;|]+?): \(errno")


def unfetched_files(error: str) -> List[str]:
    """The file names an HTCondor transfer error names (``reading from file <spool>/result.txt: (errno 2)``)."""
    return sorted({PurePosixPath(m.group("path")).name for m in _SPOOLED_FILE.finditer(error)})


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def job_entry(record: BundleRecord, job: JobRecord) -> Dict[str, Any]:
    entry: Dict[str, Any] = {
        "job": f"{record.cluster}.{job.proc}",
        "state": phase(job).value,
        "exit_code": job.exit_code,
        "exit_signal": job.exit_signal,
        "completed": _iso(job.completed_at),
        "starts": job.starts,
        "wall_seconds": job.wall_seconds,
        "cpu_seconds": job.cpu_seconds,
        "memory_mb": job.memory_mb,
        "disk_kb": job.disk_kb,
    }
    if job.fetch_error is not None:
        entry["fetch_error"] = job.fetch_error
        entry["files_not_fetched"] = unfetched_files(job.fetch_error)
        entry["hint"] = (
            "its outputs could not be fetched and it was left on the access point: fetch them there with "
            f"condor_transfer_data {record.cluster}.{job.proc} within 10 days of its end"
        )
    if job.hold_code is not None and job.status == 5:
        entry["hold_code"] = job.hold_code
        entry["hold_subcode"] = job.hold_subcode
        entry["hold_reason"] = job.hold_reason
        entry["hint"] = hold_hint(job.hold_code, job.hold_reason)
    return {k: v for k, v in entry.items() if v is not None}


def build(record: BundleRecord, access_point: str, now: float) -> Dict[str, Any]:
    jobs = [job_entry(record, j) for j in sorted(record.jobs.values(), key=lambda j: j.proc)]
    return {
        "bundle": record.name,
        "bundle_id": record.id,
        "outcome": record.outcome,
        "reason": record.reason,
        "notes": record.notes,
        "access_point": access_point,
        "cluster": record.cluster,
        "submit_file": record.submit_file,
        "jobs": jobs,
        "timestamps": {
            "claimed": _iso(record.claimed_at),
            "submitted": _iso(record.submitted_at),
            "completed": _iso(record.finished_at),
            "delivered": _iso(now),
        },
        "resources": resources(record),
        "idle": record.idle if record.idle is not None and any(j.status == 1 for j in record.jobs.values()) else None,
    }


def resources(record: BundleRecord) -> Dict[str, Any]:
    """Requested against used memory, disk and CPUs (largest, median), and what to ask for next time."""
    return sizing.assess({name: getattr(job, name) for name in _JOB_FIELDS} for job in record.jobs.values())


_JOB_FIELDS = ("status", "hold_code", "hold_reason", "memory_mb", "disk_kb", "cpu_seconds", "wall_seconds",
               "request_memory_mb", "request_disk_kb", "request_cpus")


def write(folder: Path, report: Dict[str, Any]) -> None:
    atomic.write_json(folder / REPORT_NAME, report, mode=0o600)
