"""The user's HTCondor tokens: present and private, checked before connecting; fetched; dated.

HTCondor silently skips a token file that others can read; the only symptom
is a generic authentication failure. So chtcd looks first and says what to run.
A token is a JWT: its ``exp`` claim (read with the standard library, never
verified, never printed) says when it stops working, so chtcd can warn ahead.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import atomic


class TokenProblem(Exception):
    pass


def token_files(token_dir: Path) -> List[Path]:
    return sorted(p for p in token_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def check(token_dir: Path, access_point: str) -> List[Path]:
    fetch = (
        f"mkdir -p {token_dir} && ssh NETID@{access_point} condor_token_fetch > "
        f"{token_dir}/{access_point.split('.')[0]} && chmod 700 {token_dir} && chmod 600 {token_dir}/*"
    )
    if not token_dir.is_dir():
        raise TokenProblem(f"token folder {token_dir} does not exist; fetch a token with: {fetch}")
    mode = stat.S_IMODE(token_dir.stat().st_mode)
    if mode & 0o077:
        raise TokenProblem(f"token folder {token_dir} is readable by others (mode {mode:o}); run: chmod 700 {token_dir}")
    files = token_files(token_dir)
    if not files:
        raise TokenProblem(f"no token in {token_dir}; fetch one with: {fetch}")
    loose = [p for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077]
    if loose:
        names = " ".join(str(p) for p in loose)
        raise TokenProblem(
            f"HTCondor ignores token files others can read: {names}; run: chmod 600 {names}"
        )
    return files


# ---- what a token says about itself, and fetching one ------------------------------

EXPIRY_WARNING_SECONDS = 14 * 86400.0
"""Warn this long before the token expires: time to fetch a new one before jobs stall."""

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def claims(token: str) -> Optional[Dict[str, Any]]:
    """The payload of a JWT (unverified: only to read its dates), or None if it is not one."""
    token = token.strip()
    if not _JWT.match(token):
        return None
    header, payload, _signature = token.split(".")
    try:
        head, body = _b64json(header), _b64json(payload)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(head, dict) or "alg" not in head or not isinstance(body, dict):
        return None
    return body


def file_claims(path: Path) -> List[Dict[str, Any]]:
    """The payloads of every token in a token file (one a line, as HTCondor reads them)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    found = [claims(line) for line in text.splitlines() if line.strip()]
    return [c for c in found if c is not None]


def expiry(path: Path) -> Optional[float]:
    """When the last token in the file expires; None when none carries an ``exp`` claim."""
    dates = [float(c["exp"]) for c in file_claims(path) if isinstance(c.get("exp"), (int, float))]
    return max(dates) if dates else None


def token_name(access_point: str) -> str:
    """The file name CHTC's guide uses: the access point's short name (``ap2002``)."""
    return access_point.split(".")[0]


def token_for(token_dir: Path, access_point: str) -> Optional[Path]:
    """The token file that speaks for this access point: the one named after it, else the only one."""
    for name in (access_point, token_name(access_point)):
        candidate = token_dir / name
        if candidate.is_file():
            return candidate
    try:
        files = token_files(token_dir)
    except OSError:
        return None
    with_claims = [p for p in files if file_claims(p)]
    return with_claims[0] if len(with_claims) == 1 else None


@dataclass(frozen=True)
class Expiry:
    path: Path
    expires_at: Optional[float]  # None: the token carries no expiry date

    def left(self, now: float) -> Optional[float]:
        return None if self.expires_at is None else self.expires_at - now

    def describe(self, now: float) -> str:
        left = self.left(now)
        if left is None:
            return f"token {self.path.name} has no expiry date"
        when = time.strftime("%Y-%m-%d", time.localtime(self.expires_at))
        if left <= 0:
            return f"token {self.path.name} expired on {when}"
        days = left / 86400
        span = f"{days:.0f} days" if days >= 2 else f"{left / 3600:.0f} hours"
        return f"token {self.path.name} expires on {when} (in {span})"

    def expired(self, now: float) -> bool:
        left = self.left(now)
        return left is not None and left <= 0

    def expiring(self, now: float) -> bool:
        left = self.left(now)
        return left is not None and 0 < left < EXPIRY_WARNING_SECONDS


def token_expiry(token_dir: Path, access_point: str) -> Optional[Expiry]:
    path = token_for(token_dir, access_point)
    if path is None or not file_claims(path):
        return None
    return Expiry(path, expiry(path))


class FetchFailed(Exception):
    pass


def ssh_command() -> List[str]:
    """``ssh``, or what ``$CHTCD_SSH`` names (tests substitute a script; users may add options)."""
    return shlex.split(os.environ.get("CHTCD_SSH", "ssh"))


def fetch(netid: str, access_point: str, token_dir: Path) -> Path:
    """The guide's ``ssh NETID@AP condor_token_fetch``, kept private and never half-written.

    ssh talks to the terminal for the login (password, Duo); only its output is
    captured, checked to be a token, and written with mode 0600 in a 0700 folder.
    """
    argv = [*ssh_command(), f"{netid}@{access_point}", "condor_token_fetch"]
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE)
    except FileNotFoundError:
        raise FetchFailed(f"{argv[0]} is not installed; install an ssh client (OpenSSH) and try again") from None
    if done.returncode != 0:
        raise FetchFailed(
            f"ssh {netid}@{access_point} condor_token_fetch failed (exit {done.returncode}); "
            "check your NetID and access point and that you can log in with ssh"
        )
    text = done.stdout.decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not all(claims(line) for line in lines):
        raise FetchFailed(
            f"what {access_point} sent back ({len(done.stdout)} bytes) does not look like a token; "
            "nothing was written. Log in with ssh and run condor_token_fetch there to see why"
        )
    old = os.umask(0o077)
    try:
        token_dir.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    os.chmod(token_dir, 0o700)
    path = token_dir / token_name(access_point)
    atomic.write_bytes(path, ("\n".join(lines) + "\n").encode(), mode=0o600)
    os.chmod(path, 0o600)
    return path
