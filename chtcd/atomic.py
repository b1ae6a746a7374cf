"""Durable file operations, the Maildir way: write aside, fsync, one rename commits."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Tuple


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never half."""
    tmp, _ = write_aside(path, [data], mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    fsync_dir(path.parent)


def write_aside(path: Path, parts: Iterable[bytes], mode: int = 0o600) -> Tuple[Path, int]:
    """``parts`` written and fsynced to a temporary file beside ``path``, for the caller to rename in; its size."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                size += f.write(part)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        discard(tmp)
        raise
    return tmp, size


def discard(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), mode)


def free_name(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name-2``, ``name-3``... when that is taken."""
    candidate = directory / name
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = directory / f"{name}-{n}"
        n += 1
    return candidate


def move_dir(src: Path, dst: Path, sync: bool = True) -> None:
    """Move a folder with one rename; across filesystems, copy aside and rename in.

    The destination must not exist. Either way the folder appears at ``dst``
    whole or not at all. With ``sync=False`` a rename is left for the caller
    to make durable (`fsync_dir` of both parents): one journal commit can then
    cover many moves instead of two each.
    """
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = dst.with_name(f".{dst.name}.chtcd-partial")
        if partial.exists():
            shutil.rmtree(partial)
        shutil.copytree(src, partial, symlinks=True)
        os.sync()
        os.rename(partial, dst)
        fsync_dir(dst.parent)
        shutil.rmtree(src)
        return
    if sync:
        fsync_dir(dst.parent)
        if src.parent != dst.parent:
            fsync_dir(src.parent)
