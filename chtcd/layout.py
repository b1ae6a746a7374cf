"""Where everything chtcd keeps lives on disk, named in one place.

    state_dir/
        state.json        the state store's snapshot, and state.journal what each save changed since
                          (each with .prev: the generation before; see `journal`)
        chtcd.log         JSON lines log
        chtcd.lock        held by the one daemon running on this state
        daemon.json       the running daemon's heartbeat: pid, last and next tick
        requests/         what the CLI asks of the running daemon, as files:
            pause             present while intake is paused
            cancel-<name>     cancel that bundle (consumed by the daemon)
            retry-<name>      try that bundle in trouble again now (consumed by the daemon)
        work/<bundle id>/<bundle name>/
                          a claimed bundle: submitted from here, outputs
                          retrieved into it, then renamed into the inbox
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config

CANCEL_PREFIX = "cancel-"
RETRY_PREFIX = "retry-"


@dataclass(frozen=True)
class Layout:
    outbox: Path
    inbox: Path
    state_dir: Path

    @classmethod
    def from_config(cls, config: Config) -> "Layout":
        return cls(config.paths.outbox, config.paths.inbox, config.paths.state_dir)

    @property
    def work(self) -> Path:
        return self.state_dir / "work"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "chtcd.log"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "chtcd.lock"

    @property
    def heartbeat_file(self) -> Path:
        return self.state_dir / "daemon.json"

    @property
    def requests(self) -> Path:
        return self.state_dir / "requests"

    @property
    def pause_flag(self) -> Path:
        return self.requests / "pause"

    def cancel_request(self, name: str) -> Path:
        return self.requests / f"{CANCEL_PREFIX}{name}"

    def retry_request(self, name: str) -> Path:
        return self.requests / f"{RETRY_PREFIX}{name}"

    def work_slot(self, bundle_id: str) -> Path:
        return self.work / bundle_id

    def work_bundle(self, bundle_id: str, name: str) -> Path:
        return self.work / bundle_id / name

    def create(self) -> None:
        """Make the folders; the state folder is private, the user's boxes are theirs."""
        old = os.umask(0o077)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.work.mkdir(exist_ok=True)
            self.requests.mkdir(exist_ok=True)
        finally:
            os.umask(old)
        os.chmod(self.state_dir, 0o700)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.inbox.mkdir(parents=True, exist_ok=True)
