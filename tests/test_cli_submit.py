"""`chtcd submit`: a folder lands in the outbox whole, or not at all with a reason."""

import os
import subprocess
import sys


def run_submit(tmp_path, folder):
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\noutbox = "{tmp_path}/out"\ninbox = "{tmp_path}/in"\nstate_dir = "{tmp_path}/state"\n')
    return subprocess.run(
        [sys.executable, "-m", "chtcd", "submit", str(folder), "--config", str(config)],
        capture_output=True, text=True, timeout=30,
    )


def test_submit_copies_then_renames_in(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "job.sub").write_text("queue\n")
    (folder / "data").mkdir()
    (folder / "data" / "x.txt").write_text("x")
    result = run_submit(tmp_path, folder)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "job" / "data" / "x.txt").read_text() == "x"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["job"]
    assert (folder / "job.sub").exists()


def test_submit_refuses_a_named_pipe_instead_of_hanging(tmp_path):
    folder = tmp_path / "piped"
    folder.mkdir()
    (folder / "piped.sub").write_text("queue\n")
    os.mkfifo(folder / "fifo")
    result = run_submit(tmp_path, folder)
    assert result.returncode == 2
    assert "not a regular file" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
