"""Start-up: make the state store agree with what a crash left on disk.

A claim is committed by its rename into the work area, before the state is
saved; a folder found there without a record is adopted as claimed. Records
are otherwise trusted and reconciled with the schedd on the first tick.
"""

from __future__ import annotations

import os
from typing import List

from .layout import Layout
from .log import get as get_logger
from .state import BundleRecord, Stage, State

log = get_logger("chtcd.restore")


def restore(state: State, layout: Layout, now: float) -> List[str]:
    adopted = []
    for slot in sorted(layout.work.iterdir()) if layout.work.is_dir() else []:
        if slot.name.startswith(".") or slot.name in state.bundles:
            continue
        children = [c for c in slot.iterdir() if not c.name.startswith(".")] if slot.is_dir() else []
        if len(children) != 1:
            if not children and slot.is_dir():
                os.rmdir(slot)
            continue
        state.bundles[slot.name] = BundleRecord(id=slot.name, name=children[0].name, stage=Stage.CLAIMED, claimed_at=now)
        adopted.append(children[0].name)
        log.info("adopted a bundle claimed just before a crash", bundle=children[0].name, id=slot.name)
    return adopted
