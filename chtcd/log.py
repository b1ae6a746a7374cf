"""Logging: JSON lines to a private, rotated file and readable lines on stderr; never a token."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path
from typing import Any, List, MutableMapping, Optional

import structlog

from . import logview

_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
REDACTED = "[token redacted]"


def redact(text: str) -> str:
    """IDTOKENS are JWTs: anything shaped like one is cut out before a line is written."""
    return _TOKEN.sub(REDACTED, text)


def _redact_event(_logger: Any, _name: str, event: dict) -> dict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _readable(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
    return logview.line_of(event)


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Redacts the finished line too: a traceback's text never passes through the event processors."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _private_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each new log file after a rotation is created 0600 too, whatever the umask."""

    def _open(self) -> Any:
        def private(path: str, flags: int) -> int:
            return os.open(path, flags, 0o600)

        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=private)

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """By the size written so far: the stock check formats every line twice (once to measure it) and stats the file."""
        if self.stream is None:
            self.stream = self._open()
        return 0 < self.maxBytes <= self.stream.tell()


def setup(log_file: Optional[Path], level: int = logging.INFO) -> None:
    """Console at ``level``, in the lines `chtcd logs` shows; the file also keeps debug lines (every tick, every retry), bounded by rotation."""
    shared: List[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(
        _RedactingFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _readable,
            ],
            foreign_pre_chain=shared,
        )
    )
    root.addHandler(console)

    if log_file is not None:
        _private_file(log_file)
        to_file = PrivateRotatingFileHandler(log_file, maxBytes=5 << 20, backupCount=3)
        to_file.setFormatter(
            _RedactingFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=shared,
            )
        )
        root.addHandler(to_file)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    for noisy in ("apscheduler", "watchdog", "tzlocal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get(name: str = "chtcd") -> Any:
    return structlog.get_logger(name)
