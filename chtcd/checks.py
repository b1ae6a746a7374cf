"""The bundle rules: what a bundle may send from this computer and where results may land.

Decided on HTCondor's fully expanded description, for every queued job, not
on the text: macros, includes and item data can all turn a harmless-looking
line into a path outside the bundle. Every local file a job uploads, and every
file a retrieve writes, must resolve (symlinks followed) inside the bundle.
URLs pass untouched: they are fetched on the execute machine, not from here.

HTCondor reads most file commands under more than one name (``stdin`` for
``input``, ``Cmd`` for ``executable``, ``iwd`` for ``initialdir``: see
submit_utils.cpp, ``submit_param(key, alt)``), so every rule looks at all of
them. What cannot be checked with certainty (a name that changes with the
cluster id or at random, a universe that brings its own file commands, a
command that sends this computer's credentials) is refused. The values come
from the clean room (`condor.describe`) and are exactly what is submitted.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

from .bundle import Rejected
from .condor import INITIALDIR_NAMES, Description

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.")
"""HTCondor's IsUrl(): anything else is a path on this computer."""

NAMES: Dict[str, Tuple[str, ...]] = {
    "executable": ("executable", "cmd"),
    "transfer_executable": ("transfer_executable", "transferexecutable"),
    "input": ("input", "stdin"),
    "transfer_input": ("transfer_input", "transferin"),
    "output": ("output", "stdout"),
    "error": ("error", "stderr"),
    "initialdir": INITIALDIR_NAMES,
    "log": ("log", "userlog"),
    "dagman_log": ("dagman_log", "dagmannodeslog"),
    "starter_log": ("starter_log", "jobstarterlog"),
    "output_destination": ("output_destination", "outputdestination"),
    "output_directory": ("output_directory", "outputdirectory"),
    "checkpoint_destination": ("checkpoint_destination", "checkpointdestination"),
    "manifest_dir": ("manifest_dir", "manifestdir"),
    "transfer_input_files": ("transfer_input_files", "transferinputfiles"),
    "transfer_common_input": ("transfer_common_input", "commoninputfiles"),
    "public_input_files": ("public_input_files", "publicinputfiles"),
    "jar_files": ("jar_files", "jarfiles"),
    "transfer_output_files": ("transfer_output_files", "transferoutputfiles"),
    "transfer_output_remaps": ("transfer_output_remaps", "transferoutputremaps"),
    "transfer_plugins": ("transfer_plugins", "transferplugins"),
    "container_image": ("container_image", "containerimage"),
    "transfer_container": ("transfer_container", "transfercontainer"),
    "x509userproxy": ("x509userproxy",),
    "scitokens_file": ("scitokens_file", "scitokensfile"),
    "access_key_files": (
        "aws_access_key_id_file", "aws_secret_access_key_file", "s3_access_key_id_file", "s3_secret_access_key_file",
        "gs_access_key_id_file", "gs_secret_access_key_file", "ec2accesskeyid", "ec2secretaccesskey",
        "ec2_access_key_id", "ec2_secret_access_key", "gce_auth_file", "azure_auth_file",
    ),
    "universe": ("universe", "jobuniverse"),
    "hold": ("hold",),
    "getenv": ("getenv", "get_env"),
    "docker_send_credentials": ("docker_send_credentials", "dockersendcredentials"),
    "send_credential": ("send_credential",),
    "use_x509userproxy": ("use_x509userproxy",),
    "use_scitokens": ("use_scitokens", "use_scitoken"),
    "tool_daemon": (
        "tool_daemon_cmd", "tooldaemoncmd", "tool_daemon_input", "tooldaemoninput",
        "tool_daemon_output", "tooldaemonoutput", "tool_daemon_error", "tooldaemonerror",
    ),
}
"""Each rule's command and every other submit name HTCondor reads it from."""

FILE_COMMANDS: Tuple[str, ...] = tuple(sorted({name for names in NAMES.values() for name in names}))
"""The names whose expanded values decide what moves between this computer and the pool."""

UPLOAD_LISTS = ("transfer_input_files", "transfer_common_input", "public_input_files", "jar_files")
UPLOAD_FILES = ("x509userproxy", "scitokens_file", "access_key_files")
LANDINGS = (
    "output", "error", "log", "dagman_log", "starter_log",
    "output_destination", "output_directory", "checkpoint_destination", "manifest_dir",
)
UNIVERSES = ("vanilla", "container", "docker")
SHARED_CONTAINER_PREFIXES = ("/cvmfs",)
"""HTCondor's default CONTAINER_SHARED_FS: images there are read on the execute machine, never uploaded."""

RESERVED_ATTRIBUTES = {
    "cmd", "in", "out", "err", "iwd", "userlog", "transferin", "transferout", "transfererr", "transferinput",
    "transferoutput", "transferoutputremaps", "transferinputremaps", "transferexecutable", "transfercontainer",
    "transferplugins", "publicinputfiles", "commoninputfiles", "jarfiles", "x509userproxy", "scitokensfile",
    "containerimage", "outputdestination", "outputdirectory", "checkpointdestination", "manifestdir",
    "dagmannodeslog", "jobstarterlog", "tooldaemoncmd", "tooldaemoninput", "tooldaemonoutput", "tooldaemonerror",
    "dockersendcredentials", "ec2accesskeyid", "ec2secretaccesskey", "jobuniverse", "jobstatus", "leavejobinqueue",
    "holdreasoncode", "chtcdbundleid", "chtcdclient",
}
"""Job attributes that carry file names or the job's fate: set them with the submit commands instead."""

UNSAFE_NAME = re.compile(r"[\x00-\x1f,;\"'$#=\\]")

FALSE = {"false", "no", "0", "f", "n"}

VARYING_MACROS = {"cluster", "clusterid", "jobid", "joblistid", "submit_time", "year", "month", "day", "taskid"}
"""Macros whose value at the real submission is not the one `condor.describe` used."""

_NAME_IN_VALUE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SELECTS = re.compile(r"\$(CHOICE|SUBSTR)\s*\(", re.IGNORECASE)
_UNPREDICTABLE = re.compile(r"\$(RANDOM_CHOICE|RANDOM_INTEGER|EVAL)\s*\(", re.IGNORECASE)


def _line_of(text: str, command: str) -> Tuple[Optional[int], str]:
    """The first line setting ``command`` (any case, with or without + or MY.), and the name as written there."""
    pattern = re.compile(rf"^\s*(?:\+|my\.)?({re.escape(command)})\s*[=:]", re.IGNORECASE)
    for number, line in enumerate(text.split("\n"), start=1):
        match = pattern.match(line)
        if match:
            return number, match.group(1)
    return None, command


def _split_list(value: str) -> List[str]:
    """A file list as HTCondor splits it: on commas only (names may hold spaces), quotes stripped."""
    return [p.strip() for p in value.strip().strip('"').split(",") if p.strip()]


def _inside(path: os.PathLike[str] | str, root: Path | str) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


def _false(value: str) -> bool:
    return value.strip().strip('"').lower() in FALSE


@dataclass
class _Bundle:
    folder: Path
    root: Path
    text: str
    name: str
    real_dirs: Dict[str, str] = field(default_factory=dict)
    checked: Set[Tuple[str, str, str]] = field(default_factory=set)
    sent: Dict[Tuple[str, str], Dict[str, int]] = field(default_factory=dict)  # (value, base) -> the files it sends, by size

    def real(self, path: str) -> str:
        """os.path.realpath, with each folder resolved once: 100,000 jobs mostly share a handful of folders."""
        head, tail = os.path.split(path)
        if tail in ("", ".", ".."):
            real = os.path.realpath(path)
        else:
            real_head = self.real_dirs.get(head)
            if real_head is None:
                real_head = self.real_dirs[head] = os.path.realpath(head)
            real = os.path.join(real_head, tail)
            if os.path.islink(real):
                real = os.path.realpath(real)
        return real

    def inside(self, real: str) -> bool:
        root = str(self.root)
        return real == root or real.startswith(root + os.sep)

    def first_time(self, kind: str, value: str, base: str) -> bool:
        """Each (value, folder) is decided once, however many jobs name it."""
        key = (kind, value, base)
        if key in self.checked:
            return False
        self.checked.add(key)
        return True

    def at(self, command: str) -> str:
        """``job.sub line 3: input`` (or without the line when it came from an include or item data)."""
        number, written = _line_of(self.text, command)
        return f"{self.name} line {number}: {written}" if number else f"{self.name}: {written}"


def check_names(folder: Path, root: Optional[str] = None) -> None:
    """A folder name HTCondor can carry in its paths; no symbolic link out of the bundle; only files and folders.

    ``root`` is the folder's real path, when the caller has resolved it already.
    """
    root = root or os.path.realpath(folder)
    if UNSAFE_NAME.search(folder.name) or folder.name.startswith("-"):
        raise Rejected(f"the folder name {folder.name!r} has characters HTCondor cannot carry; rename it with letters, digits, . _ -")

    def unreadable(error: OSError) -> Rejected:
        return Rejected(f"chtcd could not read {error.filename} in the bundle ({error.strerror}); fix its permissions")

    pending = [os.fspath(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as found:
                entries = list(found)
        except OSError as error:
            raise unreadable(error) from None
        for entry in entries:
            try:
                if entry.is_symlink():
                    if not _inside(entry.path, root):
                        raise Rejected(
                            f"{os.path.relpath(entry.path, folder)} is a symbolic link to {os.readlink(entry.path)}, "
                            "outside the bundle; copy the real file or folder into the bundle instead"
                        )
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                    continue
                if entry.is_file(follow_symlinks=False):
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as error:
                raise unreadable(error) from None
            kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device file"
            raise Rejected(
                f"{os.path.relpath(entry.path, folder)} is {kind}, which HTCondor cannot send and reading it could hang; "
                "remove it from the bundle"
            )


def check(
    description: Description, folder: Path, text: str, submit_name: str, max_upload_bytes: int, root: Optional[str] = None
) -> int:
    """Raise Rejected naming the line and the rule; return the bytes the bundle would upload.

    ``root`` is the folder's real path, when the caller has resolved it already.
    """
    root = root or os.path.realpath(folder)
    b = _Bundle(folder=folder, root=Path(root), text=text, name=submit_name, real_dirs={str(folder): root})
    for key in description.commands:
        attr = key[3:]
        if key.startswith("my.") and (attr in RESERVED_ATTRIBUTES or attr.startswith("submit_")):
            number, written = _line_of(text, attr)
            where = f"{submit_name} line {number}" if number else submit_name
            raise Rejected(
                f"{where} sets the job attribute {written} directly; chtcd refuses that because it controls "
                "which files move or what happens to the job: use the submit command instead"
            )
    _check_queue(description.queue_args, b)
    _check_predictable(description, b)
    uploads: Dict[str, int] = {}  # every file sent, once
    seen: Dict[Tuple[Tuple[str, str], ...], Dict[str, int]] = {}
    senders: Dict[str, int] = {}  # file -> how many jobs send it
    for job in description.jobs:
        values = tuple(sorted(job.items()))
        mine = seen.get(values)
        if mine is None:
            mine = {}
            seen[values] = mine
            _check_job(job, b, uploads, mine)
        for path in mine:
            senders[path] = senders.get(path, 0) + 1
    total = sum(uploads[path] * jobs for path, jobs in senders.items())
    if total > max_upload_bytes:
        raise Rejected(_too_much(total, max_upload_bytes, uploads, senders, len(description.jobs), b))
    return total


def _too_much(total: int, limit: int, sizes: Dict[str, int], senders: Dict[str, int], jobs: int, b: "_Bundle") -> str:
    """The refusal of a bundle over the upload limit: what travels, per job, and where big shared files go instead."""
    text = f"the bundle would upload {total / 1e6:.1f} MB to the access point, more than the {limit / 1e6:.0f} MB allowed ([limits] max_upload_mb)"
    if senders:
        path, count = max(senders.items(), key=lambda item: sizes[item[0]] * item[1])
        rel = os.path.relpath(path, b.root)
        size = sizes[path]
        if count > 1:
            text += (
                f": spooling sends each job's inputs once per job, so {rel} ({size / 1e6:.1f} MB) travels {count} times "
                f"({size * count / 1e6:.1f} MB)"
            )
        else:
            text += f"; the largest input is {rel} ({size / 1e6:.1f} MB)"
        name = os.path.basename(rel)
        text += (
            f". CHTC asks for large files to go through /staging: copy it to /staging/NETID/{name} on the access point "
            f"and name it in the submit file as transfer_input_files = osdf:///chtc/staging/NETID/{name} "
            "(a URL is fetched by the execute machine, never sent from this computer)"
        )
    else:
        text += ". CHTC asks for large files to go through /staging and osdf:// URLs"
    return text


def _check_queue(queue_args: str, b: _Bundle) -> None:
    """The item file and patterns again, as HTCondor kept them (the screen saw the raw text)."""
    from_file = re.search(r"\bfrom\b\s*(?:\[[^\]]*\]\s*)?(?P<file>[^(\s].*?)\s*$", queue_args, re.IGNORECASE)
    if from_file:
        item_file = from_file.group("file")
        if "|" in item_file or item_file.startswith("~") or not _inside(b.folder / item_file, b.root):
            raise Rejected(f"the queue statement reads items from {item_file}, which is outside the bundle; copy it in")
    matching = re.search(r"\bmatching\s+(?:files\s+|dirs\s+)?(?P<globs>.+)$", queue_args, re.IGNORECASE)
    if matching:
        for glob in re.split(r"[\s,]+", matching.group("globs").strip()):
            if glob.startswith(("/", "~")) or ".." in glob.split("/"):
                raise Rejected(f"the queue statement matches {glob}, which reaches outside the bundle; match files inside it")


def _check_predictable(description: Description, b: _Bundle) -> None:
    """A file name must come out the same at the real submission as in `condor.describe`.

    Random picks and $EVAL (which can call random() and time()) never do. $CHOICE
    picking by the cluster id, or $SUBSTR cutting anything the cluster id is in,
    does not either: it is 0 here and something else there. A plain $(Cluster)
    only ever inserts digits: fine.
    """
    raw: Dict[str, str] = {k.lower(): v for k, v in description.commands.items()}
    for row in description.items:
        for key, value in row.items():
            raw[key.lower()] = raw.get(key.lower(), "") + " " + value
    for names in NAMES.values():
        for name in names:
            if name not in raw:
                continue
            closure = _closure([name], raw)
            found = _UNPREDICTABLE.search(closure)
            for select in _SELECTS.finditer(closure):
                args = _arguments(closure, select.end())
                decisive = args[:1] if select.group(1).upper() == "CHOICE" else args
                words = {w.lower() for w in _NAME_IN_VALUE.findall(" ".join(decisive))}
                words |= {w.lower() for w in _NAME_IN_VALUE.findall(_closure(sorted(words), raw))}
                if words & VARYING_MACROS:
                    found = found or select
            if found:
                raise Rejected(
                    f"{b.at(name)} is built with ${found.group(1).upper()}(...), so the file it names can differ "
                    "between chtcd's check and the real submission (random, time or cluster id); name the file "
                    "directly, or with $(Process) and item data"
                )


def _arguments(text: str, start: int) -> List[str]:
    """The top-level, comma-separated arguments of a macro function whose ``(`` ends just before ``start``."""
    args: List[str] = []
    current: List[str] = []
    depth = 0
    for ch in text[start:]:
        if ch == ")" and depth == 0:
            break
        if ch == "," and depth == 0:
            args.append("".join(current))
            current = []
            continue
        depth += (ch == "(") - (ch == ")")
        current.append(ch)
    args.append("".join(current))
    return args


def _closure(names: List[str], raw: Dict[str, str]) -> str:
    """The raw text of some commands and of every macro they refer to, however indirectly."""
    parts, todo, done = [], list(names), set()
    while todo:
        current = todo.pop()
        if current in done or current not in raw:
            continue
        done.add(current)
        value = raw[current]
        parts.append(value)
        if "$" in value:
            todo.extend(w.lower() for w in _NAME_IN_VALUE.findall(value))
    return "\n".join(parts)


RULE_OF: Dict[str, str] = {name: rule for rule, names in NAMES.items() for name in names}

Given = Dict[str, List[Tuple[str, str]]]
"""A job's non-empty file commands by rule: rule -> [(name as given, expanded value)]."""


def _given(job: Dict[str, str]) -> Given:
    given: Given = {}
    for name, value in job.items():
        value = value.strip()
        if value and name in RULE_OF:
            given.setdefault(RULE_OF[name], []).append((name, value))
    return given


def _switched_off(given: Given, rule: str) -> bool:
    """Off only when every name it is given under says false: HTCondor picks one, chtcd cannot be sure which."""
    values = given.get(rule, [])
    return bool(values) and all(_false(value) for _name, value in values)


def _switched_on(given: Given, rule: str) -> List[Tuple[str, str]]:
    return [(name, value) for name, value in given.get(rule, []) if not _false(value)]


def _check_job(job: Dict[str, str], b: _Bundle, uploads: Dict[str, int], mine: Dict[str, int]) -> None:
    """Check one job's values; `mine` gets the files it sends, executable included.

    Spooling sends them once per job: on the local pool, `Schedd.spool` left the
    executable and each input in every job's own spool folder (no `ickpt`).
    """
    given = _given(job)
    _check_switches(given, b)
    iwd = _initialdir(given, b)

    for name, executable in given.get("executable", []):
        if not _switched_off(given, "transfer_executable"):
            _upload(name, executable, str(b.folder), b, uploads, mine)
        elif ".." in executable.split("/"):
            raise Rejected(f"{b.at(name)} = {executable} climbs out of the job's folder; name the program on the execute machine by its absolute path")

    for rule in UPLOAD_LISTS:
        for name, value in given.get(rule, []):
            for item in _split_list(value):
                _upload(name, item, iwd, b, uploads, mine)
    for name, value in given.get("transfer_plugins", []):
        for plugin in value.strip('"').split(";"):
            if "=" in plugin:
                _upload(name, plugin.split("=", 1)[1].strip(), iwd, b, uploads, mine)
    if not _switched_off(given, "transfer_input"):
        for name, value in given.get("input", []):
            if value != "/dev/null":
                _upload(name, value, iwd, b, uploads, mine)
    if not _switched_off(given, "transfer_container"):
        for name, value in given.get("container_image", []):
            if not value.startswith(SHARED_CONTAINER_PREFIXES):
                _upload(name, value, iwd, b, uploads, mine)
    for rule in UPLOAD_FILES:
        for name, value in given.get(rule, []):
            _upload(name, value, iwd, b, uploads, mine)

    for rule in LANDINGS:
        for name, value in given.get(rule, []):
            if value != "/dev/null":
                _land(name, value, iwd, b)
    for name, value in given.get("transfer_output_files", []):
        for output in _split_list(value):
            if not URL.match(output) and (output.startswith(("/", "~")) or ".." in output.split("/")):
                raise Rejected(
                    f"{b.at(name)} names {output}; name outputs relative to the job's folder, without .."
                )
    for name, value in given.get("transfer_output_remaps", []):
        for _source, target in remaps(value):
            _land(name, target, iwd, b)


def _check_switches(given: Given, b: _Bundle) -> None:
    for name, value in _switched_on(given, "hold"):
        raise Rejected(
            f"{b.at(name)} = {value} submits the jobs on hold, which HTCondor refuses for remote "
            "submission; remove it (chtcd holds nothing back: drop the bundle when you want it to run)"
        )
    for name, value in given.get("universe", []):
        if value.strip('"').lower() not in UNIVERSES:
            raise Rejected(
                f"{b.at(name)} = {value}: chtcd sends {', '.join(UNIVERSES)} jobs only; other universes bring "
                "their own file rules that chtcd does not check. Use universe = vanilla or container"
            )
    for name, _value in _switched_on(given, "getenv"):
        # the clean room does getenv itself, from its allowlisted environment, and hands over "false"
        raise Rejected(f"{b.at(name)} was left on after the clean room read it; this is a chtcd bug, please report it")
    for name, _value in _switched_on(given, "docker_send_credentials") + _switched_on(given, "send_credential"):
        raise Rejected(f"{b.at(name)} sends credentials from this computer with the job; remove it")
    if _switched_on(given, "use_x509userproxy") and not given.get("x509userproxy"):
        raise Rejected(
            f"{b.at('use_x509userproxy')} sends this computer's default proxy file, outside the bundle; "
            "remove it, or name a proxy file inside the bundle with x509userproxy"
        )
    if _switched_on(given, "use_scitokens") and not given.get("scitokens_file"):
        name = _switched_on(given, "use_scitokens")[0][0]
        raise Rejected(
            f"{b.at(name)} sends this computer's default token file, outside the bundle; "
            "remove it, or name a token file inside the bundle with scitokens_file"
        )
    for name, _value in given.get("tool_daemon", []):
        raise Rejected(f"{b.at(name)}: chtcd does not send tool daemons; remove the tool_daemon commands")


def _initialdir(given: Given, b: _Bundle) -> str:
    """The job's folder, as a string: the per-job checks below run 100,000 times and pathlib is slow."""
    dirs = given.get("initialdir", [])
    if not dirs:
        return str(b.folder)
    if len(dirs) > 1:
        names = " and ".join(name for name, _value in dirs)
        raise Rejected(f"{b.name} sets the job's folder twice ({names}); keep only initialdir")
    name, own = dirs[0]
    fix = "use a folder inside the bundle, by a relative name"
    iwd = os.path.join(b.folder, own)
    if not b.first_time("initialdir", own, ""):
        return iwd
    if own.startswith(("/", "~")) or not b.inside(b.real(iwd)):
        raise Rejected(f"{b.at(name)} names {own}, which is outside the bundle; {fix}")
    if not os.path.isdir(iwd):
        raise Rejected(f"{b.at(name)} = {own} does not exist in the bundle; create that folder")
    return iwd


def _upload(name: str, value: str, base: str, b: _Bundle, uploads: Dict[str, int], mine: Dict[str, int]) -> None:
    """Check a file a job sends; record it (or, for a folder, every file in it) in `uploads` and the job's `mine`."""
    if URL.match(value):
        return
    if not b.first_time("upload", value, base):
        mine.update(b.sent.get((value, base), {}))
        return
    found = b.sent[(value, base)] = {}
    _files(name, value, base, b, found)
    for path, size in found.items():
        uploads.setdefault(path, size)
    mine.update(found)


def _files(name: str, value: str, base: str, b: _Bundle, uploads: Dict[str, int]) -> None:
    literal = os.path.join(base, value)
    path = b.real(literal)
    if value.startswith("~") or not b.inside(path):
        raise Rejected(f"{b.at(name)} names {value}, which is outside the bundle; copy the file into the bundle or use an osdf:// URL")
    try:
        info = os.stat(literal)  # as the kernel walks it: a/.. does not exist when a is a file
    except OSError:
        raise Rejected(f"{b.at(name)} names {value}, which does not exist in the bundle; add it or fix the name") from None
    if not stat.S_ISDIR(info.st_mode):
        uploads.setdefault(path, info.st_size)
        return
    for dirpath, _dirs, filenames in os.walk(path):
        for file in filenames:
            real = os.path.realpath(os.path.join(dirpath, file))
            if real not in uploads:
                try:
                    uploads[real] = os.stat(real).st_size
                except OSError as error:
                    rel = os.path.relpath(os.path.join(dirpath, file), b.folder)
                    raise Rejected(
                        f"{b.at(name)} sends {value}, and {rel} in it cannot be read ({error.strerror}); "
                        "remove it or fix it (a symbolic link to nothing?)"
                    ) from None


def _land(name: str, value: str, base: str, b: _Bundle) -> None:
    if URL.match(value) or not b.first_time("land", value, base):
        return
    if value.startswith("~") or not b.inside(b.real(os.path.join(base, value))):
        raise Rejected(
            f"{b.at(name)} names {value}, which is outside the bundle; results may only be written inside it: "
            "use a relative name"
        )


def remaps(value: str) -> Iterable[Tuple[str, str]]:
    """``transfer_output_remaps`` pairs exactly as HTCondor splits them (filename_tools_cpp.cpp).

    ``name = target ; ...``, with ``\\=`` and ``\\;`` escaping the separators,
    tabs and newlines dropped, and a field without ``=`` skipped.
    """
    text = value.strip(" \t\n\v\f\r")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    text = text.replace("\t", "").replace("\n", "")
    pos: Optional[int] = 0
    while pos is not None:
        start = pos
        source, pos = _copy_upto(text, pos, "=")
        if pos is None:
            return
        if ";" in source:
            pos = start + source.index(";") + 1
            continue
        target, pos = _copy_upto(text, pos + 1, ";")
        yield source, target
        if pos is None:
            return
        pos += 1


def _copy_upto(text: str, pos: int, delim: str) -> Tuple[str, Optional[int]]:
    """HTCondor's copy_upto: up to an unescaped ``delim``; leading and trailing space trimmed."""
    out: List[str] = []
    leading = True
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] == delim:
            out.append(delim)
            pos += 2
            leading = False
            continue
        if ch == delim:
            return "".join(out).rstrip(" \t\n\v\f\r"), pos
        if leading and ch in " \t\n\v\f\r":
            pos += 1
            continue
        leading = False
        out.append(ch)
        pos += 1
    return "".join(out).rstrip(" \t\n\v\f\r"), None


def env_notes(description: Description, submit_name: str) -> List[str]:
    """A line for the report for each variable the bundle asked for that the clean room does not have."""
    if not description.env_refused:
        return []
    names = ", ".join(description.env_refused)
    return [
        f"{submit_name} asks for the environment variable(s) {names} ($ENV or getenv), which chtcd does not pass on: "
        "the job got them empty. Write the values into the submit file, or, if they may leave this computer, add "
        'the names to [limits] env_allowlist in chtcd\'s config (default: ["PATH", "HOME", "USER", "LOGNAME", '
        '"LANG", "LC_*", "TZ"])'
    ]
