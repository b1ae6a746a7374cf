"""A bundle: one folder, one submit file, and what it names.

This module reads a claimed bundle without running or parsing anything with
HTCondor: it picks the submit file and screens its raw text, because the
bindings' own parser runs programs while parsing (``include : COMMAND |``,
``include command : ...``, ``queue x from COMMAND |``) and reads any file an
``include`` or ``queue ... from`` names. Lines are split and joined exactly as
HTCondor's reader does (config.cpp getline_implementation), and every other
plausible reading is screened too, so a line cannot hide from the screen by
being read differently here than there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

SUBMIT_SUFFIXES = (".sub", ".submit")
MAX_SUBMIT_BYTES = 1 << 20
MAX_INCLUDE_DEPTH = 5

C_SPACE = " \t\n\v\f\r"
"""What HTCondor's reader trims (C isspace); Python's str.strip() trims more, and splitlines() splits on more."""


class Rejected(Exception):
    """The bundle cannot be sent; the message tells the user why and what to do."""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    submit_file: Path
    text: str
    description: Any = None  # condor.Description, once the clean room read it and `checks` passed it


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


def logical_lines(text: str) -> List[Tuple[int, str]]:
    """Lines as HTCondor joins them: a trailing backslash continues, except on a comment line;
    a continuation line that is commented out counts as its last character only."""
    lines: List[Tuple[int, str]] = []
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    pending: Optional[str] = None
    start = 0
    for number, raw in enumerate(physical, start=1):
        line = raw.strip(C_SPACE)
        if pending is None:
            start, pending, comment = number, "", line.startswith("#")
        else:
            comment = False
            if line.startswith("#"):
                line = line[-1:]
        if line.endswith("\\"):
            line = line[:-1]
            if not comment:
                pending += line
                continue
        lines.append((start, pending + line))
        pending = None
    if pending is not None:
        lines.append((start, pending))
    return lines


def _plain_lines(text: str) -> List[Tuple[int, str]]:
    """The older reading HTCondor also knows: comments continue, commented continuations count whole."""
    lines: List[Tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(C_SPACE)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        lines.append((start, pending + line))
        pending = ""
    if pending:
        lines.append((start, pending))
    return lines


def readings(text: str) -> Iterator[Tuple[int, str]]:
    """Every line under each way of reading the text: HTCondor's, the older one, and each physical line."""
    seen = set()
    physical = [(n, raw.strip(C_SPACE)) for n, raw in enumerate(text.split("\n"), start=1)]
    for number, line in [*logical_lines(text), *_plain_lines(text), *physical]:
        if (number, line) not in seen:
            seen.add((number, line))
            yield number, line


_NAME = re.compile(r"^[^\s=:]*")
_QUEUE_FROM = re.compile(r"\bfrom\b\s*(?:\[[^\]]*\]\s*)?(?P<source>.*)$", re.IGNORECASE)
_QUEUE_MATCHING = re.compile(r"\bmatching\b\s*(?:(?:files|dirs)\b\s*)?(?P<globs>.*)$", re.IGNORECASE)


def _program(name: str, number: int, line: str) -> Rejected:
    return Rejected(
        f"{name} line {number} runs a program on this computer while HTCondor reads the file "
        f"({line[:80]!r}); chtcd never does that: put the program's output into the bundle as a file instead"
    )


def _outside_name(target: str) -> bool:
    return target.startswith(("/", "~")) or ".." in target.split("/")


def _inside_file(folder: Path, target: str, what: str) -> Optional[Path]:
    """The bundle file HTCondor will read for ``target``, or None when there is none; never a file outside."""
    path = folder / target
    if not _inside(path, folder):
        raise Rejected(f"{what} {target!r}, which is outside the bundle; copy that file into the bundle")
    return path if path.is_file() else None


def _unreadable(what: str, target: str, exc: OSError) -> Rejected:
    return Rejected(f"{what} {target!r}, which chtcd could not read ({exc.strerror}); fix its permissions")


def _inside(path: Path, folder: Path) -> bool:
    root = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def _screen_include(line: str, number: int, name: str, folder: Optional[Path], depth: int) -> None:
    head, _colon, target = line.partition(":")
    words = head.split()[1:]
    target = target.strip(C_SPACE)
    if "|" in target or any(w in ("command", "output", "into") for w in words):
        raise _program(name, number, line)
    if any(w not in ("ifexist", "ifexists") for w in words):
        raise Rejected(f"{name} line {number}: 'include' followed by {' '.join(words)!r} is not something chtcd reads; write include : FILE")
    where = f"{name} line {number} includes"
    if "$" in target:
        raise Rejected(f"{where} {target!r}, a name built from macros that chtcd cannot check; name the file directly")
    if _outside_name(target):
        raise Rejected(f"{where} {target!r}, which is outside the bundle; copy that file into the bundle and include it by a relative name")
    if folder is None or not target:
        return
    if depth >= MAX_INCLUDE_DEPTH:
        raise Rejected(f"{where} {target!r}: includes nest more than {MAX_INCLUDE_DEPTH} deep; flatten them")
    path = _inside_file(folder, target, where)
    if path is None:
        return
    try:
        if path.stat().st_size > MAX_SUBMIT_BYTES:
            raise Rejected(f"{where} {target!r}, which is larger than 1 MiB; that is not a submit file chtcd will read")
        included = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise _unreadable(where, target, exc) from None
    screen(included, target, folder, depth + 1)


def _screen_queue(line: str, number: int, name: str, folder: Optional[Path]) -> None:
    if "|" in line:
        raise _program(name, number, line)
    where = f"{name} line {number}: the queue statement reads items from"
    found = _QUEUE_FROM.search(line)
    if found and not found.group("source").startswith("("):
        source = found.group("source").strip(C_SPACE)
        if "$" in source:
            raise Rejected(f"{where} {source!r}, a name built from macros that chtcd cannot check; name the file directly")
        if _outside_name(source):
            raise Rejected(f"{where} {source!r}, which is outside the bundle; copy that file into the bundle")
        if folder is not None and source:
            _inside_file(folder, source, where)
    matching = _QUEUE_MATCHING.search(line)
    if matching:
        for glob in re.split(r"[\s,]+", matching.group("globs").strip(C_SPACE)):
            if "$" in glob or _outside_name(glob):
                raise Rejected(
                    f"{name} line {number}: the queue statement matches {glob!r}, which reaches outside the bundle "
                    "or is built from macros; match files inside the bundle by a relative pattern"
                )


def screen(text: str, name: str, folder: Optional[Path] = None, depth: int = 0) -> None:
    """Refuse what would make the bindings run a program, or read outside the bundle, while parsing.

    Included files and ``queue ... from`` item files are screened too, and must be inside ``folder``.
    """
    if "\x00" in text:
        raise Rejected(f"{name} contains a NUL byte; it is not a text submit file")
    for number, line in readings(text):
        if not line or line.startswith("#"):
            continue
        named = _NAME.match(line)
        assert named is not None  # the pattern matches any line, if only the empty name
        word = named.group(0).lower()
        op = re.search(r"[=:]", line[len(word):])
        if word in ("include", "@include") and op and op.group(0) == ":":
            _screen_include(line, number, name, folder, depth)
        elif word == "queue":
            _screen_queue(line, number, name, folder)
        elif line.endswith("|"):
            raise Rejected(
                f"{name} line {number} ends with |, which HTCondor reads as a program to run on this computer "
                f"({line[:80]!r}); chtcd never does that: write the value out instead"
            )


def syntax_error(text: str, name: str) -> Optional[str]:
    """The first line HTCondor's parser would choke on, said plainly; None when all look fine."""
    statement = re.compile(r"^\s*([+@A-Za-z_][\w.+-]*\s*[=:]|queue\b|include\b|if\b|elif\b|else\b|endif\b|error\b|warning\b)", re.IGNORECASE)
    for number, line in logical_lines(text):
        if not line or line.startswith("#"):
            continue
        if not statement.match(line):
            return f"{name} line {number} is not a submit command ({line[:60]!r}); every line must read 'command = value'"
    return None


def read(folder: Path) -> Bundle:
    submit_file = choose_submit_file(folder)
    if submit_file.is_symlink() and not _inside(submit_file, folder):  # a plain file of the folder is inside it
        raise Rejected(
            f"{submit_file.name} is a symbolic link to {os.path.realpath(submit_file)}, outside the bundle; "
            "copy the real submit file into the bundle"
        )
    try:
        if submit_file.stat().st_size > MAX_SUBMIT_BYTES:
            raise Rejected(f"{submit_file.name} is larger than 1 MiB; that is not a submit file chtcd will read")
        data = submit_file.read_bytes()
    except OSError as exc:
        raise Rejected(f"chtcd could not read {submit_file.name} ({exc.strerror}); fix its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"{submit_file.name} is not UTF-8 text; save it as plain text") from None
    screen(text, submit_file.name, folder)
    return Bundle(folder=folder, submit_file=submit_file, text=text)
