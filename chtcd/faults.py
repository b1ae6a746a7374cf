"""When something goes wrong: the access point's outage, and each bundle's own trouble.

Two kinds of fault, kept apart the way a mail queue keeps a dead destination
apart from one undeliverable message:

- **An outage**: chtcd cannot talk to the access point at all (locating it,
  connecting, the token, the tick's query). Every call waits. It is logged once
  when it starts and once when it ends, and attempts thin out while it lasts:
  1, 2, 4, then 8 ticks apart.
- **A bundle's trouble**: a call about one bundle's jobs that the access point
  answered with an error, or a fault of this computer's with that bundle's files
  (disk full, an unwritable inbox). Only that bundle waits, on its own budget
  kept in its record: attempts, first and last error, next retry. After
  `fault_grace_seconds` of trouble it comes back to the inbox with what could be
  fetched, and a report saying why.

The budget's rules are pure functions of a record and the time; `Outage`
holds the one piece of state an outage needs between ticks.
"""

from __future__ import annotations

from typing import Optional

from . import condor
from .log import get as get_logger
from .state import BundleRecord

log = get_logger("chtcd.faults")

MAX_OUTAGE_SKIP = 8
"""During a long outage, one attempt every this many ticks."""

MAX_RETRY_SECONDS = 3600.0
"""A bundle in trouble is tried at least hourly."""


class Outage:
    """Whether the access point can be called on this tick, and how long it has been away."""

    def __init__(self) -> None:
        self.kind: Optional[str] = None
        self.failures = 0
        self._skip_ticks = 0
        self.calls_allowed = True

    @property
    def ongoing(self) -> bool:
        return self.kind is not None

    def open_tick(self) -> None:
        """During an outage most ticks make no call at all; the others make one, to see if it ended."""
        if self._skip_ticks > 0:
            self._skip_ticks -= 1
            self.calls_allowed = False
        else:
            self.calls_allowed = True

    def failed(self, exc: condor.Unreachable, access_point: str, token_dir: str) -> None:
        """One line when the outage starts (or changes kind); then back off: skip 1, 2, 4... up to 8 ticks."""
        message = str(exc)
        if isinstance(exc, condor.AuthRefused):
            message += (
                f"; fetch a fresh token: ssh NETID@{access_point} condor_token_fetch > "
                f"{token_dir}/{access_point.split('.')[0]} && chmod 600 {token_dir}/*  (or: chtcd token fetch)"
            )
        kind = type(exc).__name__
        if kind != self.kind:
            what = "the access point refused the token" if isinstance(exc, condor.AuthRefused) else "access point unreachable"
            log.error(f"{what}; every bundle waits, chtcd retries on its own", error=message)
        else:
            log.debug("access point still unreachable", attempt=self.failures + 1, error=message)
        self.kind = kind
        self.calls_allowed = False
        self.failures += 1
        self._skip_ticks = min(2 ** (self.failures - 1), MAX_OUTAGE_SKIP) - 1

    def answered(self) -> bool:
        """The access point answered; True if that ends an outage (credentials are then added again)."""
        ended = self.kind is not None
        if ended:
            log.info("access point reachable again", after_attempts=self.failures)
        self.kind = None
        self.failures = 0
        return ended


# ---- a bundle's own budget ----------------------------------------------------------


def backoff(failures: int, tick: float) -> float:
    """Seconds before a bundle's next attempt: one tick, then doubling, at most an hour."""
    return min(tick * 2 ** max(failures - 1, 0), max(MAX_RETRY_SECONDS, tick))


def charge(record: BundleRecord, error: str, now: float, tick: float) -> bool:
    """Count a failed attempt against the bundle; True when this starts its trouble (say it then, once)."""
    first = record.first_error_at is None
    if first:
        record.first_error, record.first_error_at = error, now
    record.failures += 1
    record.last_error = error
    record.retry_at = now + backoff(record.failures, tick)
    return first


def clear(record: BundleRecord) -> bool:
    """The bundle's step went through; True if it had been in trouble."""
    was = record.first_error_at is not None
    record.failures = 0
    record.first_error = record.first_error_at = record.last_error = record.retry_at = None
    return was


def waiting(record: BundleRecord, now: float) -> bool:
    """In trouble and not yet due for its next attempt."""
    return record.retry_at is not None and now < record.retry_at


def out_of_time(record: BundleRecord, now: float, grace: float) -> bool:
    """In trouble for the whole grace period: time to send it back with what there is."""
    return record.first_error_at is not None and now - record.first_error_at >= grace


def in_trouble(record: BundleRecord) -> bool:
    return record.first_error_at is not None
