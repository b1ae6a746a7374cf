"""The stumbles of a first try, as a new user met them: each fixed, each held here."""

import os
import subprocess
import sys
import time

from doubles import REPO, chtcd, make_jwt, recording_script

from chtcd import config as configuration
from chtcd import doctor, heartbeat, localpool, service
from chtcd.layout import Layout


def test_localpool_env_prints_a_config_chtcd_loads_as_is_with_the_pools_submit_override(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chtcd.localpool", "env"],
        cwd=REPO, capture_output=True, text=True, check=True,
        env=dict(os.environ, CHTCD_LOCALPOOL_DIR=str(tmp_path / "root")),
    )
    assert "export" not in done.stdout
    path = tmp_path / "config.toml"
    path.write_text(done.stdout)
    loaded = configuration.load(str(path))
    pool = localpool.describe(tmp_path / "root")
    assert (loaded.pool.collector, loaded.pool.access_point, loaded.pool.token_dir) == (
        pool.collector, pool.access_point, pool.token_dir)
    defaults = loaded.submit_defaults()
    assert defaults["Requirements"] == pool.submit_defaults["Requirements"] != configuration.CHTC_REQUIREMENTS
    assert defaults["MY.FileSystemDomain"] == f'"{pool.access_point}"'


def test_a_typo_in_a_key_names_the_key_it_meant_and_says_to_edit_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[pool]\naccess_point = "ap2002.chtc.wisc.edu"\ncolector = "x"\n')
    try:
        configuration.load(str(path))
    except configuration.ConfigError as exc:
        assert "did you mean collector?" in str(exc) and str(path) in str(exc)
        assert exc.fix == f"edit {path}"
    else:
        raise AssertionError("a typo'd key must not load")


def test_a_missing_config_file_points_to_a_command_that_writes_it(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "nowhere" / "config.toml"
    try:
        configuration.load(str(path))
    except configuration.ConfigError as exc:
        assert "config.example.toml" not in str(exc)
        fix, message = exc.fix, str(exc)
    else:
        raise AssertionError("a named config that does not exist must not load")
    assert fix == f"chtcd init --config {path}" and fix in message
    ssh = recording_script(tmp_path / "ssh", tmp_path / "ssh.log", stdout=make_jwt(exp=time.time() + 86400) + "\n")
    done = chtcd(*fix.split()[1:], "--access-point", "ap2002", "--yes", home=home, env={"CHTCD_SSH": str(ssh)})
    assert done.returncode == 0, done.stderr
    assert configuration.load(str(path)).require_access_point() == "ap2002.chtc.wisc.edu"


def test_no_config_at_all_says_run_init(tmp_path, monkeypatch):
    monkeypatch.setattr(configuration, "default_config_path", lambda: tmp_path / "absent.toml")
    loaded = configuration.load(None)
    try:
        loaded.require_access_point()
    except configuration.ConfigError as exc:
        assert exc.fix == "chtcd init" and "chtcd init" in str(exc)
    else:
        raise AssertionError("no access point must not pass")


def _layout(tmp_path) -> Layout:
    layout = Layout(tmp_path / "out", tmp_path / "in", tmp_path / "state")
    layout.create()
    return layout


def test_doctor_counts_a_daemon_running_in_the_foreground_as_running(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "state", lambda: service.ServiceState(False, False, tmp_path / "unit", ""))
    layout = _layout(tmp_path)
    assert doctor._service_check(layout).ok is False, "no service and no daemon: a failure"
    heartbeat.write(layout.heartbeat_file, heartbeat.Heartbeat(os.getpid(), time.time(), 60))
    check = doctor._service_check(layout)
    assert check.ok is True and check.warning and f"pid {os.getpid()}" in check.detail
    assert "chtcd service install" in check.fix


def test_doctor_does_not_count_skips_as_failures(monkeypatch):
    shown = [doctor.Check("a", True, "fine"), doctor.Check("b", None, "nothing to check"), doctor.Check("c", True, "fine")]
    monkeypatch.setattr(doctor, "checks", lambda path: iter(shown))
    out = []
    assert doctor.run(None, out.append) == 0
    assert out[-1] == "all checks passed"
    shown[0] = doctor.Check("a", False, "broken", "fix it")
    out.clear()
    assert doctor.run(None, out.append) == 1 and out[-1] == "1 check(s) did not pass"
