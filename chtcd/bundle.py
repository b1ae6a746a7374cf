"""A bundle: one folder, one submit file, and what it names.

This module reads a claimed bundle without running or parsing anything with
HTCondor: it picks the submit file and screens its raw text, because the
bindings' own parser executes ``include : COMMAND |`` lines while parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

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


def screen(text: str, name: str) -> None:
    """Refuse what would make the bindings run a program or read outside the bundle while parsing."""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _INCLUDE.match(line)
        if not match:
            continue
        rest = match.group("rest").strip()
        if rest.lower().startswith("command") or rest.endswith("|"):
            raise Rejected(
                f"{name} line {number} runs a program on this computer while the file is read "
                f"({line.strip()!r}); chtcd never does that: write the commands into the submit file"
            )
        target = rest.split(":", 1)[-1].strip()
        if target.startswith("/") or target.startswith("~") or ".." in Path(target).parts or "$" in target:
            raise Rejected(
                f"{name} line {number} includes {target!r}, which may be outside the bundle; "
                "copy that file into the bundle and include it by a relative name"
            )


def read(folder: Path) -> Bundle:
    submit_file = choose_submit_file(folder)
    if submit_file.stat().st_size > MAX_SUBMIT_BYTES:
        raise Rejected(f"{submit_file.name} is larger than 1 MiB; that is not a submit file chtcd will read")
    try:
        text = submit_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{submit_file.name} is not UTF-8 text") from None
    screen(text, submit_file.name)
    return Bundle(folder=folder, submit_file=submit_file, text=text)
