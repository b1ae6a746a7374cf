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
from typing import Optional

import platformdirs

from . import localpool
from .cli import submit_folder
from .layout import Layout
from .report import REPORT_NAME
from .status import read_state


def example_bundle(name: str = "test") -> Path:
    return Path(str(resources.files("chtcd") / "examples" / name))


def write_config(path: Path, pool: localpool.LocalPool, base: Path, tick: float = 2, settle: float = 1) -> Path:
    """A chtcd config for the local pool: short ticks are allowed because its collector is loopback."""
    lines = [
        localpool.env_lines(pool, toml=True),
        "",
        "[paths]",
        f"outbox = {json.dumps(str(base / 'outbox'))}",
        f"inbox = {json.dumps(str(base / 'inbox'))}",
        f"state_dir = {json.dumps(str(base / 'state'))}",
        "",
        "[daemon]",
        f"tick_seconds = {tick}",
        f"settle_seconds = {settle}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _say(message: str = "", err: bool = False) -> None:
    print(f"chtcd demo: {message}" if message else "", file=sys.stderr if err else sys.stdout, flush=True)


def _stage(layout: Layout, name: str) -> Optional[str]:
    try:
        state = read_state(layout)
    except Exception:  # the daemon may be replacing the file this instant: ask again on the next look
        return None
    stages = [r.stage.value for r in state.bundles.values() if r.name == name]
    return stages[-1] if stages else None


def demo(keep_pool: bool = False, timeout: float = 600.0) -> int:
    """Pool up, daemon up, the guide's test job dropped, watched to the inbox; then everything stopped.

    The pool is stopped at the end only if this demo started it (and not with ``keep_pool``):
    a pool that was already running belongs to someone else.
    """
    was_up = localpool.is_up()
    _say("1/4 bringing up the local HTCondor pool" + ("" if was_up else " (the first time takes a few minutes)"))
    pool = localpool.start()
    base = platformdirs.user_cache_path("chtcd") / "demo"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    config = write_config(base / "config.toml", pool, base)
    layout = Layout(base / "outbox", base / "inbox", base / "state")
    _say(f"    pool up: access point {pool.access_point}, collector {pool.collector}")
    daemon_log = base / "daemon.stderr"
    _say(f"2/4 starting chtcd run (its log: chtcd logs --config {config})")
    with open(daemon_log, "ab") as err:
        daemon = subprocess.Popen([sys.executable, "-m", "chtcd", "run", "--config", str(config)], stderr=err)
    try:
        queued = submit_folder(example_bundle("test"), layout.outbox)
        _say(f"3/4 dropped CHTC's guide test job into the outbox: {queued}")
        report_file = layout.inbox / "test" / REPORT_NAME
        deadline = time.monotonic() + timeout
        seen = None
        while not report_file.exists():
            stage = _stage(layout, "test")
            if stage and stage != seen:
                _say(f"    test is {stage}")
                seen = stage
            if daemon.poll() is not None:
                _say(f"the daemon exited with {daemon.returncode}; its last words:", err=True)
                print(daemon_log.read_text()[-3000:], file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                _say(f"no result after {timeout:.0f} s; the daemon's log: {daemon_log}", err=True)
                return 1
            time.sleep(0.2)
        delivered = report_file.parent
        outcome = json.loads(report_file.read_text())["outcome"]
        _say(f"4/4 test is back, outcome {outcome}")
        _say(f"    inbox: {layout.inbox}")
        for name in ("test.out", "result.txt"):
            path = delivered / name
            if path.exists():
                print(f"--- {delivered / name}\n{path.read_text().rstrip()}")
        print(f"--- files in {delivered}: {', '.join(sorted(p.name for p in delivered.iterdir()))}")
        return 0 if (delivered / "result.txt").exists() else 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        _say("stopped the demo daemon")
        if was_up:
            _say("left the local pool running: it was already up before the demo")
        elif keep_pool:
            _say("left the local pool running (--keep-pool); stop it with: python3 -m chtcd.localpool down")
        else:
            _say("stopping the local pool it started (--keep-pool leaves it up)")
            localpool.stop()
