"""`chtcd init` and `chtcd token fetch`, run as a user runs them, with ssh replaced by a script."""

import os
import pty
import select
import stat
import subprocess
import sys
import time

from doubles import REPO, chtcd, make_jwt, recorded, recording_script
from harness import wait_for

from chtcd import config as configuration
from chtcd import tokens


def test_init_writes_full_config_boxes_and_fetches_token(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    token = make_jwt(exp=time.time() + 90 * 86400)
    ssh = recording_script(tmp_path / "ssh", tmp_path / "ssh.log", stdout=token + "\n")
    config = home / "cfg" / "config.toml"
    done = chtcd("init", "--netid", "bbadger", "--access-point", "ap2002", "--yes", "--config", str(config),
                 home=home, env={"CHTCD_SSH": str(ssh)})
    assert done.returncode == 0, done.stderr
    loaded = configuration.load(str(config))
    assert loaded.pool.access_point == "ap2002.chtc.wisc.edu" and loaded.pool.netid == "bbadger"
    text = config.read_text()
    for key in ("collector", "token_dir", "credd_services", "state_dir", "tick_seconds", "hold_grace_seconds",
                "max_upload_mb", "desktop", "on_delivery"):
        assert f"\n{key} = " in text, key
    assert (home / "chtc" / "outbox").is_dir() and (home / "chtc" / "inbox").is_dir()
    assert recorded(tmp_path / "ssh.log")[0]["argv"] == ["bbadger@ap2002.chtc.wisc.edu", "condor_token_fetch"]
    written = home / ".condor" / "tokens.d" / "ap2002"
    assert written.read_text().strip() == token
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert token not in done.stdout + done.stderr
    assert "expires on" in done.stdout


def test_init_without_a_terminal_never_overwrites(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    first = chtcd("init", "--access-point", "ap2002.chtc.wisc.edu", "--config", str(config), home=home)
    assert first.returncode == 0, first.stderr
    before = config.read_text()
    again = chtcd("init", "--access-point", "ap2002.chtc.wisc.edu", "--config", str(config), home=home)
    assert again.returncode == 0 and config.read_text() == before
    other = chtcd("init", "--access-point", "ap2001", "--yes", "--config", str(config), home=home)
    assert other.returncode == 1
    assert "not overwritten" in other.stderr
    assert config.read_text() == before
    assert not (home / "config.toml.bak").exists()


def test_init_without_access_point_and_terminal_says_what_to_give(tmp_path):
    done = chtcd("init", "--config", str(tmp_path / "c.toml"), home=tmp_path)
    assert done.returncode == 2 and "--access-point" in done.stderr
    assert not (tmp_path / "c.toml").exists()


def _converse(argv, env, answers):
    """Run chtcd on a pseudo-terminal, answering each prompt as it appears; returns (exit code, what was shown)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env)
    os.close(slave)
    shown = bytearray()

    def pump() -> bool:
        """Read what is there; True once the program has closed the terminal."""
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return True
            if not chunk:
                return True
            shown.extend(chunk)
        return False

    try:
        for prompt, answer in answers:
            wait_for(lambda prompt=prompt: pump() or prompt.encode() in shown, 30, f"the prompt {prompt!r}")
            os.write(master, (answer + "\n").encode())
        wait_for(pump, 30, "chtcd init to finish")
    finally:
        os.close(master)
    return proc.wait(timeout=10), shown.decode(errors="replace")


def test_init_on_a_terminal_asks_and_keeps_the_old_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    assert chtcd("init", "--access-point", "ap2002", "--config", str(config), home=home).returncode == 0
    before = config.read_text()
    env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / ".local/state"))
    argv = [sys.executable, "-m", "chtcd", "init", "--config", str(config)]
    code, shown = _converse(
        argv,
        env,
        [("NetID", "bbadger"), ("access point", "ap2001"), ("Outbox", ""), ("Inbox", ""), ("Replace it", "y"),
         ("Fetch one now", "n")],
    )
    assert code == 0, shown
    assert configuration.load(str(config)).pool.access_point == "ap2001.chtc.wisc.edu"
    assert (home / "config.toml.bak").read_text() == before

    code, shown = _converse(
        argv, env, [("NetID", ""), ("access point", "ap2002"), ("Outbox", ""), ("Inbox", ""), ("Replace it", ""),
                    ("Fetch one now", "n")]
    )
    assert code == 0 and "kept" in shown
    assert configuration.load(str(config)).pool.access_point == "ap2001.chtc.wisc.edu"


def test_token_fetch_refuses_what_is_not_a_token(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    assert chtcd("init", "--access-point", "ap2002", "--netid", "bb", "--config", str(config), home=home).returncode == 0
    ssh = recording_script(tmp_path / "ssh", tmp_path / "ssh.log", stdout="Permission denied, please try again.\n")
    done = chtcd("token", "fetch", "--config", str(config), home=home, env={"CHTCD_SSH": str(ssh)})
    assert done.returncode == 1 and "does not look like a token" in done.stderr
    assert not (home / ".condor" / "tokens.d" / "ap2002").exists()

    failing = recording_script(tmp_path / "ssh2", tmp_path / "ssh.log", exit_code=255)
    done = chtcd("token", "fetch", "--config", str(config), home=home, env={"CHTCD_SSH": str(failing)})
    assert done.returncode == 1 and "failed (exit 255)" in done.stderr


def test_token_fetch_replaces_a_loose_token_privately(tmp_path):
    token_dir = tmp_path / "tokens.d"
    token_dir.mkdir(mode=0o755)
    (token_dir / "ap2002").write_text("old\n")
    (token_dir / "ap2002").chmod(0o644)
    token = make_jwt(exp=time.time() + 3600)
    ssh = recording_script(tmp_path / "ssh", tmp_path / "ssh.log", stdout=token)
    os.environ["CHTCD_SSH"] = str(ssh)
    try:
        path = tokens.fetch("bb", "ap2002.chtc.wisc.edu", token_dir)
    finally:
        del os.environ["CHTCD_SSH"]
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(token_dir.stat().st_mode) == 0o700


def test_expiry_is_read_from_the_exp_claim(tmp_path):
    now = time.time()
    path = tmp_path / "ap2002"
    path.write_text(make_jwt(exp=now + 3 * 86400) + "\n")
    found = tokens.token_expiry(tmp_path, "ap2002.chtc.wisc.edu")
    assert found is not None and abs(found.expires_at - (now + 3 * 86400)) < 2
    assert found.expiring(now) and not found.expired(now)
    assert "in 3 days" in found.describe(now)
    assert found.expired(now + 4 * 86400)
    path.write_text(make_jwt() + "\n")
    assert tokens.token_expiry(tmp_path, "ap2002.chtc.wisc.edu").expires_at is None
    assert tokens.claims("not.a.token") is None and tokens.claims("garbage") is None
