"""The daemon's log: private through rotation, and `chtcd logs` shows it readably, rotated lines included."""

import json
import logging
import stat
import threading

import structlog
from doubles import chtcd
from harness import wait_for

from chtcd import log, logview


def test_rotated_files_stay_private(tmp_path):
    path = tmp_path / "chtcd.log"
    log.setup(path)
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, log.PrivateRotatingFileHandler))
    handler.maxBytes = 400
    try:
        for n in range(40):
            log.get("test").info("line", n=n, padding="x" * 40)
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    files = sorted(tmp_path.glob("chtcd.log*"))
    assert len(files) == 4, "three rotated generations and the current file"
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_readable_line_keeps_fields_and_quotes_spaces():
    line = json.dumps({"event": "job held", "level": "warning", "timestamp": "2026-01-02T03:04:05.123Z",
                       "logger": "chtcd.pipeline", "bundle": "b", "reason": "memory exceeded", "code": 34})
    assert logview.readable(line) == '2026-01-02 03:04:05 warning  job held  bundle=b reason="memory exceeded" code=34'
    assert logview.readable("not json\n") == "not json"


def test_logs_command_reads_across_rotation(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "chtcd.log.1").write_text(json.dumps({"event": "older", "level": "info", "timestamp": "t"}) + "\n")
    (state / "chtcd.log").write_text(json.dumps({"event": "newest", "level": "info", "timestamp": "t"}) + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nstate_dir = "{state}"\noutbox = "{tmp_path}/o"\ninbox = "{tmp_path}/i"\n')
    done = chtcd("logs", "--config", str(config))
    assert done.returncode == 0
    assert [line.split()[2] for line in done.stdout.splitlines()] == ["older", "newest"]
    assert chtcd("logs", "-n", "1", "--config", str(config)).stdout.split()[2] == "newest"


def test_follow_prints_new_lines_and_survives_rotation(tmp_path):
    path = tmp_path / "chtcd.log"
    path.write_text(json.dumps({"event": "before", "level": "info"}) + "\n")
    seen = []
    stop = threading.Event()
    follower = threading.Thread(target=logview.follow, args=(path, seen.append, stop.is_set), daemon=True)
    follower.start()
    try:
        def append(event):
            with open(path, "a") as f:
                f.write(json.dumps({"event": event, "level": "info"}) + "\n")

        wait_for(lambda: (append("first") or True) and any("first" in s for s in seen), 10, "the first new line")
        path.rename(tmp_path / "chtcd.log.1")
        path.write_text(json.dumps({"event": "after-rotation", "level": "info"}) + "\n")
        wait_for(lambda: any("after-rotation" in s for s in seen), 10, "the line in the new file")
    finally:
        stop.set()
        follower.join(5)
    assert not any("before" in s for s in seen), "follow starts at the end, like tail -f"
