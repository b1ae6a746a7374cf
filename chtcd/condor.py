"""The one door to HTCondor: the only module that imports the bindings.

It hands back plain dataclasses, never ClassAds, and turns the bindings'
exceptions into three errors a caller can act on: the pool is unreachable
(retry later), the token was refused (the user must fetch a new one), or the
schedd refused what a bundle asked (the bundle goes back with the reason).
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

if TYPE_CHECKING:
    from . import idle

C_SPACE = " \t\n\v\f\r"

BUNDLE_ATTR = "ChtcdBundleId"
CLIENT_ATTR = "ChtcdClient"

PROJECTION = [
    "ClusterId",
    "ProcId",
    BUNDLE_ATTR,
    "JobStatus",
    "EnteredCurrentStatus",
    "HoldReasonCode",
    "HoldReasonSubCode",
    "HoldReason",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "CompletionDate",
    "NumJobStarts",
    "RemoteWallClockTime",
    "RemoteUserCpu",
    "RemoteSysCpu",
    "MemoryUsage",
    "DiskUsage",
    "StageOutFinish",
    "RequestMemory",
    "RequestDisk",
    "RequestCpus",
]
"""Only what chtcd uses: the tick's one query is kept small for the access point."""


RELEASE_BATCH = 500
"""Clusters released per call: one constraint the schedd evaluates on each job of its queue."""


class CondorError(Exception):
    """Base of what the door raises."""


class Unreachable(CondorError):
    """chtcd cannot talk to the access point at all (locate, connect, authenticate, query): an outage."""


class AuthRefused(Unreachable):
    """The access point did not accept the token: the user must fetch a new one."""


class Refused(CondorError):
    """HTCondor refused what the bundle describes: the bundle's to fix, not ours to retry."""


class BundleFault(CondorError):
    """A call about one bundle's jobs failed while the access point answered: that bundle's trouble alone.

    Retried on the bundle's own budget; the other bundles go on.
    """


class LocalFault(BundleFault):
    """This computer could not read or write the bundle's files (disk full, read-only, permission)."""

    def __init__(self, message: str, errno: Optional[int] = None):
        super().__init__(message)
        self.errno = errno


class DiskFull(LocalFault):
    """This computer's disk filled up mid-transfer: nothing is lost, the step is retried when there is room."""


@dataclass(frozen=True, **({"slots": True} if sys.version_info >= (3, 10) else {}))
class JobAd:
    bundle_id: Optional[str]
    cluster: int
    proc: int
    status: int
    entered_status_at: Optional[float] = None
    hold_code: Optional[int] = None
    hold_subcode: Optional[int] = None
    hold_reason: Optional[str] = None
    exit_code: Optional[int] = None
    exit_signal: Optional[int] = None
    completed_at: Optional[float] = None
    starts: Optional[int] = None
    wall_seconds: Optional[float] = None
    cpu_seconds: Optional[float] = None
    memory_mb: Optional[int] = None
    disk_kb: Optional[int] = None
    stage_out_at: Optional[float] = None  # set once outputs were retrieved
    request_memory_mb: Optional[int] = None  # what the job asked for: the report sets it against use
    request_disk_kb: Optional[int] = None
    request_cpus: Optional[int] = None


ClusterRange = Tuple[Optional[int], Optional[int]]
"""ClusterIds from the first (included) to the second (left out); None leaves that side open."""


@dataclass(frozen=True)
class Count:
    """The schedd's summary of a constraint: how many jobs match, and its clock when it counted."""

    jobs: int
    server_time: float


@dataclass(frozen=True)
class Submitted:
    cluster: int
    procs: int
    handle: Any  # the bindings' SubmitResult, needed by spool() and nothing else


@dataclass(frozen=True)
class Description:
    """A submit file as the clean room read and expanded it, as plain data for `checks` and `AccessPoint.submit`."""

    commands: Dict[str, str]  # lowercased command (or my.attribute) -> raw value
    queue_args: str
    jobs: List[Dict[str, str]]  # one per queued job: lowercased file command -> expanded value (what `checks` sees)
    items: List[Dict[str, str]] = field(default_factory=list)  # the queue statement's item rows, raw
    shared: Dict[str, str] = field(default_factory=dict)  # every command the same for all jobs -> its final value
    varying: Dict[str, List[str]] = field(default_factory=dict)  # every other command -> its final value, per job
    count: int = 1  # jobs
    env_refused: List[str] = field(default_factory=list)  # variables asked for ($ENV, getenv) outside the allowlist
    cluster: str = ""  # the clean room's stand-in for the cluster id in the values: `$(ClusterId)` when submitted

    def value(self, key: str, job: int) -> str:
        return self.shared[key] if key in self.shared else self.varying[key][job]


_cwd_lock = threading.Lock()


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """The bindings read ``executable`` and ``queue ... from FILE`` relative to the process cwd."""
    with _cwd_lock:
        before = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(before)


def _bindings() -> Any:
    os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
    import htcondor2

    return htcondor2


_PLAIN = frozenset((int, float, str, bool))
"""Exact types only: the bindings' Undefined and Error are IntEnum members, which isinstance(..., int) lets by."""


def _evaluated(ad: Any, key: str) -> Any:
    try:
        value = ad.eval(key)
    except Exception:
        return None
    return value if type(value) in _PLAIN else None


def _number(value: Any, kind: type = int) -> Any:
    if type(value) is bool or not isinstance(value, (int, float)):
        return None
    return kind(value) or (0.0 if kind is float else 0)  # one zero for every idle job's times, not a float each


def _text(value: Any) -> Optional[str]:
    return value if type(value) is str else None


def _bundle_id(value: Any) -> Optional[str]:
    return sys.intern(value) if type(value) is str else None  # one string for all the jobs of a bundle


def _job_ad(ad: Any, text: Optional[str] = None, seen: Optional[Dict[Any, Any]] = None) -> JobAd:
    """A JobAd from a job's ClassAd, printed as JSON: one call into the bindings instead of two per attribute.

    Literals come as they are, undefined as null; an expression comes as
    "/Expr(...)/", and only then is HTCondor asked to evaluate it. With
    `seen`, the values many jobs of one answer share (their cluster, the
    second they entered their status, a hold reason) are one object each.
    """
    values = json.loads(text if text is not None else ad.printJson())
    for key, value in values.items():
        if type(value) is str and value.startswith("/Expr("):
            values[key] = _evaluated(ad, key)
    get = values.get

    def alike(key: str, value: Any) -> Any:
        return value if seen is None or value is None else seen.setdefault((key, value), value)

    user = _number(get("RemoteUserCpu"), float)
    system = _number(get("RemoteSysCpu"), float)
    by_signal = get("ExitBySignal") is True
    return JobAd(
        bundle_id=_bundle_id(get(BUNDLE_ATTR)),
        cluster=alike("ClusterId", _number(get("ClusterId"))),
        proc=_number(get("ProcId")),
        status=_number(get("JobStatus")),
        entered_status_at=alike("EnteredCurrentStatus", _number(get("EnteredCurrentStatus"), float)),
        hold_code=_number(get("HoldReasonCode")),
        hold_subcode=_number(get("HoldReasonSubCode")),
        hold_reason=alike("HoldReason", _text(get("HoldReason"))),
        exit_code=None if by_signal else _number(get("ExitCode")),
        exit_signal=_number(get("ExitSignal")) if by_signal else None,
        completed_at=alike("CompletionDate", _number(get("CompletionDate"), float) or None),
        starts=_number(get("NumJobStarts")),
        wall_seconds=_number(get("RemoteWallClockTime"), float),
        cpu_seconds=None if user is None and system is None else ((user or 0.0) + (system or 0.0)) or 0.0,
        memory_mb=_number(get("MemoryUsage")),
        disk_kb=_number(get("DiskUsage")),
        stage_out_at=alike("StageOutFinish", _number(get("StageOutFinish"), float) or None),
        request_memory_mb=alike("RequestMemory", _number(get("RequestMemory"))),
        request_disk_kb=alike("RequestDisk", _number(get("RequestDisk"))),
        request_cpus=alike("RequestCpus", _number(get("RequestCpus"))),
    )


_REFUSED_SUBMIT = re.compile(r"Failed to create job ad|errmsg=Submit:|Submit:-?\d+:|MAX_JOBS_PER_SUBMISSION")
"""The client builds job ads before anything is sent: these failures are the submit file's, not the network's.

MAX_JOBS_PER_SUBMISSION (20,000 by default, and on the local pool) is the schedd's: `condor_submit -spool`
of 20,001 jobs failed with "Number of submitted jobs would exceed MAX_JOBS_PER_SUBMISSION"; sending the same
bundle again cannot succeed, so it goes back to the user (text seen from condor_submit, not yet from the bindings)."""


def _first_line(text: str) -> str:
    return text.replace("errmsg=", "").strip().splitlines()[0] if text.strip() else text


_AUTH = re.compile(r"\bAUTHENTICATE:\d+:|\bSECMAN:20(?:08|09|10):|Failed to authenticate")
"""HTCondor's error-stack ids for a refused identity (condor_error_codes.h: AUTHENTICATE_ERR_*,
SECMAN_ERR_AUTHENTICATION_FAILED, _CLIENT_AUTH_FAILED, _AUTHORIZATION_FAILED)."""

_NO_CONNECTION = re.compile(
    r"\bCEDAR:6001:|::\w+:6001:|\bSECMAN:20(?:03|07):|Failed to connect\b|Failed communication with collector"
)
"""No conversation with the daemon at all: CEDAR_ERR_CONNECT_FAILED (6001), SECMAN_ERR_CONNECT_FAILED (2003),
SECMAN_ERR_COMMUNICATIONS_ERROR (2007), and the bindings' own words for a failed connect."""

_TRANSFER_SIDE = re.compile(r"target job [\d.]+: (?P<side>TOOL|SCHEDD) at ")
"""A file transfer names the side that failed first: TOOL is this computer, SCHEDD the access point."""

_ERRNO = re.compile(r"\(errno (?P<errno>\d+)\)|errno=(?P<errno2>\d+)")

_DISK_FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


def classify(text: str) -> str:
    """What failed, from the ids and error numbers HTCondor puts in its message (never from its wording alone).

    ``auth``: the token was refused; ``unreachable``: no connection; ``local``:
    this computer's side of a file transfer failed; ``remote``: the access
    point answered, and its side of the transfer failed; ``unknown``: nothing
    in the text says which (the door then asks the schedd whether it answers).
    """
    if _AUTH.search(text):
        return "auth"
    side = _TRANSFER_SIDE.search(text)
    if side is not None:
        return "local" if side.group("side") == "TOOL" else "remote"
    if _NO_CONNECTION.search(text):
        return "unreachable"
    return "unknown"


_TRANSFER_FILE = re.compile(r"(?P<op>reading from|writing to) file (?P<path>[^:;|]+?): \(errno (?P<errno>\d+)\) (?P<why>[^;|]+)")


def plain_words(text: str) -> str:
    """What a file-transfer error says, for a researcher: which file, which side, why; the raw text otherwise."""
    found = _TRANSFER_FILE.search(text)
    side = _TRANSFER_SIDE.search(text)
    if found is None or side is None:
        return text
    name = os.path.basename(found.group("path").strip())
    why = found.group("why").strip().rstrip(".").lower()
    if side.group("side") == "SCHEDD":
        if found.group("errno") == "2":
            return f"the access point no longer has {name} ({why})"
        return f"the access point could not send {name} ({why})"
    verb = "read" if found.group("op") == "reading from" else "write"
    return f"this computer could not {verb} {found.group('path').strip()} ({why})"


def errno_of(text: str) -> Optional[int]:
    found = _ERRNO.search(text)
    if found is None:
        return None
    return int(found.group("errno") or found.group("errno2"))


def local_fault(message: str, errno: Optional[int]) -> LocalFault:
    """A fault of this computer's, what to do about it first, then HTCondor's own words."""
    if errno in _DISK_FULL_ERRNOS:
        return DiskFull(f"this computer's disk is full: free some space, chtcd retries on its own ({message})", errno)
    if errno in (1, 13, 30):  # EPERM, EACCES, EROFS
        return LocalFault(f"chtcd may not write there: make the folder writable for chtcd's user ({message})", errno)
    if errno == 2:
        return LocalFault(f"a file of the bundle is missing on this computer ({message})", errno)
    return LocalFault(message, errno)


def _classify(exc: BaseException, doing: str) -> CondorError:
    """The error of a call that is not about particular jobs: anything but a local fault is an outage."""
    text = str(exc) or type(exc).__name__
    kind = classify(text)
    if kind == "auth":
        return AuthRefused(f"{doing}: the access point did not accept the token ({text})")
    if kind == "local":
        return local_fault(_said(text, doing), errno_of(text))
    return Unreachable(f"{doing}: {text}")


def _acted(result: Any, doing: str) -> None:
    """The schedd answers an act it refused with counts in an ad, not an error: a refusal is the bundle's fault."""
    denied, failed = int(result.get("TotalPermissionDenied", 0)), int(result.get("TotalError", 0))
    if denied:
        raise BundleFault(_refused(doing, f"{denied} job(s)", "permission denied"))
    if failed:
        raise BundleFault(f"the access point could not act on {failed} job(s), while {doing}")


def _refused(doing: str, which: str, why: str) -> str:
    return (
        f"the access point refused {doing} for {which} ({why}): most likely this token's identity is not the one "
        "that submitted them. Fetch a token for that identity (chtcd token fetch), then chtcd retry NAME"
    )


def _said(text: str, doing: str) -> str:
    """A failed transfer in plain words first, then what chtcd was doing, then HTCondor's own text."""
    return f"{plain_words(text)}, while {doing}; HTCondor said: {text}"


INITIALDIR_NAMES = ("initialdir", "iwd", "initial_dir", "job_iwd")
"""Every name HTCondor reads the job's folder from; `submit` pins whichever is set inside the bundle."""

MAX_JOBS = 100_000
"""More jobs than this from one bundle are refused: each is checked here, and the access point carries them all."""

_QUEUE_VARS = re.compile(r"^(?:(?P<count>\S+)\s+)?[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*$")
_QUEUE_KEYWORD = re.compile(r"\s(?:in|from|matching)\b", re.IGNORECASE)


def _queue_count(description: Any, queue_args: str) -> int:
    """The jobs per item: the number before the variable names (``queue 3 x from list``), 1 if none."""
    padded = " " + queue_args
    keyword = _QUEUE_KEYWORD.search(padded)
    head = padded[: keyword.start()].strip() if keyword else queue_args.strip()
    if keyword:
        match = _QUEUE_VARS.match(head)
        head = (match.group("count") or "") if match else head
    if not head:
        return 1
    description["chtcd_queue_count"] = head
    try:
        value = description.expand("chtcd_queue_count").strip()
    except Exception:
        value = head
    finally:
        description["chtcd_queue_count"] = ""
    if not value.isdigit():
        raise Refused(f"the queue statement's count {head!r} is not a plain number of jobs; write it as one (queue 10)")
    return int(value)


DEFAULT_ENV_ALLOWLIST = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_*", "TZ")
"""The only environment variables the clean room has: what `$ENV(NAME)` and `getenv` can see."""

CLEAN_ROOM_TIMEOUT = 600.0
"""Seconds a clean room may take to read one bundle (100,000 jobs take a few)."""

CLEAN_ROOM_CONFIG = """\
# Written by chtcd: the whole HTCondor configuration of the clean room that reads
# a bundle's submit file. No system or user configuration is read, so no value of
# this computer's HTCondor configuration can be reached with $(NAME).
USER_CONFIG_FILE =
LOCAL_CONFIG_FILE =
LOCAL_CONFIG_DIR =
REQUIRE_LOCAL_CONFIG_FILE = false
"""

_PER_JOB_MACROS = ("Process", "ProcId", "Step", "Row", "ItemIndex", "Node", "Cluster", "ClusterId", "JobId")
_ENV_NAME = re.compile(r"ENV\s*\(\s*([^)\s:]+)", re.IGNORECASE)
_TRUE = {"true", "yes", "t", "y", "1"}
_FALSE_WORDS = {"false", "no", "f", "n", "0", ""}
_CLEAN_ROOM_CODE = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
    "from chtcd.condor import _clean_room_main; sys.exit(_clean_room_main())"
)


def env_allowed(name: str, allowlist: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allowlist)


def clean_environment(allowlist: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """This process's environment cut down to the allowlist; never an HTCondor (``_CONDOR_``) setting."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if env_allowed(k, allowlist) and not k.upper().startswith(("_CONDOR_", "CONDOR_"))}


def escape(value: str, cluster: str = "") -> str:
    """A submit value that HTCondor expands to exactly ``value``: every ``$`` that could start a macro is ``$(DOLLAR)``.

    ``$$(`` stays as it is: a match-time macro, filled in on the access point
    and the execute machine, never here. ``cluster`` (the clean room's stand-in
    for the cluster id) becomes ``$(ClusterId)``, the only macro the real
    submission fills in. A value HTCondor would read differently (``$$x``) is
    caught by the clean room's round trip (`_verified`), not here.
    """
    if cluster and cluster in value:
        return "$(ClusterId)".join(escape(part) for part in value.split(cluster))
    out: List[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "$":
            out.append(ch)
            i += 1
        elif value.startswith("$$(", i):
            out.append("$$(")
            i += 3
        elif i + 1 < n and (value[i + 1].isalnum() or value[i + 1] in "_({"):
            out.append("$(DOLLAR)")
            i += 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def parse_environment(value: str) -> List[Tuple[str, str]]:
    """An ``environment`` value as HTCondor reads it: V2 in double quotes (``""`` a quote, '...' groups), else V1 ``;``-separated."""
    text = value.strip()
    if text.startswith('"'):
        raw = text[1:-1] if len(text) > 1 and text.endswith('"') else text[1:]
        raw = raw.replace('""', '"')
        words: List[str] = []
        word: List[str] = []
        quoted, i, started = False, 0, False
        while i < len(raw):
            ch = raw[i]
            if quoted:
                if ch == "'" and raw.startswith("''", i):
                    word.append("'")
                    i += 2
                    continue
                if ch == "'":
                    quoted = False
                else:
                    word.append(ch)
            elif ch == "'":
                quoted, started = True, True
            elif ch in " \t":
                if word or started:
                    words.append("".join(word))
                word, started = [], False
            else:
                word.append(ch)
            i += 1
        if word or started:
            words.append("".join(word))
    else:
        words = [w.strip() for w in text.split(";")]
    pairs = []
    for item in words:
        name, eq, val = item.partition("=")
        if eq and name:
            pairs.append((name, val))
    return pairs


def format_environment(pairs: Sequence[Tuple[str, str]]) -> str:
    """``pairs`` as a V2 ``environment`` value in double quotes, each pair single-quoted when it must be."""
    words = []
    for name, val in pairs:
        word = f"{name}={val}"
        if not val or any(c in word for c in " \t'\""):
            word = "'" + word.replace("'", "''") + "'"
        words.append(word)
    return '"' + " ".join(words).replace('"', '""') + '"'


def _getenv_names(value: str, environ: Mapping[str, str]) -> Tuple[List[str], List[str]]:
    """What ``getenv = value`` imports from ``environ`` (true: all; else names or patterns), and the names asked that it lacks."""
    words = [w for w in re.split(r"[\s,]+", value.strip().strip('"')) if w]
    if len(words) == 1 and words[0].lower() in _TRUE:
        return sorted(environ), []
    if not words or (len(words) == 1 and words[0].lower() in _FALSE_WORDS):
        return [], []
    taken: List[str] = []
    missing: List[str] = []
    for word in words:
        hits = [k for k in environ if fnmatch.fnmatchcase(k, word)]
        taken.extend(h for h in hits if h not in taken)
        if not hits and not any(c in word for c in "*?["):
            missing.append(word)
    return taken, missing


def _final_environment(job: Dict[str, str], environ: Mapping[str, str]) -> Tuple[Optional[str], List[str]]:
    """``getenv`` done here, from the clean room's own environment, and merged under ``environment``/``env``."""
    getenv_key = next((k for k in job if k.lower() in ("getenv", "get_env")), None)
    taken, missing = _getenv_names(job[getenv_key], environ) if getenv_key else ([], [])
    if not taken:
        return None, missing
    merged: Dict[str, str] = {name: environ[name] for name in taken}
    for key in [k for k in job if k.lower() == "env"] + [k for k in job if k.lower() == "environment"]:
        merged.update(parse_environment(job[key]))
    return format_environment(list(merged.items())), missing


def _clean_room_main() -> int:
    """The clean room: parse and expand submit files for every job, print the values as JSON.

    Started by `describe_many` with an environment of the allowlist only and
    chtcd's own tiny HTCondor configuration; it reads each bundle with that
    bundle as its working directory, one after the other, and answers one
    result per bundle, in order.
    """
    requests = json.load(sys.stdin)
    h = _bindings()  # reads CONDOR_CONFIG now; after this nothing of it is needed
    allowlist = requests[0]["allowlist"] if requests else []
    for name in list(os.environ):
        if not env_allowed(name, allowlist) or name.upper().startswith(("_CONDOR_", "CONDOR_")):
            del os.environ[name]
    _no_more_processes()
    answers = []
    for request in requests:
        try:
            os.chdir(request["folder"])
            answers.append(_expand_all(h, request["text"], request["defaults"], request["cluster"], allowlist))
        except Refused as exc:
            answers.append({"refused": str(exc)})
        except OSError as exc:
            answers.append({"refused": f"chtcd could not enter the bundle's folder ({exc.strerror})"})
    json.dump(answers, sys.stdout)
    return 0


def _no_more_processes() -> None:
    """Defence in depth: a clean room that is not root cannot start a program (``include : X |``); the screen refuses those first."""
    try:
        import resource

        if os.geteuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ImportError, OSError, ValueError, AttributeError):
        pass


def _expand_all(h: Any, text: str, defaults: Mapping[str, str], cluster: str, allowlist: Sequence[str]) -> Dict[str, Any]:
    try:
        description = h.Submit(text)
        queue_args = description.getQArgs()
    except Exception as exc:
        raise Refused(f"HTCondor could not parse the submit file: {exc}") from None
    try:
        rows = [r if isinstance(r, dict) else {"Item": r} for r in (description.itemdata() or [])]
    except Exception as exc:
        raise Refused(f"the queue statement's items could not be read: {exc}") from None
    try:
        raw = {_command_key(k, keep_my=True): v for k, v in description.items()}
        present = {_command_key(k) for k in description.keys()}
        for key, value in defaults.items():
            if _command_key(key) not in present:
                description[key] = value
        own_keys = list(description.keys())
        count = _queue_count(description, queue_args)
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"HTCondor could not read the submit file: {exc}") from None
    total = max(len(rows), 1) * count
    if total > MAX_JOBS:
        raise Refused(
            f"the queue statement makes {total} jobs; chtcd sends at most {MAX_JOBS} from one bundle: "
            "split it into several bundles"
        )
    per_job = {m.lower() for m in _PER_JOB_MACROS}
    keys = [k for k in own_keys if k.lower() != "chtcd_queue_count" and k.lower() not in per_job]
    for row in rows:
        keys.extend(k for k in row if k not in keys and k.lower() not in per_job)
    environ = dict(os.environ)
    columns: Dict[str, List[str]] = {k: [] for k in keys}
    asked = set()
    for value in [*raw.values(), *(v for row in rows for v in row.values())]:
        asked.update(_ENV_NAME.findall(value))
    env_cache: Dict[Tuple[Tuple[str, str], ...], Tuple[Optional[str], List[str]]] = {}
    if any(k.lower() in ("getenv", "get_env") for k in keys) and not any(k.lower() == "environment" for k in keys):
        keys.append("environment")
    env_keys = [k for k in keys if k.lower() in ("getenv", "get_env", "env", "environment")]
    process = 0
    try:
        for index, row in enumerate(rows or [{}]):
            for key, value in row.items():
                description[key] = value
            for step in range(count):
                macros = {"Process": process, "ProcId": process, "Step": step, "Row": index, "ItemIndex": index,
                          "Node": 0, "Cluster": cluster, "ClusterId": cluster, "JobId": f"{cluster}.{process}"}
                for macro, number in macros.items():
                    description[macro] = str(number)
                job = {k: description.expand(k).strip(C_SPACE) if k in description else "" for k in keys}
                if env_keys:
                    env_key = tuple((k, job[k]) for k in env_keys)
                    if env_key not in env_cache:
                        env_cache[env_key] = _final_environment(job, environ)
                    final, missing = env_cache[env_key]
                    asked.update(missing)
                    if final is not None:  # getenv took something: merged here under the job's own environment
                        for k in env_keys:
                            job[k] = ""
                        job["environment"] = final
                    for k in env_keys:  # never again, in the daemon, from the daemon's environment
                        if k.lower() in ("getenv", "get_env"):
                            job[k] = "false"
                for k, v in job.items():
                    columns.setdefault(k, []).append(v)
                process += 1
    except Exception as exc:
        raise Refused(f"HTCondor could not expand the submit file: {exc}") from None
    shared, varying = {}, {}
    for key, values in columns.items():
        if not any(values):
            continue
        if all(v == values[0] for v in values):
            shared[key] = values[0]
        else:
            varying[key] = values
    _verified(h, shared, varying, cluster)
    return {
        "commands": raw, "queue_args": queue_args, "items": rows, "count": process, "shared": shared, "varying": varying,
        "env_refused": sorted(n for n in asked if not env_allowed(n, allowlist)),
    }


def _verified(h: Any, shared: Mapping[str, str], varying: Mapping[str, List[str]], cluster: str) -> None:
    """Each final value, escaped, must expand back to itself: what the real submission's parse will do with it."""
    check = h.Submit("")
    check["ClusterId"] = cluster
    seen = set()
    for key, values in [*((k, [v]) for k, v in shared.items()), *varying.items()]:
        for value in values:
            if value in seen:
                continue
            seen.add(value)
            if "\n" in value or "\x1f" in value:
                raise Refused(f"{key} expands to a value with a line break in it, which HTCondor cannot carry; write it on one line")
            check["chtcd_value"] = escape(value, cluster)
            if check.expand("chtcd_value") != value:
                raise Refused(
                    f"{key} expands to {value[:80]!r}, which chtcd cannot hand to HTCondor unchanged "
                    "(a $ before $ or a macro name); write that $ differently"
                )


_net_prefix: Optional[List[str]] = None


def _no_network_prefix() -> List[str]:
    """``unshare --net`` where it works (Linux, as root): the clean room then has no network. Else nothing."""
    global _net_prefix
    if _net_prefix is None:
        _net_prefix = []
        tool = shutil.which("unshare")
        if sys.platform.startswith("linux") and tool and os.geteuid() == 0:
            try:
                probe = subprocess.run([tool, "--net", "--", "true"], capture_output=True, timeout=10)
                if probe.returncode == 0:
                    _net_prefix = [tool, "--net", "--"]
            except (OSError, subprocess.SubprocessError):
                pass
    return _net_prefix


_config_dir: Optional[str] = None


def clean_room_config() -> str:
    """The HTCondor configuration file chtcd writes for the clean room (once per process, private)."""
    global _config_dir
    if _config_dir is None or not os.path.exists(os.path.join(_config_dir, "condor_config")):
        _config_dir = tempfile.mkdtemp(prefix="chtcd-cleanroom-")
        atexit.register(shutil.rmtree, _config_dir, True)
        path = os.path.join(_config_dir, "condor_config")
        with open(path, "w") as f:
            f.write(CLEAN_ROOM_CONFIG)
    return os.path.join(_config_dir, "condor_config")


def describe(
    text: str,
    folder: Path,
    commands: Sequence[str],
    defaults: Optional[Mapping[str, str]] = None,
    allowlist: Sequence[str] = DEFAULT_ENV_ALLOWLIST,
) -> Description:
    """One bundle through the clean room (`describe_many`); Refused if it does not pass."""
    (found,) = describe_many([(text, folder)], commands, defaults, allowlist)
    if isinstance(found, Refused):
        raise found
    return found


def describe_many(
    bundles: Sequence[Tuple[str, Path]],
    commands: Sequence[str],
    defaults: Optional[Mapping[str, str]] = None,
    allowlist: Sequence[str] = DEFAULT_ENV_ALLOWLIST,
) -> List[Union[Description, Refused]]:
    """Parse and expand screened submit files for every job they queue, in a clean room, as condor_submit would from each folder.

    The clean room is a child process (`_clean_room_main`) whose environment
    holds the allowlist only, whose HTCondor configuration is
    `CLEAN_ROOM_CONFIG`, and, where cheap, without network; it reads each
    bundle with that bundle as its working directory. One child reads a whole
    intake's bundles (starting one costs some 80 ms); if it dies, each bundle
    is read again in a child of its own, so a bundle that crashes the reader
    is refused alone. Each job gets the macros HTCondor gives it (Process
    counts across items, Step within one item, Row/ItemIndex the item); the
    cluster id is not known yet and stands as a placeholder that
    `AccessPoint.submit` hands back to the schedd as ``$(ClusterId)``.
    ``defaults`` are added where a file does not set them. Never call this on
    unscreened text: HTCondor's parser runs ``include ... |`` commands.
    """
    if not bundles:
        return []
    requests: List[Dict[str, Any]] = [
        {"text": text, "folder": str(folder), "defaults": dict(defaults or {}),
         "cluster": f"chtcdCluster{secrets.token_hex(6)}", "allowlist": list(allowlist)}
        for text, folder in bundles
    ]
    try:
        answers = _clean_room(requests, allowlist)
    except Refused as exc:
        if len(requests) == 1:
            return [exc]
        return [describe_many([bundle], commands, defaults, allowlist)[0] for bundle in bundles]
    found: List[Union[Description, Refused]] = []
    for request, out in zip(requests, answers):
        if "refused" in out:
            found.append(Refused(out["refused"]))
            continue
        shared: Dict[str, str] = out["shared"]
        varying: Dict[str, List[str]] = out["varying"]
        found.append(Description(
            commands=out["commands"], queue_args=out["queue_args"], jobs=_file_commands(shared, varying, out["count"], commands),
            items=out["items"], shared=shared, varying=varying, count=out["count"], env_refused=out["env_refused"],
            cluster=request["cluster"],
        ))
    return found


def _clean_room(requests: List[Dict[str, Any]], allowlist: Sequence[str]) -> List[Dict[str, Any]]:
    """Run the clean room over ``requests``: one answer each, in order (Refused if the child itself failed)."""
    env = clean_environment(allowlist)
    env["CONDOR_CONFIG"] = clean_room_config()
    argv = [*_no_network_prefix(), sys.executable, "-I", "-c", _CLEAN_ROOM_CODE, json.dumps([p for p in sys.path if p])]
    try:
        done = subprocess.run(
            argv, input=json.dumps(requests), capture_output=True, text=True, cwd=requests[0]["folder"], env=env,
            timeout=CLEAN_ROOM_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise Refused(f"reading the submit file took longer than {CLEAN_ROOM_TIMEOUT:.0f} s; make it simpler or split it") from None
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        raise Refused(f"chtcd could not read the submit file (its reader failed: {_first_line(last)})")
    try:
        answers = json.loads(done.stdout)
    except ValueError:
        raise Refused("chtcd could not read the submit file (its reader answered nothing readable)") from None
    if not isinstance(answers, list) or len(answers) != len(requests):
        raise Refused("chtcd could not read the submit file (its reader answered for the wrong number of bundles)")
    return answers


def _file_commands(shared: Mapping[str, str], varying: Mapping[str, List[str]], count: int, commands: Sequence[str]) -> List[Dict[str, str]]:
    """Per job, the file commands `checks` looks at, lowercased, with the values that will be submitted."""
    wanted = set(commands)
    base = {_command_key(k): v for k, v in shared.items() if _command_key(k) in wanted}
    columns = [(_command_key(k), v) for k, v in varying.items() if _command_key(k) in wanted]
    if not columns:
        return [dict(base) for _ in range(count)]
    return [{**base, **{k: v[i] for k, v in columns}} for i in range(count)]


def submission(description: Description, folder: Path, stamps: Mapping[str, str], items: str) -> Tuple[str, Optional[str]]:
    """The submit text for ``description``'s values, and the rows of the item file ``items`` when values differ between jobs.

    Each row starts with the job's number, so no row is ever empty (an empty item line would be skipped).
    """
    shared = dict(description.shared)
    varying = dict(description.varying)
    count = description.count
    dirs = [k for k in [*shared, *varying] if _command_key(k) in INITIALDIR_NAMES]
    own = [""] * count
    for key in dirs:
        for job in range(count):
            own[job] = description.value(key, job).strip() or own[job]
        shared.pop(key, None)
        varying.pop(key, None)
    if any(o.startswith("/") for o in own):
        bad = next(o for o in own if o.startswith("/"))
        raise Refused(f"initialdir = {bad} is outside the bundle; use a folder inside it, by a relative name")
    iwds = [str(folder / o) if o else str(folder) for o in own]
    if all(i == iwds[0] for i in iwds):
        shared["initialdir"] = iwds[0]
    else:
        varying["initialdir"] = iwds
    marker = description.cluster
    lines = [f"{key} = {escape(value, marker)}" for key, value in shared.items() if key.lower() not in _STAMPED]
    names = [f"chtcd_v{n}" for n in range(1, len(varying) + 1)]
    lines.extend(f"{key} = $({name})" for key, name in zip(varying, names))
    lines.extend(f"{key} = {value}" for key, value in stamps.items())
    if not varying:
        return "\n".join(lines) + f"\nqueue {count}\n", None
    columns = [[str(job) for job in range(count)], *([escape(v, marker) for v in values] for values in varying.values())]
    rows = "".join("\x1f".join(column[job] for column in columns) + "\n" for job in range(count))
    return "\n".join(lines) + f"\nqueue chtcd_v0,{','.join(names)} from {items}\n", rows


_STAMPED = {"my." + BUNDLE_ATTR.lower(), "my." + CLIENT_ATTR.lower()}


class Door(Protocol):
    """What the pipeline asks of an access point, and nothing more.

    `AccessPoint` is the real door; `tests/fakes.FakeAccessPoint` is the fast
    tests' stand-in. mypy holds both to this (each module states it), and
    `tests/test_door_contract.py` runs one scenario through both and compares
    what comes out.
    """

    name: str

    def add_credentials(self, services: Sequence[str]) -> bool: ...

    def submit(self, description: Description, folder: Path, stamps: Mapping[str, str]) -> Submitted: ...

    def spool(self, submitted: Submitted, cwd: Path) -> None: ...

    def count_client(self, client_id: str, excluding: Sequence[str] = ()) -> Count: ...

    def query_client(
        self, client_id: str, since: Optional[float] = None, listed: Sequence[str] = (), clusters: ClusterRange = (None, None)
    ) -> List[JobAd]: ...

    def history(self, constraint: str, limit: int = -1) -> List[JobAd]: ...

    def retrieve(self, job_ids: Sequence[str]) -> None: ...

    def release(self, clusters: Union[int, Sequence[int]], keep: Optional[Mapping[int, Sequence[int]]] = None) -> None: ...

    def remove(self, constraint: str) -> None: ...

    def idle_facts(self, cluster: int, proc: int) -> idle.Facts: ...


class AccessPoint:
    """A connection to one access point's schedd, found through the collector by name."""

    def __init__(self, collector: str, name: str, token_dir: Path):
        self.collector_host = collector
        self.name = name
        self._h = _bindings()
        self._h.param["SEC_TOKEN_DIRECTORY"] = str(token_dir)
        # Reads may go unauthenticated otherwise: a refused token would then only show at submit.
        self._h.param["SEC_CLIENT_AUTHENTICATION"] = "REQUIRED"
        self._schedd: Any = None
        self.last_answer_seconds = 0.0
        """How long the schedd took to answer the last query (for the benchmark: a tick's own work excludes it)."""
        self.last_answer_cpu_seconds = 0.0
        """This thread's CPU time in the bindings meanwhile, reading the answer into ClassAds."""
        self.last_answer_ads = 0
        self.last_answer_attributes = 0
        """Job ads, and attributes in them, of the last `query_client` answer: what came through the door."""

    def _collector(self) -> Any:
        return self._h.Collector(self.collector_host)

    def _connect(self) -> Any:
        if self._schedd is None:
            doing = f"finding access point {self.name} through {self.collector_host}"
            try:
                ad = self._collector().locate(self._h.DaemonType.Schedd, self.name)
                if ad is None:
                    raise Unreachable(f"{doing}: the collector does not list it (down, or a misspelt name?)")
                self._schedd = self._h.Schedd(ad)
            except CondorError:
                raise
            except Exception as exc:
                raise _classify(exc, doing) from None
        return self._schedd

    @contextlib.contextmanager
    def _call(self, doing: str) -> Iterator[Any]:
        """A call whose failure means the access point cannot be used: the tick's query, the credd."""
        schedd = self._connect()
        try:
            yield schedd
        except CondorError:
            raise
        except Exception as exc:
            self._schedd = None
            raise _classify(exc, doing) from None

    @contextlib.contextmanager
    def _job_call(self, doing: str) -> Iterator[Any]:
        """A call about particular jobs: its failure is their bundle's, unless the access point stopped answering.

        When HTCondor's message carries no id that says which, the schedd is
        asked for nothing: if that fails too, it is an outage.
        """
        schedd = self._connect()
        try:
            yield schedd
        except CondorError:
            raise
        except Exception as exc:
            text = str(exc) or type(exc).__name__
            kind = classify(text)
            if kind == "unknown":
                try:
                    self.ping()
                except Unreachable:
                    self._schedd = None
                    raise
                kind = "remote"
            if kind == "remote":
                raise BundleFault(_said(text, doing)) from None
            if kind == "local":
                raise local_fault(_said(text, doing), errno_of(text)) from None
            self._schedd = None
            raise _classify(exc, doing) from None

    def add_credentials(self, services: Sequence[str]) -> bool:
        """The credd step from CHTC's guide; False when the pool has no credd by that name."""
        h = self._h
        try:
            ads = self._collector().query(h.AdType.Credd, constraint=f'Name == "{self.name}"')
            if not ads:
                return False
            credd = h.Credd(ads[0])
            for service in services:
                credd.add_user_service_cred(h.CredType.OAuth, b"", service)
        except Exception as exc:
            raise _classify(exc, "adding credentials at the credd") from None
        return True

    def submit(self, description: Description, folder: Path, stamps: Mapping[str, str]) -> Submitted:
        """Submit exactly the values the clean room expanded (and `checks` passed), with spooling; jobs wait held until `spool`.

        Nothing is expanded here: every value goes in escaped (`escape`), so the
        bindings' parse gives it back unchanged; only ``$(ClusterId)`` is left for
        the schedd, and ``$$(...)`` for the execute side. Values shared by all jobs
        are written once; the others go, one row per job, through an item file.
        ``initialdir`` is pinned inside ``folder``, as condor_submit run from it would.
        """
        fd, items = tempfile.mkstemp(prefix="chtcd-items-", suffix=".txt")
        try:
            with os.fdopen(fd, "w") as f:
                text, rows = submission(description, folder, stamps, items)
                f.write(rows or "")
            try:
                submit = self._h.Submit(text)
            except Exception as exc:
                raise Refused(f"HTCondor could not read the checked values back: {exc}") from None
            with self._job_call("submitting") as schedd, _working_dir(folder):
                try:
                    result = schedd.submit(submit, spool=True)
                except ValueError as exc:
                    raise Refused(f"HTCondor refused the submit file: {exc}") from None
                except Exception as exc:
                    if _REFUSED_SUBMIT.search(str(exc)):
                        raise Refused(f"HTCondor refused the submit file: {_first_line(str(exc))}") from None
                    raise
        finally:
            os.unlink(items)
        return Submitted(cluster=result.cluster(), procs=result.num_procs(), handle=result)

    def spool(self, submitted: Submitted, cwd: Path) -> None:
        with self._job_call(f"spooling the inputs of cluster {submitted.cluster}") as schedd, _working_dir(cwd):
            schedd.spool(submitted.handle)

    def _summary(self, constraint: str) -> List[Any]:
        with self._call("counting the queue") as schedd:
            return schedd.query(constraint, projection=["Jobs", "ServerTime"], opts=self._h.QueryOpt.SummaryOnly)

    def _query(self, constraint: str) -> List[Any]:
        with self._call("querying the queue") as schedd:
            started, cpu = time.monotonic(), time.thread_time()
            ads = schedd.query(constraint, projection=PROJECTION)
            self.last_answer_seconds = time.monotonic() - started
            self.last_answer_cpu_seconds = time.thread_time() - cpu
        return ads

    def query(self, constraint: str) -> List[JobAd]:
        return [_job_ad(ad) for ad in self._query(constraint)]

    def count_client(self, client_id: str, excluding: Sequence[str] = ()) -> Count:
        """How many jobs of this client the queue holds (leaving out the bundles ``excluding``), and the schedd's clock.

        One summary ad (`QueryOpt.SummaryOnly`), whatever the queue's size: the
        tick compares it with the jobs it knows of, to notice jobs that left
        without a change of status the tick's query could see.
        """
        ads = self._summary(_client_constraint(client_id) + _not_member(excluding))
        if not ads:
            raise Unreachable("counting the queue: the schedd sent no summary")
        return Count(jobs=int(ads[0].get("Jobs", 0)), server_time=float(ads[0].get("ServerTime", 0)))

    def query_client(
        self, client_id: str, since: Optional[float] = None, listed: Sequence[str] = (), clusters: ClusterRange = (None, None)
    ) -> List[JobAd]:
        """The tick's query: the jobs of this client that entered their status at ``since`` or later, and
        every job of the bundles ``listed``; with no ``since``, every job of this client; either way only
        those of ``clusters`` (from, below; None: no bound), one page of a full query (`tracking.pages`).

        Values many jobs share (a cluster, a second, a hold reason) become one object each (`_job_ad`'s ``seen``).
        """
        constraint = _client_constraint(client_id)
        low, high = clusters
        if low is not None:
            constraint += f" && ClusterId >= {int(low)}"
        if high is not None:
            constraint += f" && ClusterId < {int(high)}"
        if since is not None:
            constraint += f" && (EnteredCurrentStatus >= {int(since)}{_or_member(listed)})"
        ads = self._query(constraint)
        self.last_answer_ads = len(ads)
        self.last_answer_attributes = sum(len(ad) for ad in ads)
        seen: Dict[Any, Any] = {}
        jobs = [_job_ad(ad, None, seen) for ad in ads]
        del ads
        return jobs

    def history(self, constraint: str, limit: int = -1) -> List[JobAd]:
        with self._job_call("reading the schedd's history") as schedd:
            ads = schedd.history(constraint, projection=PROJECTION, match=limit)
        return [_job_ad(ad) for ad in ads]

    def retrieve(self, job_ids: Sequence[str]) -> None:
        """Download outputs into each job's submit folder; returns nothing, so callers verify."""
        with self._job_call(f"retrieving outputs of {_job_list(job_ids)}") as schedd:
            schedd.retrieve(list(job_ids))

    def release(self, clusters: Union[int, Sequence[int]], keep: Optional[Mapping[int, Sequence[int]]] = None) -> None:
        """Let retrieved jobs leave the queue now, not ten days from now; drop the rest.

        Several clusters go in one edit and one remove (up to RELEASE_BATCH at a time), not two calls each.
        ``keep`` names, per cluster, jobs whose outputs never came back: they are left alone, so the
        user can still fetch them by hand.
        """
        ids = [clusters] if isinstance(clusters, int) else list(clusters)
        keep = {c: procs for c, procs in (keep or {}).items() if procs and c in ids}
        plain = [c for c in ids if c not in keep]
        for start in range(0, len(plain), RELEASE_BATCH):
            batch = plain[start : start + RELEASE_BATCH]
            which = f"ClusterId == {batch[0]}" if len(batch) == 1 else f"member(ClusterId, {{{', '.join(map(str, batch))}}})"
            self._release(which, f"releasing cluster {', '.join(map(str, batch))}")
        for cluster, procs in keep.items():
            which = f"ClusterId == {cluster} && !member(ProcId, {{{', '.join(map(str, sorted(procs)))}}})"
            self._release(which, f"releasing cluster {cluster}")

    def _release(self, which: str, doing: str) -> None:
        with self._job_call(doing) as schedd:
            try:
                schedd.edit(f"{which} && JobStatus == 4", "LeaveJobInQueue", "false")
            except Exception as exc:
                if "Unable to edit jobs matching constraint" not in str(exc):
                    raise
                # Nothing matched (newer clients' LeaveJobInQueue already let the retrieved jobs go), or
                # the schedd refused every one: it says the same of both, so look whether any is still there.
                if schedd.query(f"{which} && JobStatus == 4", projection=["ProcId"], limit=1):
                    raise BundleFault(_refused(doing, "its finished jobs", "the access point would not let them leave its queue")) from None
            _acted(schedd.act(self._h.JobAction.Remove, f"{which} && JobStatus != 4 && JobStatus != 3"), doing)

    def remove(self, constraint: str) -> None:
        with self._job_call("removing jobs") as schedd:
            _acted(schedd.act(self._h.JobAction.Remove, constraint), f"removing jobs ({constraint})")

    # ---- why a job is idle: the schedd's view of one job, then the slots, clause by clause ----

    def idle_facts(self, cluster: int, proc: int) -> idle.Facts:
        """What `condor_q -better-analyze` would say of one idle job, as `idle.Facts`: two queries.

        The job's whole ad (one job, so small) is read because its Requirements
        may name any of its attributes; the collector is asked for the slots with
        only the attributes those Requirements name. Each top-level conjunct is
        evaluated against each distinct slot here, and only counts go back.
        """
        from . import idle  # pure: splits the expression and holds the plain result

        h = self._h
        with self._call(f"reading job {cluster}.{proc} for why it is idle") as schedd:
            ads = schedd.query(f"ClusterId == {cluster} && ProcId == {proc}", limit=1)
        if not ads:
            raise Refused(f"job {cluster}.{proc} is no longer in the queue")
        job = ads[0]
        try:
            requirements = job.lookup("Requirements")
        except KeyError:
            requirements = None
        text = "" if requirements is None else str(requirements)
        clauses = idle.conjuncts(text) if text else []
        wanted = sorted({ref.split(".")[-1] for ref in (job.externalRefs(requirements) if requirements is not None else [])})
        try:
            slots = self._collector().query(h.AdType.Startd, projection=wanted or ["Name"])
        except Exception as exc:
            raise _classify(exc, f"asking {self.collector_host} for its slots") from None
        exprs = [h.classad.ExprTree(c) for c in clauses]  # htcondor2.classad is classad2
        kinds: Dict[str, List[Any]] = {}  # slots alike in every projected attribute are evaluated once
        for slot in slots:
            kinds.setdefault(slot.printJson(), [slot, 0])[1] += 1
        meet = [0] * len(clauses)
        rest = [0] * len(clauses)
        undefined = [0] * len(clauses)
        matching = 0
        for slot, n in kinds.values():
            values = [_clause_value(e, job, slot) for e in exprs]
            passed = [v is True for v in values]
            failed = passed.count(False)
            matching += n if failed == 0 else 0
            for i, ok in enumerate(passed):
                meet[i] += n if ok else 0
                undefined[i] += n if values[i] is None else 0
                if failed == 0 or (failed == 1 and not ok):
                    rest[i] += n
        get = lambda key: _number(_evaluated(job, key))  # noqa: E731
        return idle.Facts(
            job=f"{cluster}.{proc}",
            idle_since=_number(_evaluated(job, "EnteredCurrentStatus"), float),
            requirements=text,
            slots=len(slots),
            matching=matching,
            clauses=[idle.Clause(c, meet[i], rest[i], undefined[i]) for i, c in enumerate(clauses)],
            last_rejection=_text(_evaluated(job, "LastRejMatchReason")),
            matches=get("NumJobMatches"),
            autocluster=get("AutoClusterId"),
            request_memory_mb=get("RequestMemory"),
            request_disk_kb=get("RequestDisk"),
            request_cpus=get("RequestCpus"),
            request_gpus=get("RequestGPUs"),
        )

    # ---- one small call each, for `chtcd doctor` ----

    def wait_at_most(self, seconds: float) -> None:
        """Bound a collector query (HTCondor's QUERY_TIMEOUT, 60 s by default); for `doctor` only."""
        self._h.param["QUERY_TIMEOUT"] = str(max(1, int(seconds)))

    def locate(self) -> bool:
        """Whether the collector lists a schedd by this name (it answers nothing, not an error, when not)."""
        try:
            ad = self._collector().locate(self._h.DaemonType.Schedd, self.name)
        except Exception as exc:
            raise _classify(exc, f"finding access point {self.name} through {self.collector_host}") from None
        return ad is not None

    def schedd_names(self) -> List[str]:
        """Every schedd the collector lists: the names a misspelt access point could have meant."""
        try:
            ads = self._collector().query(self._h.AdType.Schedd, projection=["Name"])
        except Exception as exc:
            raise _classify(exc, f"listing the schedds known to {self.collector_host}") from None
        return sorted({str(ad["Name"]) for ad in ads if "Name" in ad})

    def ping(self) -> None:
        """Locate the schedd and make one authenticated query with the smallest answer: the token works."""
        with self._call(f"asking {self.name} for nothing") as schedd:
            schedd.query("false", projection=["ClusterId"], limit=1)

    def find_credd(self) -> bool:
        try:
            ads = self._collector().query(self._h.AdType.Credd, constraint=f'Name == "{self.name}"', projection=["Name"])
        except Exception as exc:
            raise _classify(exc, "looking for the access point's credd") from None
        return bool(ads)


if TYPE_CHECKING:
    _door: Door = AccessPoint("", "", Path())  # mypy: the real door has everything the pipeline asks of one


def _client_constraint(client_id: str) -> str:
    return f'{CLIENT_ATTR} == "{client_id}"'


def _ids(bundle_ids: Sequence[str]) -> str:
    return ", ".join(json.dumps(b) for b in sorted(bundle_ids))


def _not_member(bundle_ids: Sequence[str]) -> str:
    return f" && (member({BUNDLE_ATTR}, {{{_ids(bundle_ids)}}}) =!= true)" if bundle_ids else ""


def _or_member(bundle_ids: Sequence[str]) -> str:
    return f" || member({BUNDLE_ATTR}, {{{_ids(bundle_ids)}}})" if bundle_ids else ""


def _job_list(job_ids: Sequence[str]) -> str:
    shown = ", ".join(job_ids[:5])
    return shown if len(job_ids) <= 5 else f"{shown} and {len(job_ids) - 5} more"
def _clause_value(expr: Any, job: Any, slot: Any) -> Optional[bool]:
    """A conjunct evaluated with the job as MY and the slot as TARGET: True, False, or None if undefined or an error."""
    try:
        value = expr.eval(job, slot)
    except Exception:
        return None
    return value if type(value) is bool else None


def job_id(cluster: int, proc: int) -> str:
    return f"{cluster}.{proc}"


def stamps(bundle_id: str, client_id: str) -> Dict[str, str]:
    """The attributes that let one query find every job of a bundle and of this daemon."""
    return {f"MY.{BUNDLE_ATTR}": f'"{bundle_id}"', f"MY.{CLIENT_ATTR}": f'"{client_id}"'}


def _command_key(key: str, keep_my: bool = False) -> str:
    """Commands are case-insensitive; ``+X`` and ``MY.X`` are the same attribute."""
    key = key.lower()
    for prefix in ("my.", "+"):
        if key.startswith(prefix):
            return "my." + key[len(prefix):] if keep_my else key[len(prefix):]
    return key
