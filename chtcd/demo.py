"""`chtcd demo`: the real daemon against a local HTCondor pool, with CHTC's guide test job.

What a newcomer runs first, and what the README's run command runs: it needs
no CHTC account, only a machine where the local pool can be brought up.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
import platformdirs

from . import localpool
from .cli import submit_folder
from .report import REPORT_NAME


def example_bundle(name: str = "test") -> Path:
    return Path(str(resources.files("chtcd") / "examples" / name))


def _toml_string(value: str) -> str:
    return json.dumps(value)


def write_config(path: Path, pool: localpool.LocalPool, base: Path, tick: float = 2, settle: float = 1) -> Path:
    """A chtcd config for the local pool: short ticks are allowed because its collector is loopback."""
    lines = [
        "[pool]",
        f"collector = {_toml_string(pool.collector)}",
        f"access_point = {_toml_string(pool.access_point)}",
        f"token_dir = {_toml_string(str(pool.token_dir))}",
        "",
        "[paths]",
        f"outbox = {_toml_string(str(base / 'outbox'))}",
        f"inbox = {_toml_string(str(base / 'inbox'))}",
        f"state_dir = {_toml_string(str(base / 'state'))}",
        "",
        "[daemon]",
        f"tick_seconds = {tick}",
        f"settle_seconds = {settle}",
        "",
        "[submit]",
        *(f"{key} = {_toml_string(value)}" for key, value in pool.submit_defaults.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def demo(keep_pool: bool = False, timeout: float = 600.0) -> int:
    was_up = localpool.is_up()
    print("chtcd demo: bringing up the local HTCondor pool (the first time takes a few minutes)...", flush=True)
    pool = localpool.start()
    base = platformdirs.user_cache_path("chtcd") / "demo"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    config = write_config(base / "config.toml", pool, base)
    print(f"chtcd demo: pool up, access point {pool.access_point} at {pool.collector}", flush=True)
    daemon = subprocess.Popen([sys.executable, "-m", "chtcd", "run", "--config", str(config)])
    try:
        queued = submit_folder(example_bundle("test"), base / "outbox")
        print(f"chtcd demo: dropped CHTC's guide test job into {queued}", flush=True)
        report_file = base / "inbox" / "test" / REPORT_NAME
        deadline = time.monotonic() + timeout
        while not report_file.exists():
            if daemon.poll() is not None:
                print(f"chtcd demo: the daemon exited with {daemon.returncode}", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"chtcd demo: no result after {timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        delivered = report_file.parent
        outcome = json.loads(report_file.read_text())
        print(f"\nchtcd demo: {delivered} is back, outcome: {outcome['outcome']}")
        for name in ("test.out", "result.txt"):
            path = delivered / name
            if path.exists():
                print(f"--- {name}\n{path.read_text().rstrip()}")
        print(f"--- files: {', '.join(sorted(p.name for p in delivered.iterdir()))}")
        return 0 if (delivered / "result.txt").exists() else 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        if not keep_pool and not was_up:
            localpool.stop()
