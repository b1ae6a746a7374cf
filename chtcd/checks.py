"""The bundle rules: what a bundle may send from this computer and where results may land.

Decided on HTCondor's fully expanded description, for every queued item, not
on the text: macros, includes and item data can all turn a harmless-looking
line into a path outside the bundle. Every local file a job uploads, and every
file a retrieve writes, must resolve (symlinks followed) inside the bundle.
URLs pass untouched: they are fetched on the execute machine, not from here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from .bundle import Rejected
from .condor import Description

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

UPLOAD_LISTS = ("transfer_input_files",)
UPLOAD_FILES = (
    "input",
    "container_image",
    "x509userproxy",
    "aws_access_key_id_file",
    "aws_secret_access_key_file",
    "s3_access_key_id_file",
    "s3_secret_access_key_file",
    "gce_auth_file",
    "azure_auth_file",
    "ec2_access_key_id",
    "ec2_secret_access_key",
    "scitokens_file",
)
DOWNLOAD_FILES = ("output", "error", "log", "output_destination", "checkpoint_destination")

FILE_COMMANDS = (
    "executable",
    "transfer_executable",
    "transfer_input",
    "transfer_container",
    "initialdir",
    "transfer_output_files",
    "transfer_output_remaps",
    "hold",
    *UPLOAD_LISTS,
    *UPLOAD_FILES,
    *DOWNLOAD_FILES,
)
"""The commands whose expanded values decide what moves between this computer and the pool."""

RESERVED_ATTRIBUTES = {
    "cmd", "in", "out", "err", "iwd", "userlog", "transferin", "transferinput", "transferoutput",
    "transferoutputremaps", "transferexecutable", "x509userproxy", "containerimage", "outputdestination",
    "checkpointdestination", "jobstatus", "leavejobinqueue", "holdreasoncode", "chtcdbundleid", "chtcdclient",
}
"""Job attributes that carry file names or the job's fate: set them with the submit commands instead."""

UNSAFE_NAME = re.compile(r"[\x00-\x1f,;\"'$#=\\]")

FALSE = {"false", "no", "0", "f", "n"}


def _line_of(text: str, command: str) -> str:
    pattern = re.compile(rf"^\s*(\+|my\.)?{re.escape(command)}\s*[=:]", re.IGNORECASE)
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return f" (line {number})"
    return ""


def _split_list(value: str) -> List[str]:
    return [p.strip() for p in re.split(r"[,\s]+", value) if p.strip()]


def _inside(path: Path, root: Path) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


@dataclass
class _Bundle:
    folder: Path
    root: Path
    text: str
    name: str


def _escape_reason(command: str, value: str, where: str, fix: str) -> str:
    return f"{command}{where} names {value}, which is outside the bundle; {fix}"


def check_names(folder: Path) -> None:
    """A folder name HTCondor can carry in its paths, and no symbolic link pointing out of the bundle."""
    root = Path(os.path.realpath(folder))
    if UNSAFE_NAME.search(folder.name) or folder.name.startswith("-"):
        raise Rejected(f"the folder name {folder.name!r} has characters HTCondor cannot carry; rename it with letters, digits, . _ -")
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder)
            if path.is_symlink() and not _inside(path, root):
                raise Rejected(
                    f"{rel} is a symbolic link to {os.readlink(path)}, outside the bundle; "
                    "copy the real file or folder into the bundle instead"
                )


def check(description: Description, folder: Path, text: str, submit_name: str, max_upload_bytes: int) -> int:
    """Raise Rejected naming the line and the rule; return the bytes the bundle would upload."""
    bundle = _Bundle(folder=folder, root=Path(os.path.realpath(folder)), text=text, name=submit_name)
    for key in description.commands:
        if key.startswith("my.") and key[3:] in RESERVED_ATTRIBUTES or key.startswith("my.submit_"):
            attr = key[3:]
            raise Rejected(
                f"{submit_name}{_line_of(text, attr)} sets the job attribute {attr} directly; "
                "chtcd refuses that because it controls which files move: use the submit command instead"
            )
    _check_queue(description.queue_args, bundle)
    uploads: Dict[str, int] = {}
    for job in description.jobs:
        _check_job(job, bundle, uploads)
    total = sum(uploads.values())
    if total > max_upload_bytes:
        raise Rejected(
            f"the bundle would upload {total / 1e6:.0f} MB through the access point, more than the "
            f"{max_upload_bytes / 1e6:.0f} MB allowed ([limits] max_upload_mb); CHTC asks for large files to go "
            "through /staging: put them there and name them with osdf:// or file:///staging/... URLs"
        )
    return total


def _check_queue(queue_args: str, b: _Bundle) -> None:
    from_file = re.search(r"\bfrom\s+(?!\()(?P<file>\S+)\s*$", queue_args, re.IGNORECASE)
    if from_file:
        item_file = from_file.group("file")
        if not _inside(b.folder / item_file, b.root):
            raise Rejected(f"the queue statement reads items from {item_file}, which is outside the bundle; copy it in")
    matching = re.search(r"\bmatching\s+(?:files\s+|dirs\s+)?(?P<globs>.+)$", queue_args, re.IGNORECASE)
    if matching:
        for glob in _split_list(matching.group("globs")):
            if glob.startswith(("/", "~")) or ".." in Path(glob).parts:
                raise Rejected(f"the queue statement matches {glob}, which reaches outside the bundle")


def _check_job(job: Dict[str, str], b: _Bundle, uploads: Dict[str, int]) -> None:
    if job.get("hold", "").strip().lower() in ("true", "yes", "1", "t", "y"):
        raise Rejected(
            f"{b.name}{_line_of(b.text, 'hold')} sets hold = true, which HTCondor refuses for remote "
            "submission; remove it (chtcd holds nothing back: drop the bundle when you want it to run)"
        )
    iwd = _initialdir(job, b)

    executable = job.get("executable", "").strip()
    if executable and job.get("transfer_executable", "").strip().lower() not in FALSE:
        _upload("executable", executable, b.folder, b, uploads)
    elif executable and ".." in Path(executable).parts:
        raise Rejected(f"executable{_line_of(b.text, 'executable')} = {executable} climbs out of the job's folder")

    for command in UPLOAD_LISTS:
        for item in _split_list(job.get(command, "")):
            _upload(command, item, iwd, b, uploads)
    for command in UPLOAD_FILES:
        value = job.get(command, "").strip()
        if not value:
            continue
        if command == "input" and job.get("transfer_input", "").strip().lower() in FALSE:
            continue
        if command == "container_image" and (
            job.get("transfer_container", "").strip().lower() in FALSE or "://" in value
        ):
            continue
        _upload(command, value, iwd, b, uploads)

    for command in DOWNLOAD_FILES:
        value = job.get(command, "").strip()
        if value and value != "/dev/null" and not URL.match(value):
            _land(command, value, iwd, b)
    for name in _split_list(job.get("transfer_output_files", "")):
        if not URL.match(name) and (name.startswith("/") or ".." in Path(name).parts):
            raise Rejected(
                f"transfer_output_files{_line_of(b.text, 'transfer_output_files')} names {name}; "
                "name outputs relative to the job's folder, without .."
            )
    for source, target in _remaps(job.get("transfer_output_remaps", "")):
        if not URL.match(target):
            _land("transfer_output_remaps", target, iwd, b)


def _initialdir(job: Dict[str, str], b: _Bundle) -> Path:
    own = job.get("initialdir", "").strip()
    if not own:
        return b.folder
    where = _line_of(b.text, "initialdir")
    if own.startswith("/") or own.startswith("~"):
        raise Rejected(_escape_reason("initialdir", own, where, "use a folder inside the bundle, by a relative name"))
    iwd = b.folder / own
    if not _inside(iwd, b.root):
        raise Rejected(_escape_reason("initialdir", own, where, "use a folder inside the bundle, by a relative name"))
    if not iwd.is_dir():
        raise Rejected(f"initialdir{where} = {own} does not exist in the bundle; create that folder")
    return iwd


def _upload(command: str, value: str, base: Path, b: _Bundle, uploads: Dict[str, int]) -> None:
    if URL.match(value):
        return
    where = _line_of(b.text, command)
    path = Path(value).expanduser() if value.startswith("~") else base / value
    if value.startswith(("/", "~")) or not _inside(path, b.root):
        raise Rejected(_escape_reason(command, value, where, "copy the file into the bundle or use an osdf:// URL"))
    if not path.exists():
        raise Rejected(f"{command}{where} names {value}, which does not exist in the bundle; add it or fix the name")
    for file in _files(path):
        key = os.path.realpath(file)
        if key not in uploads:
            uploads[key] = file.stat().st_size


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for dirpath, _dirs, filenames in os.walk(path):
        for name in filenames:
            yield Path(dirpath) / name


def _land(command: str, value: str, base: Path, b: _Bundle) -> None:
    where = _line_of(b.text, command)
    if value.startswith(("/", "~")) or not _inside(base / value, b.root):
        raise Rejected(
            _escape_reason(command, value, where, "results may only be written inside the bundle: use a relative name")
        )


def _remaps(value: str) -> Iterable[Tuple[str, str]]:
    for pair in value.strip().strip('"').split(";"):
        if "=" in pair:
            source, target = pair.split("=", 1)
            yield source.strip(), target.strip()
