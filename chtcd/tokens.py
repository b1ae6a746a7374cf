"""The user's HTCondor tokens: present and private, checked before connecting.

HTCondor silently skips a token file that others can read; the only symptom
is a generic authentication failure. So chtcd looks first and says what to run.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import List


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
