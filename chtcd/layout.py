"""Where everything chtcd keeps lives on disk, named in one place.

    state_dir/
        state.json        the state store (state.json.prev: the generation before)
        chtcd.log         JSON lines log
        chtcd.lock        held by the one daemon running on this state
        work/<bundle id>/<bundle name>/
                          a claimed bundle: submitted from here, outputs
                          retrieved into it, then renamed into the inbox
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import Config


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
        finally:
            os.umask(old)
        os.chmod(self.state_dir, 0o700)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.inbox.mkdir(parents=True, exist_ok=True)
