"""`chtcd doctor`: everything a run needs, checked in order, one line each with a fix for each failure.

Checks run from the bottom up (config, token, network, access point, schedd,
credd, folders, service), and a check whose ground is missing is skipped
rather than failed twice. Network calls are bounded: a TCP connect with a
timeout first, then HTCondor's calls with a short collector timeout, so a
laptop without network gets its answer in seconds.
"""

from __future__ import annotations

import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import config as configuration
from . import heartbeat, service, tokens
from .layout import Layout

NETWORK_TIMEOUT = 5.0
DEFAULT_COLLECTOR_PORT = 9618


@dataclass(frozen=True)
class Check:
    name: str
    ok: Optional[bool]  # None: skipped, because something it stands on failed
    detail: str
    fix: str = ""
    warning: bool = False

    def line(self) -> str:
        mark = "skip" if self.ok is None else ("warn" if self.warning else "ok") if self.ok else "FAIL"
        text = f"{mark:<5} {self.name:<20} {self.detail}"
        if self.fix and (not self.ok or self.warning):
            text += f"  -> fix: {self.fix}"
        return text


def _host_port(collector: str) -> tuple:
    if collector.startswith("["):
        host, _, rest = collector[1:].partition("]")
        return host, int(rest.lstrip(":") or DEFAULT_COLLECTOR_PORT)
    if collector.count(":") == 1:
        host, port = collector.split(":")
        return host, int(port)
    return collector, DEFAULT_COLLECTOR_PORT


def _token_checks(config: configuration.Config, access_point: str, now: float) -> Iterator[Check]:
    token_dir = config.pool.token_dir
    fetch = "chtcd token fetch"
    try:
        files = tokens.token_files(token_dir) if token_dir.is_dir() else []
    except OSError:
        files = []
    path = tokens.token_for(token_dir, access_point) if files else None
    if not files:
        yield Check("token present", False, f"no token in {token_dir}", fetch)
        yield Check("token private", None, "no token to check")
        yield Check("token not expired", None, "no token to check")
        return
    if path is None:
        path = files[0]
    yield Check("token present", True, str(path))
    loose = [p for p in [token_dir, *files] if stat.S_IMODE(p.stat().st_mode) & 0o077]
    if loose:
        modes = ", ".join(f"{p} is {stat.S_IMODE(p.stat().st_mode):o}" for p in loose)
        chmods = "; ".join(f"chmod {'700' if p == token_dir else '600'} {p}" for p in loose)
        yield Check("token private", False, f"others can read it ({modes}): HTCondor skips such tokens", chmods)
    else:
        yield Check("token private", True, f"{token_dir} is 700, its files 600")
    if not tokens.file_claims(path):
        yield Check("token not expired", False, f"{path} does not hold a token", fetch)
        return
    expiry = tokens.Expiry(path, tokens.expiry(path))
    if expiry.expired(now):
        yield Check("token not expired", False, expiry.describe(now), fetch)
    elif expiry.expiring(now):
        yield Check("token not expired", True, expiry.describe(now), fetch, warning=True)
    else:
        yield Check("token not expired", True, expiry.describe(now))


def _reach(collector: str) -> Check:
    try:
        host, port = _host_port(collector)
    except ValueError:
        return Check("collector reachable", False, f"{collector} is not host or host:port", "set [pool] collector")
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=NETWORK_TIMEOUT):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        return Check(
            "collector reachable",
            False,
            f"{host}:{port}: {why}",
            "check your network (CHTC may need the campus VPN off campus) and [pool] collector",
        )
    return Check("collector reachable", True, f"{host}:{port} answered in {(time.monotonic() - started) * 1000:.0f} ms")


def _pool_checks(config: configuration.Config, access_point: str, token_ok: bool) -> Iterator[Check]:
    from . import condor

    reach = _reach(config.pool.collector)
    yield reach
    names = ("access point found", "schedd access", "credd found")
    if not reach.ok:
        for name in names:
            yield Check(name, None, "the collector is not reachable")
        return
    door = condor.AccessPoint(config.pool.collector, access_point, config.pool.token_dir)
    door.wait_at_most(NETWORK_TIMEOUT)
    token_first = "" if token_ok else "fix the token first; "
    try:
        found = door.locate()
    except condor.Unreachable as exc:
        yield Check(names[0], False, str(exc), token_first + "check [pool] collector and your network")
        for name in names[1:]:
            yield Check(name, None, "the access point was not found")
        return
    if not found:
        try:
            known = [n for n in door.schedd_names() if n.split(".")[0].startswith("ap")] or door.schedd_names()
        except condor.Unreachable:
            known = []
        hint = f" (the collector knows: {', '.join(known[:8])})" if known else ""
        yield Check(
            names[0],
            False,
            f"{config.pool.collector} lists no access point named {access_point}{hint}",
            "set [pool] access_point to the name you ssh to, e.g. ap2002.chtc.wisc.edu (chtcd init)",
        )
        for name in names[1:]:
            yield Check(name, None, "the access point was not found")
        return
    yield Check(names[0], True, f"{access_point} via {config.pool.collector}")
    try:
        door.ping()
    except condor.AuthRefused as exc:
        yield Check(names[1], False, str(exc), "chtcd token fetch")
    except condor.Unreachable as exc:
        yield Check(names[1], False, str(exc), token_first + "try again later; if it persists, ask the CHTC facilitators")
    else:
        yield Check(names[1], True, "the access point accepted the token")
    try:
        credd = door.find_credd()
    except condor.Unreachable as exc:
        yield Check(names[2], False, str(exc), "try again later")
    else:
        if credd:
            yield Check(names[2], True, f"credd {access_point}")
        else:
            yield Check(
                names[2],
                False,
                f"no credd named {access_point}: jobs will hold with 'Job credentials not available'",
                "ask the CHTC facilitators whether this access point supports remote submission",
            )


def _writable(folder: Path) -> Optional[str]:
    if not folder.is_dir():
        return f"{folder} does not exist"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".chtcd-doctor-"):
            pass
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    return None


def _folder_checks(layout: Layout) -> Iterator[Check]:
    for name, folder in (("outbox writable", layout.outbox), ("inbox writable", layout.inbox)):
        problem = _writable(folder)
        if problem:
            yield Check(name, False, problem, f"chtcd init creates it, or: mkdir -p {folder}")
        else:
            yield Check(name, True, str(folder))
    work = layout.work if layout.work.is_dir() else layout.state_dir
    try:
        devices = {p: p.stat().st_dev for p in (layout.outbox, layout.inbox, work)}
    except OSError:
        yield Check("same filesystem", None, "a folder is missing")
        return
    apart = [p for p in (layout.outbox, layout.inbox) if devices[p] != devices[work]]
    if apart:
        yield Check(
            "same filesystem",
            False,
            f"{', '.join(map(str, apart))} not on the same filesystem as the work area {work}: "
            "bundles would be copied, not renamed",
            "set [paths] state_dir to a folder on the inbox's disk",
        )
    else:
        yield Check("same filesystem", True, f"outbox, inbox and {work} share one filesystem")


def _service_check(layout: Optional[Layout] = None) -> Check:
    """The service, or any daemon running on this state (`chtcd run` in a terminal counts): someone tracks the bundles."""
    current = service.state()
    if current.installed and current.running:
        return Check("service running", True, current.describe())
    beat = heartbeat.read(layout.heartbeat_file) if layout is not None else None
    if beat is not None and layout is not None:
        return Check(
            "service running",
            True,
            f"chtcd run is running (pid {beat.pid}) on {layout.state_dir}; the service: {current.describe()}",
            f"{service.fix(current)}, so it also runs after you log out or restart",
            warning=True,
        )
    return Check("service running", False, current.describe(), service.fix(current))


def checks(config_path: Optional[str], now: Optional[float] = None) -> Iterator[Check]:
    now = time.time() if now is None else now
    try:
        config = configuration.load(config_path)
        access_point = config.require_access_point()
    except configuration.ConfigError as exc:
        yield Check("config valid", False, str(exc), exc.fix)
        for name in ("token", "access point", "folders"):
            yield Check(name, None, "no valid config")
        yield _service_check()
        return
    where, _ = configuration.resolve_config_path(config_path)
    yield Check("config valid", True, f"{where if where.exists() else 'built-in defaults'}, access point {access_point}")
    token = list(_token_checks(config, access_point, now))
    yield from token
    yield from _pool_checks(config, access_point, all(c.ok for c in token))
    layout = Layout.from_config(config)
    yield from _folder_checks(layout)
    yield _service_check(layout)


def run(config_path: Optional[str], out: Callable[[str], None] = print) -> int:
    """Print every check; 0 only when none fails (a warning passes; a skip is counted with the failure it follows)."""
    failed = 0
    for check in checks(config_path):
        out(check.line())
        sys.stdout.flush()
        failed += check.ok is False
    out("all checks passed" if not failed else f"{failed} check(s) did not pass")
    return 0 if not failed else 1

