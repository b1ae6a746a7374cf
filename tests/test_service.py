"""The service files: rendered with real paths, checked by systemd's own verifier and by plistlib."""

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest
from doubles import REPO, chtcd, recorded, recording_script

from chtcd import service


@pytest.fixture
def configured(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = home / "my config" / "config.toml"
    assert chtcd("init", "--access-point", "ap2002", "--config", str(config), home=home).returncode == 0
    return home, config


def test_repository_copies_are_the_packaged_templates():
    assert (REPO / "systemd" / "chtcd.service").resolve() == (REPO / "chtcd" / "service_files" / "chtcd.service")
    plist = REPO / "launchd" / "edu.wisc.chtc.chtcd.plist"
    assert plist.resolve() == REPO / "chtcd" / "service_files" / "edu.wisc.chtc.chtcd.plist"
    assert service.template("chtcd.service") == (REPO / "systemd" / "chtcd.service").read_text()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (.ci/run installs it)")
def test_rendered_unit_passes_systemd_analyze_verify(tmp_path):
    program = Path(service.chtcd_program())
    unit = tmp_path / "chtcd.service"
    unit.write_text(service.render_unit(program, tmp_path / "a config" / "config.toml"))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    done = subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    text = unit.read_text()
    assert f"ExecStart={program} run --config \"{tmp_path}/a config/config.toml\"" in text
    assert "Environment=CONDOR_CONFIG=/dev/null" in text and "Restart=on-failure" in text
    assert "@CHTCD@" not in text and "@CONFIG@" not in text

    broken = tmp_path / "broken.service"
    broken.write_text(service.render_unit(tmp_path / "no-such-chtcd", tmp_path / "c.toml"))
    done = subprocess.run(["systemd-analyze", "--user", "verify", str(broken)], capture_output=True, text=True, env=env)
    assert done.returncode != 0, "the verifier must catch a missing program"


def test_rendered_plist_has_what_launchd_needs(tmp_path):
    text = service.render_plist(Path("/Users/bb/venv/bin/chtcd"), Path("/Users/bb/Library/Application Support/chtcd/config.toml"), Path("/Users/bb"))
    agent = plistlib.loads(text.encode())
    assert agent["Label"] == "edu.wisc.chtc.chtcd"
    assert agent["ProgramArguments"] == [
        "/Users/bb/venv/bin/chtcd", "run", "--config", "/Users/bb/Library/Application Support/chtcd/config.toml"
    ]
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["EnvironmentVariables"] == {"CONDOR_CONFIG": "/dev/null"}
    assert agent["StandardErrorPath"] == "/Users/bb/Library/Logs/chtcd.log"
    assert "@" not in text


def test_install_dry_run_shows_the_unit_and_commands_and_changes_nothing(configured):
    home, config = configured
    done = chtcd("service", "install", "--dry-run", "--config", str(config), home=home)
    assert done.returncode == 0, done.stderr
    unit = home / ".config" / "systemd" / "user" / "chtcd.service"
    assert f"would write {unit}:" in done.stdout
    assert f'run --config "{config}"' in done.stdout
    assert "would run: systemctl --user daemon-reload" in done.stdout
    assert "would run: systemctl --user enable chtcd.service" in done.stdout
    assert "would run: systemctl --user restart chtcd.service" in done.stdout
    assert not unit.exists()


def test_install_status_uninstall_with_systemctl_recorded(configured, tmp_path):
    home, config = configured
    log = tmp_path / "systemctl.log"
    fake = recording_script(tmp_path / "systemctl", log, stdout="active\n")
    env = {"CHTCD_SYSTEMCTL": str(fake)}
    done = chtcd("service", "install", "--config", str(config), home=home, env=env)
    assert done.returncode == 0, done.stderr
    unit = home / ".config" / "systemd" / "user" / "chtcd.service"
    assert "ExecStart=" in unit.read_text()
    assert [r["argv"] for r in recorded(log)] == [
        ["--user", "daemon-reload"], ["--user", "enable", "chtcd.service"], ["--user", "restart", "chtcd.service"]
    ]
    status = chtcd("service", "status", "--config", str(config), home=home, env=env)
    assert "installed" in status.stdout and "running" in status.stdout and "not running" not in status.stdout
    done = chtcd("service", "uninstall", "--config", str(config), home=home, env=env)
    assert done.returncode == 0 and not unit.exists()
    assert ["--user", "disable", "--now", "chtcd.service"] in [r["argv"] for r in recorded(log)]
    assert "not installed" in chtcd("service", "status", home=home, env=env).stdout


def test_install_reports_a_failing_systemctl(configured, tmp_path):
    home, config = configured
    fake = recording_script(tmp_path / "systemctl", tmp_path / "log", exit_code=1)
    done = chtcd("service", "install", "--config", str(config), home=home, env={"CHTCD_SYSTEMCTL": str(fake)})
    assert done.returncode == 1 and "loginctl enable-linger" in done.stderr


def test_install_without_config_says_run_init(tmp_path):
    done = chtcd("service", "install", "--dry-run", "--config", str(tmp_path / "none.toml"), home=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_macos_plan_bootstraps_the_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    plan = service.plan_install(tmp_path / "config.toml", platform="darwin", program=Path("/bin/sh"))
    (path, text), = plan.writes
    assert path == tmp_path / "Library" / "LaunchAgents" / "edu.wisc.chtc.chtcd.plist"
    assert plistlib.loads(text.encode())["ProgramArguments"][0] == "/bin/sh"
    assert plan.commands == [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(path)]]
    assert "would run: launchctl bootstrap" in plan.describe()
