"""The configuration: loaded once from TOML, validated, frozen, passed down.

Every key has a default here and in ``config.example.toml``; a mistake in
the file is reported with the key and the file, never as a traceback.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

APP_NAME = "chtcd"

CHTC_REQUIREMENTS = (
    '(TARGET.PoolName == "CHTC") && ((((Target.OpSysMajorVer == 9) && '
    '(Target.OpSysName =!= "Debian") &&  !(Target.OSPool ?: false))) || '
    '(((Target.OSPool ?: false) && ((Target.OSGVO_OS_STRING ?: "") == "RHEL 9")))) && '
    '(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && '
    "(TARGET.Disk >= RequestDisk) && (TARGET.Memory >= RequestMemory) && "
    "((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer))"
)
"""What CHTC's access points add to every job; remote submission must add it itself."""

MIN_TICK_SECONDS = 30
"""CHTC asks remote clients for at most one schedd query per 30 seconds."""


class ConfigError(Exception):
    """A configuration the daemon cannot run with; the message says what to change, `fix` what to run or edit."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class PoolConfig:
    collector: str = "cm.chtc.wisc.edu"
    access_point: Optional[str] = None
    netid: Optional[str] = None
    token_dir: Path = Path("~/.condor/tokens.d").expanduser()
    credd_services: Tuple[str, ...] = ("rdrive", "scitokens")


@dataclass(frozen=True)
class PathsConfig:
    outbox: Path
    inbox: Path
    state_dir: Path


@dataclass(frozen=True)
class DaemonConfig:
    tick_seconds: float = 60.0
    settle_seconds: float = 5.0
    hold_grace_seconds: float = 6 * 3600.0
    fault_grace_seconds: float = 86400.0
    explain_idle_after_seconds: float = 600.0


@dataclass(frozen=True)
class LimitsConfig:
    max_upload_mb: float = 100.0
    env_allowlist: Tuple[str, ...] = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_*", "TZ")


@dataclass(frozen=True)
class NotifyConfig:
    desktop: bool = True
    on_delivery: str = ""


@dataclass(frozen=True)
class Config:
    pool: PoolConfig
    paths: PathsConfig
    daemon: DaemonConfig
    limits: LimitsConfig = LimitsConfig()
    notify: NotifyConfig = NotifyConfig()
    submit: Mapping[str, str] = field(default_factory=dict)
    source: Optional[Path] = None

    def submit_defaults(self) -> Dict[str, str]:
        """Commands every bundle gets unless its own submit file sets them.

        CHTC's guide writes ``FileSystemDomain`` as if it were a command; HTCondor
        only sets the attribute from ``MY.FileSystemDomain``, so that is what is sent.
        """
        defaults = {"Requirements": CHTC_REQUIREMENTS}
        if self.pool.access_point:
            defaults["MY.FileSystemDomain"] = _quoted(self.pool.access_point)
        user = {}
        for key, value in self.submit.items():
            if key.lower().lstrip("+") in ("filesystemdomain", "my.filesystemdomain"):
                key, value = "MY.FileSystemDomain", _quoted(value)
            user[key] = value
        lowered = {k.lower() for k in user}
        merged = {k: v for k, v in defaults.items() if k.lower() not in lowered}
        merged.update(user)
        return merged

    def require_access_point(self) -> str:
        if not self.pool.access_point:
            if self.source is None:  # no config file at all: init writes one and asks for the access point
                raise ConfigError(
                    f"no config file at {default_config_path()}, so no access point: run chtcd init to write one",
                    "chtcd init",
                )
            raise ConfigError(
                f"no access point configured: set access_point in the [pool] table of {self.source}, "
                'for example access_point = "ap2002.chtc.wisc.edu"',
                f"edit {self.source}",
            )
        return self.pool.access_point


def _quoted(value: str) -> str:
    return value if value.startswith('"') else f'"{value}"'


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def default_paths() -> PathsConfig:
    home = Path.home()
    return PathsConfig(
        outbox=home / "chtc" / "outbox",
        inbox=home / "chtc" / "inbox",
        state_dir=platformdirs.user_state_path(APP_NAME),
    )


_SCHEMA: Dict[str, Dict[str, type]] = {
    "pool": {"collector": str, "access_point": str, "netid": str, "token_dir": str, "credd_services": list},
    "paths": {"outbox": str, "inbox": str, "state_dir": str},
    "daemon": {
        "tick_seconds": float, "settle_seconds": float, "hold_grace_seconds": float,
        "fault_grace_seconds": float, "explain_idle_after_seconds": float,
    },
    "limits": {"max_upload_mb": float, "env_allowlist": list},
    "notify": {"desktop": bool, "on_delivery": str},
}


def resolve_config_path(cli_path: Optional[str]) -> Tuple[Path, bool]:
    """Which file to read, and whether the user named it (then it must exist)."""
    if cli_path:
        return Path(cli_path).expanduser(), True
    env = os.environ.get("CHTCD_CONFIG")
    if env:
        return Path(env).expanduser(), True
    return default_config_path(), False


def load(cli_path: Optional[str] = None) -> Config:
    path, named = resolve_config_path(cli_path)
    if not path.exists():
        if named:
            init = f"chtcd init --config {path}"
            raise ConfigError(f"config file {path} does not exist; {init} writes one with every key", init)
        return from_mapping({}, None)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", f"edit {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", f"check the permissions of {path}") from None
    try:
        return from_mapping(raw, path)
    except ConfigError as exc:
        exc.fix = exc.fix or f"edit {path}"  # the file is there: `chtcd init` would not replace it without asking
        raise


def _typed(value: Any, want: type, key: str, where: str) -> Any:
    if want is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if want is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} in {where} must be true or false, got {value!r}")
    if want is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key} in {where} must be a list of strings, got {value!r}")
    if isinstance(value, want) and not isinstance(value, bool):
        return value
    kind = {str: "a string", float: "a number"}[want]
    raise ConfigError(f"{key} in {where} must be {kind}, got {value!r}")


def _submit_value(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"[submit] {key} in {where} must be a string, number or boolean, got {value!r}")


def _is_loopback(collector: str) -> bool:
    host = collector.rsplit(":", 1)[0] if collector.count(":") == 1 else collector
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_mapping(raw: Mapping[str, Any], source: Optional[Path]) -> Config:
    where = str(source) if source else "the built-in defaults"
    tables: Dict[str, Dict[str, Any]] = {}
    submit: Dict[str, str] = {}
    for section, body in raw.items():
        if section == "submit":
            if not isinstance(body, dict):
                raise ConfigError(f"[submit] in {where} must be a table")
            submit = {str(k): _submit_value(v, k, where) for k, v in body.items()}
            continue
        if section not in _SCHEMA:
            known = ", ".join(f"[{s}]" for s in [*_SCHEMA, "submit"])
            raise ConfigError(f"unknown table [{section}] in {where}; known tables: {known}")
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}] in {where} must be a table")
        schema = _SCHEMA[section]
        values = {}
        for key, value in body.items():
            if key not in schema:
                close = difflib.get_close_matches(key, list(schema), n=1)
                meant = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(
                    f"unknown key {key} in [{section}] of {where}; {meant}known keys: {', '.join(schema)}"
                )
            values[key] = _typed(value, schema[key], f"[{section}] {key}", where)
        tables[section] = values

    pool_raw = tables.get("pool", {})
    if "token_dir" in pool_raw:
        pool_raw["token_dir"] = Path(pool_raw["token_dir"]).expanduser()
    pool = PoolConfig(**pool_raw)

    defaults = default_paths()
    paths_raw = {k: Path(v).expanduser() for k, v in tables.get("paths", {}).items()}
    paths = PathsConfig(
        outbox=paths_raw.get("outbox", defaults.outbox),
        inbox=paths_raw.get("inbox", defaults.inbox),
        state_dir=paths_raw.get("state_dir", defaults.state_dir),
    )

    daemon = DaemonConfig(**tables.get("daemon", {}))
    if daemon.tick_seconds < MIN_TICK_SECONDS and not _is_loopback(pool.collector):
        raise ConfigError(
            f"[daemon] tick_seconds = {daemon.tick_seconds:g} in {where} is too short: CHTC asks for "
            f"at most one query per {MIN_TICK_SECONDS} s, so use {MIN_TICK_SECONDS} or more "
            "(shorter ticks are only allowed against a local test pool)"
        )
    for key in ("tick_seconds", "settle_seconds", "hold_grace_seconds", "fault_grace_seconds", "explain_idle_after_seconds"):
        if getattr(daemon, key) < 0 or (key == "tick_seconds" and daemon.tick_seconds <= 0):
            raise ConfigError(f"[daemon] {key} in {where} must be positive")
    limits = LimitsConfig(**tables.get("limits", {}))
    if limits.max_upload_mb <= 0:
        raise ConfigError(f"[limits] max_upload_mb in {where} must be positive")
    notify = NotifyConfig(**tables.get("notify", {}))
    return Config(pool=pool, paths=paths, daemon=daemon, limits=limits, notify=notify, submit=submit, source=source)
