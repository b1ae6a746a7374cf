"""A bundle: one folder, one submit file, and what it names.

This module reads a claimed bundle without running or parsing anything with
HTCondor: it picks the submit file and screens its raw text, because the
bindings' own parser executes ``include : COMMAND |`` lines while parsing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

SUBMIT_SUFFIXES = (".sub", ".submit")
MAX_SUBMIT_BYTES = 1 << 20


class Rejected(Exception):
    """The bundle cannot be sent; the message tells the user why and what to do."""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    submit_file: Path
    text: str


def submit_files(folder: Path) -> List[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in SUBMIT_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def choose_submit_file(folder: Path) -> Path:
    """The only submit file, or the one named after the folder (``myrun/myrun.sub``)."""
    found = submit_files(folder)
    if len(found) == 1:
        return found[0]
    if not found:
        raise Rejected(
            f"no submit file in {folder.name}/: add one named {folder.name}.sub "
            f"(chtcd looks for files ending in {' or '.join(SUBMIT_SUFFIXES)} at the top of the folder)"
        )
    named = [p for p in found if p.stem == folder.name]
    if len(named) == 1:
        return named[0]
    names = ", ".join(p.name for p in found)
    raise Rejected(
        f"{folder.name}/ holds several submit files ({names}); chtcd submits the one named after the "
        f"folder: rename the one you want to {folder.name}.sub, or rename the folder after it"
    )


_INCLUDE = re.compile(r"^\s*include\b(?P<rest>.*)$", re.IGNORECASE)
_ENV = re.compile(r"\$ENV\s*\(", re.IGNORECASE)
MAX_INCLUDE_DEPTH = 5


def logical_lines(text: str) -> List[Tuple[int, str]]:
    """Lines as HTCondor reads them: a trailing backslash joins the next line on."""
    lines: List[Tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        lines.append((start, pending + line))
        pending = ""
    if pending:
        lines.append((start, pending))
    return lines


def screen(text: str, name: str, folder: Optional[Path] = None, depth: int = 0) -> None:
    """Refuse what would make the bindings run a program or read outside the bundle while parsing.

    Included files are screened the same way, and must be inside ``folder``.
    """
    for number, line in logical_lines(text):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("|"):
            raise Rejected(
                f"{name} line {number} ends with |, which makes HTCondor run it as a program on this computer "
                f"while the file is read ({stripped!r}); chtcd never does that: write the commands out instead"
            )
        if _ENV.search(line):
            raise Rejected(
                f"{name} line {number} uses $ENV(...), which reads this computer's environment into the job; "
                "write the value into the submit file instead"
            )
        match = _INCLUDE.match(line)
        if not match:
            continue
        rest = match.group("rest").strip()
        if rest.lower().startswith("command"):
            raise Rejected(
                f"{name} line {number} runs a program on this computer while the file is read "
                f"({stripped!r}); chtcd never does that: write the commands into the submit file"
            )
        target = rest.split(":", 1)[-1].strip()
        outside = f"{name} line {number} includes {target!r}, which is outside the bundle; " \
            "copy that file into the bundle and include it by a relative name"
        if target.startswith(("/", "~")) or ".." in Path(target).parts or "$" in target:
            raise Rejected(outside)
        if folder is None:
            continue
        path = folder / target
        real = os.path.realpath(path)
        root = os.path.realpath(folder)
        if not real.startswith(root + os.sep):
            raise Rejected(outside)
        if depth >= MAX_INCLUDE_DEPTH:
            raise Rejected(f"{name} line {number}: includes nest more than {MAX_INCLUDE_DEPTH} deep")
        if path.is_file():
            screen(path.read_text(encoding="utf-8", errors="replace"), target, folder, depth + 1)


def syntax_error(text: str, name: str) -> Optional[str]:
    """The first line HTCondor's parser would choke on, said plainly; None when all look fine."""
    statement = re.compile(r"^\s*([+A-Za-z_][\w.+-]*\s*[=:]|queue\b|include\b|if\b|elif\b|else\b|endif\b|error\b|warning\b)", re.IGNORECASE)
    for number, line in logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not statement.match(stripped):
            return f"{name} line {number} is not a submit command ({stripped[:60]!r}); every line must read 'command = value'"
    return None


def read(folder: Path) -> Bundle:
    submit_file = choose_submit_file(folder)
    if submit_file.stat().st_size > MAX_SUBMIT_BYTES:
        raise Rejected(f"{submit_file.name} is larger than 1 MiB; that is not a submit file chtcd will read")
    try:
        text = submit_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{submit_file.name} is not UTF-8 text") from None
    screen(text, submit_file.name, folder)
    return Bundle(folder=folder, submit_file=submit_file, text=text)
