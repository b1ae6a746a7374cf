"""Steering a running daemon: pause, resume, cancel, retry.

The daemon owns its state file; the CLI never writes it. It asks instead,
with files in ``state_dir/requests`` (see `layout`): ``pause`` is a flag the
intake reads before claiming anything (rq's suspension, as a file), and
``cancel-<name>`` / ``retry-<name>`` are requests the daemon carries out and
then deletes. The daemon watches that folder, so a request is taken up within
moments; one left while no daemon runs is taken up when it starts. `pending`
hands the requests to the daemon as data (the pipeline carries them out, then
calls `done`); the rest is the CLI's.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from . import report
from .atomic import free_name, move_dir
from .layout import CANCEL_PREFIX, RETRY_PREFIX, Layout
from .outbox import new_bundle_id
from .state import BundleRecord, Stage, State

CANCELLABLE = (Stage.CLAIMED, Stage.SUBMITTING, Stage.SUBMITTED, Stage.RUNNING)
"""Later than these the outputs are already on their way to the inbox: too late to cancel."""

CANCELLED_REASON = "cancelled with chtcd cancel"


class ControlError(Exception):
    """What the user asked cannot be done; the message says why and what to do."""


# ---- the daemon's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """What the CLI has asked of the daemon, by bundle name."""

    paused: bool
    cancel: Tuple[str, ...] = ()
    retry: Tuple[str, ...] = ()


def pending(layout: Layout) -> Requests:
    """The requests waiting in ``state_dir/requests``, oldest name first."""
    paused = layout.pause_flag.exists()
    try:
        entries = sorted(os.listdir(layout.requests))
    except FileNotFoundError:
        return Requests(paused)
    return Requests(
        paused,
        tuple(e[len(CANCEL_PREFIX):] for e in entries if e.startswith(CANCEL_PREFIX)),
        tuple(e[len(RETRY_PREFIX):] for e in entries if e.startswith(RETRY_PREFIX)),
    )


def done(layout: Layout, kind: str, name: str) -> None:
    """A request carried out (or that nothing is left to carry out): remove it."""
    path = layout.cancel_request(name) if kind == "cancel" else layout.retry_request(name)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---- the CLI's side --------------------------------------------------------------------


def _requests_dir(layout: Layout) -> Path:
    old = os.umask(0o077)
    try:
        layout.requests.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    return layout.requests


def pause(layout: Layout) -> bool:
    """Ask the daemon to stop taking new bundles; False if it already was paused."""
    _requests_dir(layout)
    if layout.pause_flag.exists():
        return False
    layout.pause_flag.write_text(f"paused at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return True


def resume(layout: Layout) -> bool:
    try:
        layout.pause_flag.unlink()
    except FileNotFoundError:
        return False
    return True


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or name in ("..",):
        raise ControlError(f"{name!r} is not a bundle name: give the folder's name, as `chtcd status` lists it")


def in_flight(state: State, name: str) -> List[BundleRecord]:
    return [r for r in state.bundles.values() if r.name == name and r.stage in CANCELLABLE]


def take_back(layout: Layout, name: str, access_point: str) -> Path:
    """Return a bundle the daemon has not taken yet straight to the inbox, with a report saying cancelled.

    The first rename races the daemon's claim (also a rename) safely: exactly one wins.
    """
    holder = layout.outbox / f".chtcd-cancel-{secrets.token_hex(4)}"
    os.rename(layout.outbox / name, holder)
    now = time.time()
    record = BundleRecord(id=new_bundle_id(now), name=name, stage=Stage.READY, claimed_at=now)
    record.outcome = "cancelled"
    record.reason = f"{CANCELLED_REASON} before it was sent"
    report.write(holder, report.build(record, access_point, now))
    target = free_name(layout.inbox, name)
    move_dir(holder, target)
    return target


def request_cancel(layout: Layout, name: str, state: State, access_point: str) -> str:
    """Cancel a bundle: at once if still in the outbox, else through the daemon. Returns what happened."""
    _check_name(name)
    if (layout.outbox / name).is_dir():
        try:
            target = take_back(layout, name, access_point)
        except FileNotFoundError:
            pass  # the daemon claimed it a moment ago: cancel it through the daemon
        else:
            return f"{name} had not been sent yet; it is back in {target}"
    elif not in_flight(state, name):
        raise ControlError(f"no bundle named {name} is waiting or in flight; `chtcd status` lists them")
    path = _requests_dir(layout) / f"{CANCEL_PREFIX}{name}"
    path.write_text(f"requested at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return f"asked the daemon to cancel {name}: its jobs are removed and the folder comes back to {layout.inbox}"


def in_trouble(state: State, name: str) -> List[BundleRecord]:
    return [r for r in state.bundles.values() if r.name == name and r.first_error_at is not None and r.delivered_at is None]


def request_retry(layout: Layout, name: str) -> None:
    """Ask the daemon to try a bundle in trouble now instead of at its next retry time."""
    _check_name(name)
    _requests_dir(layout)
    layout.retry_request(name).write_text(f"requested at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")


def retry(layout: Layout, name: str) -> Path:
    """Send a bundle that came back through again: into the outbox without its old report."""
    _check_name(name)
    folder = layout.inbox / name
    report_file = folder / report.REPORT_NAME
    if not folder.is_dir():
        raise ControlError(
            f"{folder} is not a folder in the inbox, and no bundle named {name} is in trouble; "
            "`chtcd status` lists the bundles"
        )
    try:
        bundle_name = json.loads(report_file.read_text()).get("bundle") or name
    except FileNotFoundError:
        raise ControlError(f"{folder} has no {report.REPORT_NAME}: it is not a bundle chtcd brought back") from None
    except ValueError:
        bundle_name = name
    layout.outbox.mkdir(parents=True, exist_ok=True)
    staging = layout.outbox / f".chtcd-incoming-{secrets.token_hex(4)}"
    move_dir(folder, staging)
    (staging / report.REPORT_NAME).unlink()
    target = free_name(layout.outbox, bundle_name)
    os.rename(staging, target)
    return target
