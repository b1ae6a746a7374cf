"""Start-up: make the state store agree with what a crash left on disk.

A claim is committed by its rename into the work area, before the state is
saved; a folder found there without a record is adopted. Records are
otherwise trusted and reconciled with the schedd on the first tick.
"""

from __future__ import annotations

import shutil
from typing import List

from .layout import Layout
from .log import get as get_logger
from .state import BundleRecord, Stage, State

log = get_logger("chtcd.restore")


def restore(state: State, layout: Layout, now: float) -> List[str]:
    """Adopt unrecorded work folders; clear work slots of bundles already delivered.

    An unrecorded folder may have been claimed only, or submitted too if the
    state was lost: it is adopted as `submitting`, whose outcome the first
    tick settles by asking the schedd for its bundle id.
    """
    adopted = []
    for slot in sorted(layout.work.iterdir()) if layout.work.is_dir() else []:
        if slot.name.startswith(".") or not slot.is_dir():
            continue
        record = state.bundles.get(slot.name)
        if record is not None:
            if record.stage in (Stage.DELIVERED, Stage.RELEASED, Stage.DONE):
                shutil.rmtree(slot, ignore_errors=True)
            continue
        children = [c for c in slot.iterdir() if not c.name.startswith(".")]
        if len(children) != 1:
            if not children:
                shutil.rmtree(slot, ignore_errors=True)
            continue
        state.bundles[slot.name] = BundleRecord(
            id=slot.name, name=children[0].name, stage=Stage.SUBMITTING, claimed_at=now
        )
        adopted.append(children[0].name)
        log.info("adopted a bundle found in the work area", bundle=children[0].name, id=slot.name)
    return adopted
