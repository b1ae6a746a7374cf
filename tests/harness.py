"""Driving the real `chtcd` program against the real local pool, for the pool tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from chtcd import condor, glance, localpool
from chtcd.wait import wait_for  # noqa: F401  (the tests import it from here)
from chtcd.demo import write_config


class Chtcd:
    """One chtcd installation: its config, boxes and state, and its daemon process."""

    started: List["Chtcd"] = []
    """Every instance that ran a daemon, so a failed test leaves no daemon behind (conftest kills them)."""

    def __init__(self, pool: localpool.LocalPool, base: Path, **daemon: float):
        self.pool = pool
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.config = write_config(base / "config.toml", pool, base, tick=daemon.pop("tick", 2), settle=daemon.pop("settle", 1))
        if daemon:
            text = self.config.read_text().replace(
                "[daemon]\n", "[daemon]\n" + "".join(f"{k} = {v}\n" for k, v in daemon.items())
            )
            self.config.write_text(text)
        self.outbox = base / "outbox"
        self.inbox = base / "inbox"
        self.proc: Optional[subprocess.Popen] = None
        self.stderr_path = base / "daemon.stderr"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "chtcd", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self, crash_at: Optional[str] = None, fail: Optional[str] = None) -> "Chtcd":
        """Run the daemon; ``crash_at`` names a crash point (chtcd/crashpoints.py) where it kills itself,
        ``fail`` a step of one bundle that fails as the schedd's refusal would (``spool:NAME``)."""
        env = dict(os.environ)
        env.pop("CHTCD_CRASH_AT", None)
        env.pop("CHTCD_FAIL", None)
        if crash_at:
            env["CHTCD_CRASH_AT"] = crash_at
        if fail:
            env["CHTCD_FAIL"] = fail
        Chtcd.started.append(self)
        self._stderr_mark = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chtcd", "run", "--config", str(self.config)],
            stderr=open(self.stderr_path, "a"),
            env=env,
        )
        return self

    def ready(self) -> bool:
        """The daemon of the last start() has its signal handlers in place and is serving."""
        with open(self.stderr_path, "rb") as f:
            f.seek(self._stderr_mark)
            return b"chtcd running" in f.read()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=20)
        self.proc = None

    def wait_exit(self, timeout: float) -> Optional[int]:
        """The daemon's exit code once it exits within ``timeout``, else None (still running)."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.proc = None
        return code

    def log_events(self) -> List[Dict[str, Any]]:
        path = self.base / "state" / "chtcd.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self, timeout: float = 20) -> int:
        proc = self.proc
        assert proc is not None
        wait_for(lambda: self.ready() or proc.poll() is not None, 60, "the daemon to be serving")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=timeout)
        self.proc = None
        return code

    def drop(self, source: Path) -> Path:
        result = self.cli("submit", str(source))
        return Path(result.stdout.split(" as ", 1)[1].split(";", 1)[0])

    def report(self, name: str) -> Dict[str, Any]:
        return json.loads((self.inbox / name / "chtcd-report.json").read_text())

    def wait_delivered(self, name: str, timeout: float = 180) -> Dict[str, Any]:
        path = self.inbox / name / "chtcd-report.json"
        wait_for(lambda: path.exists() or (self.proc is not None and self.proc.poll() is not None), timeout, f"{name} in the inbox")
        assert path.exists(), f"daemon died: {self.stderr_path.read_text()[-3000:]}"
        return self.report(name)

    def status_in_flight(self) -> bool:
        """Whether the daemon's state has a bundle between submission and release (read directly: cheap to poll)."""
        try:
            bundles = glance.read(self.base / "state" / "state.json").bundles
        except (OSError, glance.Unreadable):
            return False
        return any(b["stage"] not in ("claimed", "done") for b in bundles)

    def status(self) -> Dict[str, Any]:
        return json.loads(self.cli("status", "--json").stdout)


def access_point(pool: localpool.LocalPool) -> condor.AccessPoint:
    return condor.AccessPoint(pool.collector, pool.access_point, pool.token_dir)


def jobs_in_queue(pool: localpool.LocalPool, bundle_id: str) -> List[condor.JobAd]:
    return access_point(pool).query(f'{condor.BUNDLE_ATTR} == "{bundle_id}"')


def write_bundle(root: Path, name: str, files: Dict[str, str], executable: str = "") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    return folder


def ran_clusters(pool: localpool.LocalPool, bundle_id: str) -> List[int]:
    """Clusters of a bundle that ran, from the schedd's queue and its history."""
    door = access_point(pool)
    constraint = f'{condor.BUNDLE_ATTR} == "{bundle_id}"'
    ads = door.query(constraint) + door.history(constraint)
    return sorted({ad.cluster for ad in ads if ad.status == 4 or (ad.starts or 0) > 0})

