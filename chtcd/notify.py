"""Hearing back: a desktop notification when a bundle comes back, gets stuck, or a job is held; `on_delivery`.

The pipeline is not touched for this: after every daemon step a `Watcher`
compares the state with what it has already told the user, so a delivery or
a new hold is announced once, whichever path produced it. Everything here
runs on its own short-lived thread and only logs its failures: a missing
``notify-send`` or a failing ``on_delivery`` command never stops the daemon.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import lifecycle
from .config import Config
from .log import get as get_logger
from .state import BundleRecord, Stage, State

log = get_logger("chtcd.notify")

NOTIFY_TIMEOUT = 15.0
"""A notifier stuck on a missing session bus must not pile up threads."""

HOOK_OUTCOMES = ("delivered", "partial")
"""`on_delivery` runs only for bundles that came back with outputs."""


def _applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def notifier_command(title: str, body: str, platform: str = sys.platform) -> Optional[List[str]]:
    """The command that shows one notification: ``$CHTCD_NOTIFY_COMMAND TITLE BODY`` if set (tests
    record with it), osascript on macOS, notify-send elsewhere; None when there is no such program."""
    override = os.environ.get("CHTCD_NOTIFY_COMMAND")
    if override:
        return [*shlex.split(override), title, body]
    if platform == "darwin":
        script = f"display notification {_applescript_string(body)} with title {_applescript_string(title)}"
        return ["osascript", "-e", script]
    found = shutil.which("notify-send")
    if not found:
        return None
    return [found, "--app-name=chtcd", title, body]


def _background(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


class Notifier:
    """Shows desktop notifications and runs the `on_delivery` command, as the config says."""

    def __init__(self, config: Config):
        self.desktop = config.notify.desktop
        words = shlex.split(config.notify.on_delivery) if config.notify.on_delivery else []
        self.on_delivery = [os.path.expanduser(words[0]), *words[1:]] if words else []
        self._missing_said = False

    def notify(self, title: str, body: str) -> Optional[threading.Thread]:
        if not self.desktop:
            return None
        argv = notifier_command(title, body)
        if argv is None:
            if not self._missing_said:
                log.info("desktop notifications need notify-send (package libnotify-bin); set [notify] desktop = false to silence this")
                self._missing_said = True
            return None
        return _background(lambda: self._run_notifier(argv))

    @staticmethod
    def _run_notifier(argv: List[str]) -> None:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=NOTIFY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("desktop notification failed", command=argv[0], error=str(exc))
            return
        if done.returncode != 0:
            log.warning(
                "desktop notification failed",
                command=argv[0],
                exit_code=done.returncode,
                stderr=done.stderr.decode(errors="replace")[-500:],
            )

    def delivered(self, record: BundleRecord) -> List[threading.Thread]:
        started = []
        path = record.inbox_path or ""
        outcome = record.outcome or "delivered"
        if outcome == "rejected":
            title, body = f"chtcd: {record.name} was refused", f"{record.reason or ''}\n{path}".strip()
        elif outcome in HOOK_OUTCOMES:
            word = "is back" if outcome == "delivered" else "is back, partly"
            title, body = f"chtcd: {record.name} {word}", path
        else:
            title, body = f"chtcd: {record.name} came back {outcome}", f"{record.reason or ''}\n{path}".strip()
        shown = self.notify(title, body)
        if shown is not None:
            started.append(shown)
        if self.on_delivery and outcome in HOOK_OUTCOMES and path:
            started.append(_background(lambda: self._run_hook(record.name, outcome, path)))
        return started

    def held(self, record: BundleRecord, jobs: List[str], reason: Optional[str]) -> Optional[threading.Thread]:
        count = f"{len(jobs)} jobs" if len(jobs) > 1 else f"job {jobs[0]}"
        return self.notify(f"chtcd: {record.name}: {count} held", reason or "see chtcd status " + record.name)

    def trouble(self, record: BundleRecord) -> Optional[threading.Thread]:
        """Once per spell of trouble: the error, and that chtcd keeps trying on its own."""
        return self.notify(
            f"chtcd: {record.name} is stuck; chtcd keeps trying",
            f"{record.last_error or ''}\nThe other bundles go on. chtcd status {record.name} shows more.".strip(),
        )

    def _run_hook(self, name: str, outcome: str, path: str) -> None:
        """The user's command, with the folder as its last argument; never through a shell."""
        argv = [*self.on_delivery, path]
        env = dict(os.environ, CHTCD_BUNDLE=name, CHTCD_OUTCOME=outcome)
        try:
            done = subprocess.run(argv, cwd=path, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        except OSError as exc:
            log.error("on_delivery command could not be started", bundle=name, command=argv[0], error=str(exc))
            return
        if done.returncode != 0:
            log.error(
                "on_delivery command failed",
                bundle=name,
                command=argv[0],
                exit_code=done.returncode,
                stderr=done.stderr.decode(errors="replace")[-2000:],
            )
        else:
            log.info("on_delivery command finished", bundle=name, command=argv[0])


class Watcher:
    """Announces what changed in the state since the last look: bundles back, jobs newly held.

    What the state already shows when the daemon starts was announced by the
    run before, so it is taken as seen.
    """

    def __init__(self, notifier: Notifier, state: State):
        self.notifier = notifier
        self._delivered: Set[str] = {r.id for r in state.bundles.values() if r.delivered_at is not None}
        self._held: Set[Tuple[str, str]] = set(self._holds(state))
        self._troubled: Set[Tuple[str, float]] = set(self._troubles(state))
        self._idle: Set[str] = {r.id for r in state.bundles.values() if r.idle is not None}

    @staticmethod
    def _troubles(state: State) -> Iterator[Tuple[str, float]]:
        for record in state.bundles.values():
            if record.first_error_at is not None and record.delivered_at is None:
                yield record.id, record.first_error_at

    @staticmethod
    def _holds(state: State) -> Iterator[Tuple[str, str]]:
        for record in state.bundles.values():
            if record.stage != Stage.RUNNING:
                continue
            for key, job in record.jobs.items():
                if job.status == 5 and lifecycle.phase(job) == lifecycle.Phase.HELD:
                    yield record.id, key

    def look(self, state: State) -> List[threading.Thread]:
        started: List[threading.Thread] = []
        for record in state.bundles.values():
            if record.delivered_at is not None and record.id not in self._delivered:
                self._delivered.add(record.id)
                started += self.notifier.delivered(record)
        troubles = set(self._troubles(state))
        for bundle_id, _since in sorted(troubles - self._troubled):
            shown = self.notifier.trouble(state.bundles[bundle_id])
            if shown is not None:
                started.append(shown)
        self._troubled = troubles
        holds = set(self._holds(state))
        new = holds - self._held
        self._held = holds
        by_bundle: Dict[str, List[str]] = {}
        for bundle_id, key in sorted(new):
            by_bundle.setdefault(bundle_id, []).append(key)
        for bundle_id, keys in by_bundle.items():
            record = state.bundles[bundle_id]
            first = record.jobs[keys[0]]
            shown = self.notifier.held(record, [f"{record.cluster}.{k}" for k in keys], first.hold_reason)
            if shown is not None:
                started.append(shown)
        for record in state.bundles.values():  # why jobs stay idle: told once per bundle, however often re-explained
            if record.idle is not None and record.id not in self._idle:
                self._idle.add(record.id)
                hint = record.idle["hints"][0] if record.idle.get("hints") else ""
                shown = self.notifier.notify(f"chtcd: {record.name}: jobs stay idle", f"{record.idle['summary']}\n{hint}".strip())
                if shown is not None:
                    started.append(shown)
        return started
