"""`chtcd doctor` against the real pool: all green, then each check made to fail on purpose."""

import shutil
import socket
import time

import pytest
from doubles import chtcd, make_jwt, recording_script

from chtcd.demo import write_config

pytestmark = pytest.mark.pool


def lines(done):
    """check name -> its line, from doctor's output."""
    found = {}
    for line in done.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in ("ok", "FAIL", "warn", "skip"):
            for name in ("config valid", "token present", "token private", "token not expired", "collector reachable",
                         "access point found", "schedd access", "credd found", "outbox writable", "inbox writable",
                         "same filesystem", "service running"):
                if parts[1].startswith(name):
                    found[name] = line
    return found


@pytest.fixture
def healthy(pool, tmp_path):
    """A setup where every check passes: the pool's token in a private folder, boxes made, service 'running'."""
    home = tmp_path / "home"
    home.mkdir()
    base = tmp_path / "chtcd"
    base.mkdir()
    tokens = tmp_path / "tokens.d"
    tokens.mkdir(mode=0o700)
    shutil.copy(pool.token_file, tokens / pool.access_point)
    (tokens / pool.access_point).chmod(0o600)
    config = write_config(base / "config.toml", pool, base)
    config.write_text(config.read_text().replace(str(pool.token_dir), str(tokens)))
    for box in ("outbox", "inbox", "state"):
        (base / box).mkdir()
    systemctl = recording_script(tmp_path / "systemctl", tmp_path / "systemctl.log", stdout="active\n")
    env = {"CHTCD_SYSTEMCTL": str(systemctl)}
    assert chtcd("service", "install", "--config", str(config), home=home, env=env).returncode == 0

    def doctor():
        return chtcd("doctor", "--config", str(config), home=home, env=env, timeout=60)

    return doctor, config, tokens


def test_all_checks_pass(healthy):
    doctor, _, _ = healthy
    done = doctor()
    assert done.returncode == 0, done.stdout
    found = lines(done)
    assert len(found) == 12 and all(line.startswith("ok") for line in found.values()), done.stdout
    assert "accepted the token" in found["schedd access"]


def test_missing_token(healthy):
    doctor, _, tokens = healthy
    for f in tokens.iterdir():
        f.unlink()
    done = doctor()
    assert done.returncode == 1
    assert lines(done)["token present"].startswith("FAIL") and "fix: chtcd token fetch" in lines(done)["token present"]


def test_token_readable_by_others(healthy, pool):
    doctor, _, tokens = healthy
    (tokens / pool.access_point).chmod(0o644)
    done = doctor()
    found = lines(done)
    assert done.returncode == 1
    assert found["token private"].startswith("FAIL") and "is 644" in found["token private"]
    assert f"fix: chmod 600 {tokens / pool.access_point}" in found["token private"]
    assert not found["access point found"].startswith("ok") or not found["schedd access"].startswith("ok"), (
        "HTCondor skips a 0644 token, so the pool must refuse us"
    )


def test_expired_token(healthy, pool):
    doctor, _, tokens = healthy
    path = tokens / pool.access_point
    path.write_text(make_jwt(exp=time.time() - 86400) + "\n")
    done = doctor()
    line = lines(done)["token not expired"]
    assert done.returncode == 1 and line.startswith("FAIL") and "expired on" in line and "chtcd token fetch" in line
    assert make_jwt(exp=time.time() - 86400).split(".")[1] not in done.stdout + done.stderr


def test_token_expiring_soon_warns_but_passes(healthy, pool):
    doctor, _, tokens = healthy
    named = tokens / pool.access_point
    named.rename(tokens / "pool")
    named.write_text(make_jwt(exp=time.time() + 3 * 86400) + "\n")
    named.chmod(0o600)
    done = doctor()
    line = lines(done)["token not expired"]
    assert line.startswith("warn") and "in 3 days" in line and "fix: chtcd token fetch" in line


def test_wrong_access_point_name(healthy, pool):
    doctor, config, _ = healthy
    config.write_text(config.read_text().replace(f'access_point = "{pool.access_point}"', 'access_point = "ap.misspelt.test"'))
    done = doctor()
    found = lines(done)
    assert done.returncode == 1
    assert found["collector reachable"].startswith("ok")
    assert found["access point found"].startswith("FAIL") and "lists no access point named ap.misspelt.test" in found["access point found"]
    assert pool.access_point in found["access point found"], "the names the collector knows are offered"
    assert found["schedd access"].startswith("skip")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collector_down(healthy, pool):
    doctor, config, _ = healthy
    config.write_text(config.read_text().replace(pool.collector, f"127.0.0.1:{_free_port()}"))
    started = time.monotonic()
    done = doctor()
    found = lines(done)
    assert done.returncode == 1 and time.monotonic() - started < 10
    assert found["collector reachable"].startswith("FAIL") and "refused" in found["collector reachable"].lower()
    assert all(found[n].startswith("skip") for n in ("access point found", "schedd access", "credd found"))


def test_silent_collector_is_bounded(healthy, pool):
    """A collector that accepts connections and never answers: doctor gives up in seconds, not minutes."""
    doctor, config, _ = healthy
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config.write_text(config.read_text().replace(pool.collector, f"127.0.0.1:{silent.getsockname()[1]}"))
        started = time.monotonic()
        done = doctor()
        elapsed = time.monotonic() - started
    assert done.returncode == 1 and lines(done)["access point found"].startswith("FAIL")
    assert elapsed < 20, f"doctor took {elapsed:.0f} s against a silent collector"


def test_service_not_installed_and_no_config(pool, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = chtcd("doctor", "--config", str(tmp_path / "missing.toml"), home=home)
    found = lines(done)
    assert done.returncode == 1
    assert found["config valid"].startswith("FAIL") and "fix: chtcd init" in found["config valid"]
    assert found["service running"].startswith("FAIL") and "fix: chtcd service install" in found["service running"]


def test_a_daemon_running_in_the_foreground_counts_as_running(pool, tmp_path):
    """No service installed, but `chtcd run` on this config's state: doctor passes, with a warning to install it."""
    from harness import Chtcd, wait_for

    home = tmp_path / "home"
    home.mkdir()
    daemon = Chtcd(pool, tmp_path / "chtcd").start()
    try:
        wait_for(daemon.ready, 60, "the daemon to be serving")
        done = chtcd("doctor", "--config", str(daemon.config), home=home, timeout=60)
        found = lines(done)
        assert done.returncode == 0, done.stdout
        line = found["service running"]
        assert line.startswith("warn") and f"chtcd run is running (pid {daemon.proc.pid})" in line, line
        assert "fix: chtcd service install" in line
    finally:
        assert daemon.stop() == 0
    done = chtcd("doctor", "--config", str(daemon.config), home=home, timeout=60)
    assert done.returncode == 1 and lines(done)["service running"].startswith("FAIL")
