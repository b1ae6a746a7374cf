"""A real local HTCondor pool that behaves like CHTC's access point.

Tests, the demo and benchmarks need a pool to submit to, but Debian bookworm
ships no HTCondor. This module builds a Debian trixie root with debootstrap,
installs HTCondor there and runs its daemons in a chroot. They listen on the
host's loopback, so host-side Python reaches them like a remote access point:
token authentication, a credd, a schedd named like a host, and execute slots
that do not share the access point's filesystem (so jobs transfer files, as
at CHTC).

Everything here needs root. This module never imports the HTCondor bindings;
it checks the pool with the pool's own command-line tools inside the root.

    python -m chtcd.localpool up|down|status|env [--shell]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .wait import wait_for

DEFAULT_PORT = 19618
AP_NAME = "ap.chtcd.test"
EXEC_DOMAIN = "exec.chtcd.test"
UID_DOMAIN = "chtcd.test"
USER = "researcher"
SUITE = "trixie"

CONFIG_FILE = "etc/condor/config.d/99-chtcd-localpool.config"
INSTALLED_MARKER = ".chtcd-localpool-installed"
OAUTH_DIR = "/var/lib/condor/oauth_credentials"
SIGNING_KEY = "etc/condor/passwords.d/POOL"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PATH = os.pathsep.join(filter(None, [os.environ.get("PATH"), CHROOT_PATH]))

START_TIMEOUT = 90.0
REUSE_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class LocalPool:
    """Where a running local pool is, seen from the host."""

    root: Path
    collector: str
    access_point: str
    token_dir: Path
    user: str
    uid_domain: str
    home: Path
    spool_dir: Path
    execute_dir: Path
    schedd_log: Path
    submit_defaults: Mapping[str, str] = dataclasses.field(hash=False)

    @property
    def token_file(self) -> Path:
        return self.token_dir / self.access_point


# --- locations -------------------------------------------------------------


def default_root() -> Path:
    """The pool's root: $CHTCD_LOCALPOOL_DIR, else the user's chtcd cache."""
    override = os.environ.get("CHTCD_LOCALPOOL_DIR")
    if override:
        return Path(override).expanduser().resolve()
    try:
        from platformdirs import user_cache_path
    except ImportError:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return (base / "chtcd" / "localpool").resolve()
    return (user_cache_path("chtcd") / "localpool").resolve()


def _port() -> int:
    return int(os.environ.get("CHTCD_LOCALPOOL_PORT", DEFAULT_PORT))


def _root(root: os.PathLike | str | None) -> Path:
    return Path(root).resolve() if root is not None else default_root()


def _beside(root: Path, suffix: str) -> Path:
    """A host path next to the root, outside it: jobs in the pool never see it."""
    return root.parent / f"{root.name}{suffix}"


def _token_dir(root: Path) -> Path:
    return _beside(root, ".tokens.d")


def _submit_defaults() -> dict[str, str]:
    """What every bundle sends on this pool in place of CHTC's defaults.

    The Requirements keep the shape of CHTC's remote-submit expression minus
    the pool, OS-version and architecture terms, which this pool cannot match.
    """
    requirements = (
        '(TARGET.OpSys == "LINUX")'
        " && (TARGET.Disk >= RequestDisk)"
        " && (TARGET.Memory >= RequestMemory)"
        " && ((TARGET.FileSystemDomain == MY.FileSystemDomain)"
        " || (TARGET.HasFileTransfer))"
    )
    return {"FileSystemDomain": AP_NAME, "Requirements": requirements}


def describe(root: os.PathLike | str | None = None) -> LocalPool:
    """The LocalPool for a root, whether or not it is running."""
    root = _root(root)
    return LocalPool(
        root=root,
        collector=f"127.0.0.1:{_port()}",
        access_point=AP_NAME,
        token_dir=_token_dir(root),
        user=USER,
        uid_domain=UID_DOMAIN,
        home=root / "home" / USER,
        spool_dir=root / "var/spool/condor",
        execute_dir=root / "var/lib/condor/execute",
        schedd_log=root / "var/log/condor/SchedLog",
        submit_defaults=_submit_defaults(),
    )


# --- running things ----------------------------------------------------------


def _host(tool: str) -> str:
    """A host tool by full path: a caller's PATH may lack the sbin folders root needs."""
    found = shutil.which(tool, path=HOST_PATH)
    if not found:
        raise FileNotFoundError(f"{tool} is not installed on this host")
    return found


def _say(message: str) -> None:
    print(f"localpool: {message}", file=sys.stderr, flush=True)


def _chroot_env(user: str | None = None) -> dict[str, str]:
    """A clean environment: the caller's CONDOR_CONFIG or _CONDOR_* must not leak in."""
    home = f"/home/{user}" if user else "/root"
    env = {"PATH": CHROOT_PATH, "HOME": home, "LC_ALL": "C.UTF-8"}
    if user:
        env.update(USER=user, LOGNAME=user)
    return env


def _in_root(
    root: Path,
    *argv: str,
    user: str | None = None,
    cwd: str | None = None,
    check: bool = True,
    timeout: float | None = 60,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """Run a command inside the root, as root or as one of the root's users."""
    cmd = [_host("chroot")]
    if user:
        uid, gid = _ids(root, user)
        cmd.append(f"--userspec={uid}:{gid}")
    cmd.append(str(root))
    if cwd:
        cmd += ["/usr/bin/env", "-C", cwd]
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    if "input" not in kwargs:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        cmd + list(argv), env=_chroot_env(user), check=check, timeout=timeout, **kwargs
    )


def _run_logged(argv: Sequence[str], log: Path, **kwargs: Any) -> None:
    """Run a long, chatty command with its output in a log file, not on screen."""
    kwargs.setdefault("env", dict(os.environ, PATH=HOST_PATH))
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(argv)}\n")
        out.flush()
        done = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
        )
    if done.returncode:
        raise RuntimeError(f"{shlex.join(argv)} failed ({done.returncode}); see {log}")


def _ids(root: Path, name: str) -> tuple[int, int]:
    """uid and gid of a user of the root (not of the host)."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise KeyError(f"no user {name!r} in {root}/etc/passwd")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise start/stop across processes (e.g. parallel test workers)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with _beside(root, ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- installing ----------------------------------------------------------------


def ensure_installed(root: os.PathLike | str | None = None) -> Path:
    """Make a trixie root with HTCondor and the pool's user, once.

    The root is built in a side directory and renamed into place only when
    complete, so an interrupted first run leaves nothing half-made behind.
    """
    root = _root(root)
    if (root / INSTALLED_MARKER).exists():
        return root
    if root.exists() and not (root / "usr/bin/apt-get").exists():
        raise RuntimeError(
            f"{root} exists but is not a Debian root: remove it or set CHTCD_LOCALPOOL_DIR"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log = _beside(root, ".install.log")
    _say(f"installing HTCondor into {root} (about a minute; log in {log})")
    _ensure_debootstrap(log)
    if not root.exists():
        _bootstrap(root, log)
    with _mounted(root):
        _install_htcondor(root, log)
    _ensure_user(root)
    (root / INSTALLED_MARKER).write_text(_in_root(root, "condor_version").stdout)
    _say(f"installed in {time.monotonic() - started:.0f} s")
    return root


def _ensure_debootstrap(log: Path) -> None:
    if shutil.which("debootstrap", path=HOST_PATH):
        return
    _say("installing debootstrap on the host")
    env = dict(os.environ, PATH=HOST_PATH, DEBIAN_FRONTEND="noninteractive")
    _run_logged([_host("apt-get"), "update"], log, env=env)
    _run_logged([_host("apt-get"), "install", "-y", "debootstrap"], log, env=env)


def _bootstrap(root: Path, log: Path) -> None:
    partial = _beside(root, ".partial")
    if partial.exists():
        _unmount_all(partial)
        shutil.rmtree(partial)
    _say(f"debootstrap {SUITE}")
    options = ["--variant=minbase", "--include=ca-certificates"]
    _run_logged([_host("debootstrap"), *options, SUITE, str(partial)], log)
    partial.rename(root)


def _install_htcondor(root: Path, log: Path) -> None:
    _say("apt-get install htcondor (in the root)")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = dict(_chroot_env(), DEBIAN_FRONTEND="noninteractive")
    apt = [_host("chroot"), str(root), "apt-get"]
    install = apt + ["install", "-y", "--no-install-recommends", "htcondor"]
    try:
        _run_logged(install, log, env=env)
    except RuntimeError:
        _run_logged(apt + ["update"], log, env=env)
        _run_logged(install, log, env=env)


def _ensure_user(root: Path) -> None:
    try:
        _ids(root, USER)
    except KeyError:
        _in_root(root, "useradd", "--create-home", "--shell", "/bin/bash", USER)


# --- mounts ----------------------------------------------------------------------


def _mount(root: Path) -> None:
    if not os.path.ismount(root / "proc"):
        subprocess.run([_host("mount"), "-t", "proc", "proc", str(root / "proc")], check=True)
    if not os.path.ismount(root / "dev"):
        subprocess.run([_host("mount"), "--bind", "/dev", str(root / "dev")], check=True)


def _unmount_all(root: Path) -> None:
    """Unmount everything under root, deepest first; refuse to go on if one stays."""
    prefix = str(root) + "/"
    for target in sorted(_mount_points(prefix), key=len, reverse=True):
        if subprocess.run([_host("umount"), target], capture_output=True).returncode:
            subprocess.run([_host("umount"), "--lazy", target], check=True)
    left = _mount_points(prefix)
    if left:
        raise RuntimeError(f"still mounted: {left}")


def _mount_points(prefix: str) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        targets = [_unescape(line.split()[1]) for line in mounts]
    return [t for t in targets if t.startswith(prefix)]


def _unescape(field: str) -> str:
    """/proc/self/mounts writes spaces and the like as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


@contextlib.contextmanager
def _mounted(root: Path) -> Iterator[None]:
    _mount(root)
    try:
        yield
    finally:
        _unmount_all(root)


# --- configuring -------------------------------------------------------------------


def _pool_config(collector_port: int) -> str:
    """The pool's HTCondor configuration: CHTC-like security, fast timers."""
    return f"""\
# Written by chtcd.localpool on every start: edit the module, not this file.
use ROLE: Personal
COLLECTOR_PORT = {collector_port}
COLLECTOR_HOST = 127.0.0.1:{collector_port}
SHARED_PORT_PORT = {collector_port}
NETWORK_HOSTNAME = {AP_NAME}
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
DAEMON_LIST = $(DAEMON_LIST) CREDD
# Every daemon behind the one shared port: no fixed credd port to collide with.
CREDD_ARGS = -f

# A chroot cannot give the starter new mount or pid namespaces.
MOUNT_UNDER_SCRATCH =
USE_PID_NAMESPACES = False

# Authentication as on CHTC's access points: a token per user.
SEC_DEFAULT_AUTHENTICATION = REQUIRED
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, IDTOKENS
SEC_CLIENT_AUTHENTICATION_METHODS = FS, IDTOKENS
ALLOW_READ = *
ALLOW_WRITE = *
UID_DOMAIN = {UID_DOMAIN}
TRUST_UID_DOMAIN = True

# A credd that takes the (empty) OAuth credentials CHTC jobs need.
CREDD_NAME = {AP_NAME}
SEC_CREDENTIAL_DIRECTORY_OAUTH = {OAUTH_DIR}
CREDD_OAUTH_MODE = True

# Execute slots do not share the access point's filesystem: files are transferred.
FILESYSTEM_DOMAIN = {AP_NAME}
STARTD.FILESYSTEM_DOMAIN = {EXEC_DOMAIN}
STARTER.FILESYSTEM_DOMAIN = {EXEC_DOMAIN}

# One partitionable slot of 8 CPUs, 16 GB memory and 16 GB disk, whatever the
# machine: room for eight CHTC test jobs (1 CPU, 1 GB, 1 GB) at once.
NUM_CPUS = 8
MEMORY = 16384
DISK = 16777216
START = True
SUSPEND = False
PREEMPT = False
KILL = False

# No system policy: a non-zero exit completes; a held job stays held.
SYSTEM_PERIODIC_HOLD =
SYSTEM_PERIODIC_RELEASE =
SYSTEM_PERIODIC_REMOVE =

# Short timers, so a one-job round trip takes seconds.
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 1
NEGOTIATOR_MIN_INTERVAL = 1
SCHEDD_INTERVAL = 2
SCHEDD_MIN_INTERVAL = 1
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
UPDATE_INTERVAL = 5
POLLING_INTERVAL = 2
PERIODIC_EXPR_INTERVAL = 2
MAX_PERIODIC_EXPR_INTERVAL = 10
JOB_START_DELAY = 0

# SchedLog records every command the schedd receives (tests count queries).
SCHEDD_DEBUG = D_COMMAND
"""


def _configure(root: Path) -> None:
    condor_uid, condor_gid = _ids(root, "condor")
    for inner in ("var/spool/condor", "var/lib/condor/execute", "var/log/condor",
                  "var/lock/condor", "run/condor"):
        path = root / inner
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, condor_uid, condor_gid)
        path.chmod(0o755)
    oauth = root / OAUTH_DIR.lstrip("/")
    oauth.mkdir(parents=True, exist_ok=True)
    os.chown(oauth, 0, condor_gid)
    oauth.chmod(0o2770)
    _write_hosts(root)
    (root / CONFIG_FILE).write_text(_pool_config(_port()))


def _write_hosts(root: Path) -> None:
    hosts = root / "etc/hosts"
    kept = [line for line in hosts.read_text().splitlines() if AP_NAME not in line.split()]
    hosts.write_text("\n".join(kept + [f"127.0.0.1\t{AP_NAME}"]) + "\n")


# --- processes and readiness -------------------------------------------------------


def _pool_pids(root: Path) -> dict[int, str]:
    """Processes running inside this root (pid -> command name)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == str(root):
                found[int(entry.name)] = (entry / "comm").read_text().strip()
        except OSError:
            continue
    return found


def _master_pid(root: Path) -> int | None:
    return next((pid for pid, name in _pool_pids(root).items() if name == "condor_master"), None)


def _collector_answers(collector_port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", collector_port), timeout=1):
            return True
    except OSError:
        return False


def _ads(root: Path) -> list[tuple[str, str]]:
    """(MyType, Name) of every ad in the collector, as the pool's condor_status sees them."""
    try:
        done = _in_root(root, "condor_status", "-any", "-af", "MyType", "Name",
                        check=False, timeout=15)
    except subprocess.TimeoutExpired:
        return []
    if done.returncode:
        return []
    return [tuple(line.split(None, 1)) for line in done.stdout.splitlines() if " " in line]


def _ready(root: Path) -> bool:
    """Collector, negotiator, the named schedd and credd, and a slot are advertised."""
    ads = _ads(root)
    types = {kind for kind, _ in ads}
    return (
        {"Collector", "Negotiator", "Machine"} <= types
        and ("Scheduler", AP_NAME) in ads
        and any(kind.lower() == "credd" and name == AP_NAME for kind, name in ads)
    )


def _await_ready(root: Path, timeout: float) -> bool:
    """Poll until the pool answers; a busy pool may be slow to, so don't give up at once."""
    try:
        wait_for(lambda: _collector_answers(_port()) and _ready(root), timeout,
                  "the pool", interval=0.5)
    except TimeoutError:
        return False
    return True


def is_up(root: os.PathLike | str | None = None) -> bool:
    """True if this root's daemons run and answer on the expected port."""
    root = _root(root)
    return (
        _master_pid(root) is not None
        and _collector_answers(_port())
        and _ready(root)
    )


# --- tokens ------------------------------------------------------------------------


def _ensure_token(pool: LocalPool) -> None:
    """Issue the user's token once the collector has made the pool signing key.

    Host clients read it from pool.token_dir; the pool's own tools, run as the
    user, from ~/.condor/tokens.d in the root. Modes matter: HTCondor silently
    ignores a token file that others can read.
    """
    key = pool.root / SIGNING_KEY
    wait_for(key.exists, 30, "the pool signing key")
    token = pool.token_file
    if token.exists() and token.stat().st_mtime >= key.stat().st_mtime:
        return
    identity = f"{pool.user}@{pool.uid_domain}"
    text = _in_root(pool.root, "condor_token_create", "-identity", identity).stdout.strip()
    _private_dir(pool.token_dir, 0, 0)
    _write_private(token, text + "\n", 0, 0)
    uid, gid = _ids(pool.root, pool.user)
    _private_dir(pool.home / ".condor", uid, gid)
    _private_dir(pool.home / ".condor/tokens.d", uid, gid)
    _write_private(pool.home / ".condor/tokens.d" / pool.access_point, text + "\n", uid, gid)


def _private_dir(path: Path, uid: int, gid: int) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    os.chown(path, uid, gid)


def _write_private(path: Path, text: str, uid: int, gid: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    os.chown(tmp, uid, gid)
    tmp.replace(path)


# --- start and stop ------------------------------------------------------------------


def start(root: os.PathLike | str | None = None) -> LocalPool:
    """Bring the pool up (installing it the first time), or reuse a running one."""
    root = _root(root)
    with _locked(root):
        pool = describe(root)
        if _master_pid(root) is not None:
            if _await_ready(root, REUSE_TIMEOUT):
                _ensure_token(pool)
                return pool
            _say("daemons running but not answering as expected: restarting")
            _stop_locked(root)
        ensure_installed(root)
        started = time.monotonic()
        _mount(root)
        _configure(root)
        _in_root(root, "/usr/sbin/condor_master", stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, capture_output=False)
        if not _await_ready(root, START_TIMEOUT):
            raise TimeoutError(
                f"no collector, schedd, credd and startd slot after {START_TIMEOUT:.0f} s;"
                f" see {root}/var/log/condor/"
            )
        _ensure_token(pool)
        _say(f"pool up in {time.monotonic() - started:.1f} s at {pool.collector}")
        return pool


def stop(root: os.PathLike | str | None = None) -> None:
    """Shut the daemons (and any job still running) down, then unmount."""
    root = _root(root)
    with _locked(root):
        _stop_locked(root)


def _stop_locked(root: Path) -> None:
    master = _master_pid(root)
    if master is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGQUIT)

    def gone() -> bool:
        return not _pool_pids(root) and (master is None or not Path(f"/proc/{master}").exists())

    try:
        wait_for(gone, STOP_TIMEOUT, "the daemons to exit")
    except TimeoutError:
        for pid in _pool_pids(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(gone, 10, "killed daemons to exit")
    if root.exists():
        _unmount_all(root)


# --- the pool's own tools -------------------------------------------------------------


def daemon_off(pool: LocalPool, daemon: str = "schedd") -> None:
    """Stop one of the pool's daemons (an access point outage, for tests); `daemon_on` brings it back."""
    _in_root(pool.root, "condor_off", "-daemon", daemon)


def daemon_on(pool: LocalPool, daemon: str = "schedd") -> None:
    _in_root(pool.root, "condor_on", "-daemon", daemon)


def as_administrator(pool: LocalPool, tool: str, constraint: str) -> None:
    """``condor_rm``, ``condor_hold`` or ``condor_release`` of jobs as the pool's administrator, whoever
    submitted them: for tests and benchmarks acting behind chtcd's back, and cleaning up.

    (Acting as a token's identity from a process that spoke as another one before is refused without
    an error: the bindings keep one security session per schedd per process.)
    """
    if tool not in ("condor_rm", "condor_hold", "condor_release"):
        raise ValueError(f"{tool} is not one of the job tools")
    _in_root(pool.root, tool, "-constraint", constraint)


def issue_token(pool: LocalPool, tag: str, token_dir: os.PathLike | str) -> str:
    """A token for the pool's user under its own identity, ``<user>@<tag>.<uid domain>``.

    SchedLog (``D_COMMAND``) names each command's sender by its token
    identity, so a client given one of these can have its commands told apart
    from everyone else's on the shared pool. Its jobs are still owned by
    pool.user. The token is written to token_dir/<access point>; returns the identity.
    """
    identity = f"{pool.user}@{tag}.{pool.uid_domain}"
    text = _in_root(pool.root, "condor_token_create", "-identity", identity).stdout.strip()
    token_dir = Path(token_dir)
    _private_dir(token_dir, os.getuid(), os.getgid())
    _write_private(token_dir / pool.access_point, text + "\n", os.getuid(), os.getgid())
    return identity


def condor_tool(
    pool: LocalPool,
    *args: str,
    cwd: os.PathLike | str | None = None,
    check: bool = True,
    timeout: float | None = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """Run one of the pool's tools (condor_submit, condor_q...) as the pool's user.

    cwd is a host path inside pool.root (default: the user's home); files the
    tool reads must be readable by that user. Output is captured as text.
    """
    cwd = Path(cwd).resolve() if cwd is not None else pool.home
    inner = "/" + str(cwd.relative_to(pool.root))
    return _in_root(pool.root, *args, user=pool.user, cwd=inner, check=check,
                    timeout=timeout, **kwargs)


# --- command line ----------------------------------------------------------------------


def env_lines(pool: LocalPool, toml: bool = True) -> str:
    """A chtcd config for the pool, loadable as it stands (``toml``), or shell exports for HTCondor's own tools.

    The config carries the ``[submit]`` override this pool needs: CHTC's default
    Requirements ask for slots (PoolName "CHTC", OpSysMajorVer 9) it does not have.
    """
    if toml:
        lines = [
            "# chtcd config for the local test pool, from `python3 -m chtcd.localpool env`.",
            "[pool]",
            f"collector = {_toml_string(pool.collector)}",
            f"access_point = {_toml_string(pool.access_point)}",
            f"token_dir = {_toml_string(str(pool.token_dir))}",
            "",
            "[submit]",
            "# CHTC's default Requirements match no slot of this pool: these replace them.",
        ]
        lines += [f"{key} = {_toml_string(value)}" for key, value in pool.submit_defaults.items()]
        return "\n".join(lines)
    return "\n".join([
        f"export _CONDOR_SEC_TOKEN_DIRECTORY={shlex.quote(str(pool.token_dir))}",
        "export CONDOR_CONFIG=/dev/null",
        f"export _CONDOR_COLLECTOR_HOST={shlex.quote(pool.collector)}",
    ])


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chtcd.localpool", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--toml", action="store_true", help="env: a chtcd config (the default)")
    parser.add_argument("--shell", action="store_true", help="env: shell exports for HTCondor's own tools instead")
    args = parser.parse_args(argv)
    if args.command == "up":
        print(env_lines(start(), not args.shell))
    elif args.command == "down":
        stop()
    elif args.command == "status":
        up = is_up()
        print(f"{'up' if up else 'down'}: {describe().root}")
        return 0 if up else 1
    else:
        print(env_lines(describe(), not args.shell))
    return 0


if __name__ == "__main__":
    sys.exit(main())
