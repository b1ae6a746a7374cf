"""Driving the real `chtcd` program against the real local pool, for the pool tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from chtcd import condor, localpool
from chtcd.demo import write_config


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll a condition until it holds; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Chtcd:
    """One chtcd installation: its config, boxes and state, and its daemon process."""

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

    def start(self) -> "Chtcd":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chtcd", "run", "--config", str(self.config)],
            stderr=open(self.stderr_path, "a"),
        )
        return self

    def stop(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
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
