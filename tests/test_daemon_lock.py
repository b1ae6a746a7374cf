"""One daemon per state folder, and a lock left by a killed daemon never blocks a restart."""

import base64
import json
import signal
import subprocess
import sys
from pathlib import Path

from harness import wait_for


def fake_token() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'sub': 'u@x', 'exp': 4102444800})}.c2lnbmF0dXJl"


def setup(tmp_path: Path) -> Path:
    tokens = tmp_path / "tokens"
    tokens.mkdir(mode=0o700)
    (tokens / "ap").write_text(fake_token())
    (tokens / "ap").chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[pool]\ncollector = "127.0.0.1:1"\naccess_point = "ap.nowhere"\ntoken_dir = "{tokens}"\n'
        f'[paths]\noutbox = "{tmp_path}/out"\ninbox = "{tmp_path}/in"\nstate_dir = "{tmp_path}/state"\n'
        "[daemon]\ntick_seconds = 2\n"
    )
    return config


def start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chtcd", "run", "--config", str(config)], stderr=open(log, "a"))


def running(log: Path, times: int = 1) -> bool:
    return log.exists() and log.read_text().count("chtcd running") >= times


def test_second_daemon_refused_and_stale_lock_ignored(tmp_path):
    config = setup(tmp_path)
    log = tmp_path / "stderr"
    first = start(config, log)
    try:
        wait_for(lambda: running(log), 30, "the first daemon to start")
        second = subprocess.run(
            [sys.executable, "-m", "chtcd", "run", "--config", str(config)], capture_output=True, text=True, timeout=30
        )
        assert second.returncode == 2
        assert "already running" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    third = start(config, log)
    try:
        wait_for(lambda: running(log, 2), 30, "a restart after SIGKILL")
    finally:
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=20) == 0


def test_a_first_signal_finishes_the_step_in_hand_and_a_second_stops_at_once(monkeypatch):
    import threading
    from types import SimpleNamespace

    from chtcd import daemon as daemon_module

    pipeline = SimpleNamespace(config=SimpleNamespace(daemon=SimpleNamespace(tick_seconds=60)), stopping=threading.Event())
    daemon = daemon_module.Daemon(pipeline)  # type: ignore[arg-type]
    exits = []

    def exit_now(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(daemon_module.os, "_exit", exit_now)
    daemon._on_signal(signal.SIGTERM, None)
    assert exits == [] and daemon.stop.is_set() and pipeline.stopping.is_set(), "the first: stop after the step"
    try:
        daemon._on_signal(signal.SIGINT, None)
    except SystemExit:
        pass
    assert exits == [1], "the second: at once, without waiting for the step"
