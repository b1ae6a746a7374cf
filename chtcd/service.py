"""`chtcd service install | uninstall | status`: the daemon as a systemd user unit or a launchd agent.

The unit and the plist ship inside the package (``chtcd/service_files/``, the
one source of truth; the repository's ``systemd/`` and ``launchd/`` entries
are links to them). Installing fills in the absolute path of this
installation's ``chtcd`` and of the config file, so the service runs the same
program on the same config whatever PATH or XDG variables it starts with.

Every change is first built as a `Plan` (files to write or remove, commands to
run), which ``--dry-run`` prints instead of carrying out. ``$CHTCD_SYSTEMCTL``
and ``$CHTCD_LAUNCHCTL`` replace the platform tools (tests record with them).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple
from xml.sax.saxutils import escape

from . import atomic

UNIT_NAME = "chtcd.service"
AGENT_LABEL = "edu.wisc.chtc.chtcd"
PLIST_NAME = f"{AGENT_LABEL}.plist"


class ServiceError(Exception):
    pass


def template(name: str) -> str:
    return (resources.files("chtcd") / "service_files" / name).read_text()


def is_macos(platform: str = sys.platform) -> bool:
    return platform == "darwin"


def chtcd_program() -> Path:
    """The ``chtcd`` of this installation: the one being run, else the script beside this Python, else PATH's."""
    ran = Path(sys.argv[0])
    candidates = []
    if ran.name == "chtcd":
        candidates.append(ran)
    candidates.append(Path(sys.executable).parent / "chtcd")
    found = shutil.which("chtcd")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    raise ServiceError("cannot find the chtcd program: install chtcd with `python3 -m pip install .` first")


def _systemd_word(text: str) -> str:
    """One ExecStart argument: quoted when it has spaces or quotes; % and $ escaped as systemd needs."""
    text = text.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_./:@+,=-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


WRITTEN_BY = "Written by `chtcd service install`; `chtcd service uninstall` removes it."


def render_unit(program: Path, config: Path) -> str:
    """The unit with this installation's paths; the template's how-to-install note gives way to ours."""
    body = re.sub(r"\A(#[^\n]*\n)+", "", template(UNIT_NAME))
    return (
        f"# chtcd as a systemd user service. {WRITTEN_BY}\n# Logs: journalctl --user -u chtcd, and chtcd logs.\n"
        + body.replace("@CHTCD@", _systemd_word(str(program)))
        .replace("@CONFIG@", _systemd_word(str(config)))
    )


def render_plist(program: Path, config: Path, home: Path) -> str:
    body = re.sub(r"<!--.*?-->", f"<!-- chtcd as a launchd agent. {WRITTEN_BY} -->", template(PLIST_NAME), count=1, flags=re.S)
    return (
        body.replace("@CHTCD@", escape(str(program)))
        .replace("@CONFIG@", escape(str(config)))
        .replace("@HOME@", escape(str(home)))
    )


def unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / PLIST_NAME


def systemctl() -> List[str]:
    return [*shlex.split(os.environ.get("CHTCD_SYSTEMCTL", "systemctl")), "--user"]


def launchctl() -> List[str]:
    return shlex.split(os.environ.get("CHTCD_LAUNCHCTL", "launchctl"))


def _domain() -> str:
    return f"gui/{os.getuid()}"


@dataclass
class Plan:
    writes: List[Tuple[Path, str]] = field(default_factory=list)
    removes: List[Path] = field(default_factory=list)
    folders: List[Path] = field(default_factory=list)
    commands: List[List[str]] = field(default_factory=list)
    may_fail: List[List[str]] = field(default_factory=list)  # run, but a failure is expected (not loaded yet)

    def describe(self) -> str:
        lines = []
        for folder in self.folders:
            lines.append(f"would create folder {folder}")
        for path, text in self.writes:
            lines.append(f"would write {path}:")
            lines.extend("    " + line for line in text.rstrip("\n").splitlines())
        for path in self.removes:
            lines.append(f"would remove {path}")
        for argv in self.may_fail + self.commands:
            lines.append(f"would run: {shlex.join(argv)}")
        return "\n".join(lines)

    def carry_out(self) -> List[str]:
        """Do it; returns what was done, in words. A failing command stops with its output."""
        done = []
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        for path, text in self.writes:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(path, text.encode(), mode=0o644)
            done.append(f"wrote {path}")
        for path in self.removes:
            try:
                path.unlink()
                done.append(f"removed {path}")
            except FileNotFoundError:
                pass
        for argv in self.may_fail:
            _run(argv)
        for argv in self.commands:
            result = _run(argv)
            if result.returncode != 0:
                raise ServiceError(
                    f"`{shlex.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                    + _hint(argv)
                )
            done.append(f"ran {shlex.join(argv)}")
        return done


def _hint(argv: List[str]) -> str:
    if "--user" in argv:
        return (
            "; systemd user services need a login session with a user manager "
            "(on a server without one: loginctl enable-linger $USER, then log in again)"
        )
    return ""


def _run(argv: List[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]} is not installed")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} did not answer within 60 s")


def plan_install(config: Path, platform: str = sys.platform, program: Optional[Path] = None) -> Plan:
    program = program or chtcd_program()
    if is_macos(platform):
        home = Path.home()
        path = plist_path()
        return Plan(
            folders=[home / "Library" / "Logs"],
            writes=[(path, render_plist(program, config, home))],
            may_fail=[[*launchctl(), "bootout", f"{_domain()}/{AGENT_LABEL}"]],
            commands=[[*launchctl(), "bootstrap", _domain(), str(path)]],
        )
    return Plan(
        writes=[(unit_path(), render_unit(program, config))],
        commands=[
            [*systemctl(), "daemon-reload"],
            [*systemctl(), "enable", UNIT_NAME],
            [*systemctl(), "restart", UNIT_NAME],  # a reinstall (say, after an upgrade) runs the new program
        ],
    )


def plan_uninstall(platform: str = sys.platform) -> Plan:
    if is_macos(platform):
        return Plan(may_fail=[[*launchctl(), "bootout", f"{_domain()}/{AGENT_LABEL}"]], removes=[plist_path()])
    return Plan(
        may_fail=[[*systemctl(), "disable", "--now", UNIT_NAME]],
        removes=[unit_path()],
        commands=[[*systemctl(), "daemon-reload"]],
    )


@dataclass(frozen=True)
class ServiceState:
    installed: bool
    running: bool
    path: Path
    detail: str

    def describe(self) -> str:
        if not self.installed:
            return f"not installed ({self.path} does not exist)"
        return f"installed ({self.path}), {'running' if self.running else 'not running'}: {self.detail}"


def state(platform: str = sys.platform) -> ServiceState:
    """Installed (the file is there) and running (the service manager says so)."""
    if is_macos(platform):
        path = plist_path()
        if not path.exists():
            return ServiceState(False, False, path, "")
        result = _run([*launchctl(), "print", f"{_domain()}/{AGENT_LABEL}"])
        if result.returncode != 0:
            return ServiceState(True, False, path, "not loaded")
        match = re.search(r"^\s*state = (\S+)", result.stdout, re.MULTILINE)
        status = match.group(1) if match else "loaded"
        return ServiceState(True, status == "running", path, status)
    path = unit_path()
    if not path.exists():
        return ServiceState(False, False, path, "")
    active = _run([*systemctl(), "is-active", UNIT_NAME])
    status = (active.stdout.strip() or active.stderr.strip() or f"exit {active.returncode}").splitlines()[0]
    return ServiceState(True, active.returncode == 0 and status == "active", path, status)


def fix(current: ServiceState, platform: str = sys.platform) -> str:
    if not current.installed:
        return "chtcd service install"
    if is_macos(platform):
        return f"launchctl kickstart -k {_domain()}/{AGENT_LABEL}; see ~/Library/Logs/chtcd.log"
    return "systemctl --user restart chtcd; see journalctl --user -u chtcd"
