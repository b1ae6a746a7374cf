"""The daemon: one lock, one scheduler with a tick and an intake job, a watchdog, two-stage stop.

All pipeline work runs on the scheduler's single worker thread, so steps never
overlap; watchdog events only schedule an earlier intake.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Optional

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import DirCreatedEvent, DirMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import heartbeat
from .log import get as get_logger
from .pipeline import Pipeline

log = get_logger("chtcd.daemon")


class AlreadyRunning(Exception):
    pass


def acquire_lock(path: Path) -> IO[str]:
    """An flock on a file in state_dir: released by the kernel when the holder dies, so never stale."""
    handle = open(path, "a+")
    os.chmod(path, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyRunning(
            f"another chtcd is already running on {path.parent} (pid {holder}); stop it first, "
            "or give this one its own [paths] state_dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


class _OutboxEvents(FileSystemEventHandler):
    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon

    def on_any_event(self, event: FileSystemEvent) -> None:
        outbox = self.daemon.pipeline.layout.outbox
        if isinstance(event, DirMovedEvent):
            dest = Path(os.fsdecode(event.dest_path))
            if dest.parent == outbox and not dest.name.startswith("."):
                self.daemon.pipeline.outbox.note_moved_in(dest.name)
                self.daemon.schedule_intake(0.0)
                return
        if isinstance(event, DirCreatedEvent) and Path(os.fsdecode(event.src_path)).parent == outbox:
            # A folder moved in from outside the outbox arrives as "created": look at once. `Outbox.ready`
            # takes it now if its contents are older than the settle window, else waits the window.
            self.daemon.schedule_intake(0.0)
            return
        if event.event_type in ("opened", "closed", "closed_no_write"):
            return
        self.daemon.schedule_intake(self.daemon.pipeline.config.daemon.settle_seconds)


class _RequestEvents(FileSystemEventHandler):
    """A file the CLI put in (or took out of) state_dir/requests: take it up now, not at the next tick."""

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed", "closed_no_write"):
            return
        self.daemon.schedule_intake(0.0)


class Daemon:
    def __init__(self, pipeline: Pipeline, after_step: Optional[Callable[[], Any]] = None):
        self.pipeline = pipeline
        self.after_step = after_step
        self.started = time.time()
        self.stop = threading.Event()
        cfg = pipeline.config.daemon
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(cfg.tick_seconds / 2))},
        )
        self._intake_due: Optional[float] = None
        self._intake_lock = threading.Lock()

    def schedule_intake(self, delay: float) -> None:
        when = time.time() + delay
        with self._intake_lock:
            if self._intake_due is not None and self._intake_due <= when:
                return
            self._intake_due = when
        self.scheduler.add_job(
            self._intake,
            "date",
            run_date=dt.datetime.fromtimestamp(when, dt.timezone.utc),
            id="intake",
            replace_existing=True,
            misfire_grace_time=None,
            # One may be due while another runs (a folder renamed in mid-intake): it must wait its turn on the
            # one worker, not be skipped. Skipped, it would also leave _intake_due set in the past, and every
            # later request would be dropped as already due: folders would wait for the next tick.
            max_instances=2,
        )

    def _intake(self) -> None:
        with self._intake_lock:
            self._intake_due = None
        self._guard(self.pipeline.intake)

    def _tick(self) -> None:
        now = time.time()
        self._beat(now, now + self.pipeline.config.daemon.tick_seconds)
        self._guard(self.pipeline.tick)

    def _beat(self, last_tick: Optional[float], next_tick: Optional[float]) -> None:
        beat = heartbeat.Heartbeat(
            os.getpid(), self.started, self.pipeline.config.daemon.tick_seconds, last_tick, next_tick
        )
        try:
            heartbeat.write(self.pipeline.layout.heartbeat_file, beat)
        except OSError as exc:
            log.warning("could not write the heartbeat file", error=str(exc))

    def _guard(self, step: Any) -> None:
        """A bug in one step is logged with its traceback; the daemon lives on to the next."""
        if self.stop.is_set():
            return
        try:
            next_check = step(time.time())
        except Exception:
            log.exception("step failed")
            return
        if self.after_step is not None:
            try:
                self.after_step()
            except Exception:
                log.exception("after-step hook failed")
        if next_check is not None and not self.stop.is_set():
            self.schedule_intake(max(0.0, next_check - time.time()) + 0.05)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            os._exit(1)
        log.info("stopping: finishing the step in hand", signal=signal.Signals(signum).name)
        self.pipeline.stopping.set()
        self.stop.set()

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        cfg = self.pipeline.config
        observer = Observer()
        # Not recursive: an event per folder arriving is all the intake needs (a folder still being copied is
        # looked at again when its settle window ends), and no watch is kept on each folder claimed out.
        observer.schedule(_OutboxEvents(self), str(self.pipeline.layout.outbox), recursive=False)
        observer.schedule(_RequestEvents(self), str(self.pipeline.layout.requests), recursive=False)
        self._beat(None, time.time())
        observer.start()
        self.scheduler.add_job(
            self._tick, "interval", seconds=cfg.daemon.tick_seconds, id="tick", next_run_time=dt.datetime.now(dt.timezone.utc)
        )
        self.scheduler.start()
        log.info(
            "chtcd running",
            access_point=self.pipeline.ap.name,
            outbox=str(self.pipeline.layout.outbox),
            inbox=str(self.pipeline.layout.inbox),
            tick_seconds=cfg.daemon.tick_seconds,
        )
        while not self.stop.wait(1.0):
            pass
        observer.stop()
        self.scheduler.shutdown(wait=True)
        observer.join(timeout=5)
        self.pipeline.store.save(self.pipeline.state)
        heartbeat.remove(self.pipeline.layout.heartbeat_file)
        log.info("stopped")
        return 0
