"""Stand-ins for the programs chtcd runs (ssh, notify-send, systemctl), crafted tokens, and the CLI as a user runs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent


def _part(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_jwt(exp: Optional[float] = None, sub: str = "bbadger@chtc.wisc.edu") -> str:
    """A token shaped like HTCondor's IDTOKENS (signature not valid anywhere)."""
    payload = {"sub": sub, "iss": "ap.test", "iat": 1700000000, "jti": "0" * 32}
    if exp is not None:
        payload["exp"] = int(exp)
    return f"{_part({'alg': 'HS256', 'kid': 'POOL'})}.{_part(payload)}.{_part({'s': 'not-a-signature'})}"


def recording_script(path: Path, record: Path, stdout: str = "", exit_code: int = 0) -> Path:
    """An executable that appends its arguments (one JSON list a line) to ``record``, prints ``stdout``, exits."""
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(),"
        " 'outcome': os.environ.get('CHTCD_OUTCOME')}) + '\\n')\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.exit({exit_code})\n"
    )
    path.chmod(0o755)
    return path


def recorded(record: Path) -> List[Dict]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def chtcd(*args: str, env: Optional[Dict[str, str]] = None, home: Optional[Path] = None, input: Optional[str] = None,
          timeout: float = 120) -> subprocess.CompletedProcess:
    """The real program, from this checkout, with stdin not a terminal."""
    full = dict(os.environ)
    full.pop("CHTCD_CONFIG", None)
    if home is not None:
        full.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local/state"))
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "chtcd", *args],
        cwd=REPO,
        env=full,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
