"""`chtcd init`: the config written with every default filled in, the boxes made, the token offered.

Questions are asked only on a terminal; elsewhere the flags and defaults are
used. An existing config is never replaced without a yes typed at a terminal
(the old one is kept beside it as ``.bak``); without a terminal, init refuses
and says so, unless the config it would write is the one already there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional

from . import atomic, tokens
from . import config as configuration
from .layout import Layout

CHTC_DOMAIN = "chtc.wisc.edu"


def full_access_point(name: str) -> str:
    """``ap2002`` -> ``ap2002.chtc.wisc.edu``; a full name is kept."""
    name = name.strip()
    return name if "." in name else f"{name}.{CHTC_DOMAIN}"


def _path(path: Path) -> str:
    home = Path.home()
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


def _s(value: str) -> str:
    return json.dumps(value)


def _n(value: float) -> str:
    return f"{value:g}"


def render(config: configuration.Config) -> str:
    """A config file holding every key with its value, readable and loadable as it stands."""
    pool, paths, daemon = config.pool, config.paths, config.daemon
    lines = [
        "# chtcd configuration, written by `chtcd init`. Every key is here with its value;",
        "# config.example.toml in chtcd's repository says what each one means.",
        "",
        "[pool]",
        f"collector = {_s(pool.collector)}",
        f"access_point = {_s(pool.access_point or '')}",
    ]
    if pool.netid:
        lines.append(f"netid = {_s(pool.netid)}")
    lines += [
        f"token_dir = {_s(_path(pool.token_dir))}",
        f"credd_services = [{', '.join(_s(s) for s in pool.credd_services)}]",
        "",
        "[paths]",
        f"outbox = {_s(_path(paths.outbox))}",
        f"inbox = {_s(_path(paths.inbox))}",
        f"state_dir = {_s(_path(paths.state_dir))}",
        "",
        "[daemon]",
        f"tick_seconds = {_n(daemon.tick_seconds)}",
        f"settle_seconds = {_n(daemon.settle_seconds)}",
        f"hold_grace_seconds = {_n(daemon.hold_grace_seconds)}",
        f"fault_grace_seconds = {_n(daemon.fault_grace_seconds)}",
        f"explain_idle_after_seconds = {_n(daemon.explain_idle_after_seconds)}",
        "",
        "[limits]",
        f"max_upload_mb = {_n(config.limits.max_upload_mb)}",
        "",
        "[notify]",
        f"desktop = {'true' if config.notify.desktop else 'false'}",
        f"on_delivery = {_s(config.notify.on_delivery)}",
        "",
        "[submit]",
        "# Added to every bundle unless its submit file sets them. Defaults: FileSystemDomain =",
        "# the access point, and CHTC's Requirements expression.",
    ]
    lines += [f"{key} = {_s(value)}" for key, value in config.submit.items()]
    return "\n".join(lines) + "\n"


class Terminal:
    """Questions and answers; a stand-in is passed by tests."""

    def __init__(self, interactive: bool, ask: Callable[[str], str] = input, say: Callable[[str], None] = print):
        self.interactive = interactive
        self._ask = ask
        self.say = say

    def value(self, question: str, default: Optional[str]) -> Optional[str]:
        if not self.interactive:
            return default
        shown = f" [{default}]" if default else ""
        answer = self._ask(f"{question}{shown}: ").strip()
        return answer or default

    def yes(self, question: str, default: bool) -> bool:
        if not self.interactive:
            return default
        answer = self._ask(f"{question} [{'Y/n' if default else 'y/N'}] ").strip().lower()
        return default if not answer else answer in ("y", "yes")


def _existing(path: Path) -> Optional[configuration.Config]:
    try:
        return configuration.load(str(path))
    except configuration.ConfigError:
        return None


def init(
    config_arg: Optional[str],
    netid: Optional[str],
    access_point: Optional[str],
    assume_yes: bool,
    term: Optional[Terminal] = None,
) -> int:
    term = term or Terminal(interactive=sys.stdin.isatty() and not assume_yes)
    say = term.say
    path, _ = configuration.resolve_config_path(config_arg)
    old = _existing(path) if path.exists() else None
    base = old or configuration.from_mapping({}, None)

    netid = netid or term.value("Your NetID (the name you log in to CHTC with)", base.pool.netid or os.environ.get("USER"))
    access_point = access_point or term.value(
        "Your access point (e.g. ap2001 or ap2002)", base.pool.access_point
    )
    if not access_point:
        print("chtcd init: give your access point, e.g. --access-point ap2002.chtc.wisc.edu", file=sys.stderr)
        return 2
    outbox = term.value("Outbox: where you drop folders to send", _path(base.paths.outbox))
    inbox = term.value("Inbox: where they come back", _path(base.paths.inbox))

    raw: Dict[str, Dict[str, Any]] = {
        "pool": {"access_point": full_access_point(access_point)},
        "paths": {"outbox": outbox, "inbox": inbox},
    }
    if netid:
        raw["pool"]["netid"] = netid
    fresh = configuration.from_mapping(raw, None)
    config = configuration.Config(
        pool=_replace(base.pool, fresh.pool, ("access_point", "netid")),
        paths=_replace(base.paths, fresh.paths, ("outbox", "inbox")),
        daemon=base.daemon,
        limits=base.limits,
        notify=base.notify,
        submit=base.submit,
        source=path,
    )
    text = render(config)
    configuration.from_mapping(configuration.tomllib.loads(text), path)

    if path.exists() and path.read_text() != text:
        if not term.interactive:
            print(
                f"chtcd init: {path} already exists and is not overwritten without asking; "
                "run chtcd init in a terminal (without --yes) to be asked, or move the file aside first",
                file=sys.stderr,
            )
            return 1
        if not term.yes(f"{path} exists. Replace it (the old one is kept as {path.name}.bak)?", False):
            say(f"kept {path} as it is")
            config = old or config
        else:
            os.replace(path, path.with_name(path.name + ".bak"))
            _write(path, text)
            say(f"wrote {path} (the old one is {path.name}.bak)")
    elif not path.exists():
        _write(path, text)
        say(f"wrote {path}")
    else:
        say(f"{path} is already this config")

    layout = Layout.from_config(config)
    layout.create()
    say(f"outbox: {layout.outbox}\ninbox:  {layout.inbox}")
    _offer_token(config, term, assume_yes)
    say("next: chtcd doctor (checks everything), then chtcd service install (runs chtcd in the background)")
    return 0


def _replace(base: Any, fresh: Any, keys: Iterable[str]) -> Any:
    return replace(base, **{k: getattr(fresh, k) for k in keys if getattr(fresh, k) is not None})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, text.encode(), mode=0o644)


def _offer_token(config: configuration.Config, term: Terminal, assume_yes: bool) -> None:
    access_point = config.require_access_point()
    now = time.time()
    current = tokens.token_expiry(config.pool.token_dir, access_point)
    if current is not None and not current.expired(now) and not current.expiring(now):
        term.say(current.describe(now))
        return
    why = "no token yet" if current is None else current.describe(now)
    if not config.pool.netid:
        term.say(f"{why}: run chtcd token fetch --netid YOUR_NETID")
        return
    if not (assume_yes or term.interactive) or not term.yes(
        f"{why}. Fetch one now (ssh {config.pool.netid}@{access_point} condor_token_fetch)?", True
    ):
        term.say(f"{why}: run chtcd token fetch when you are ready")
        return
    try:
        written = tokens.fetch(config.pool.netid, access_point, config.pool.token_dir)
    except tokens.FetchFailed as exc:
        term.say(f"token not fetched: {exc}")
        return
    expiry = tokens.Expiry(written, tokens.expiry(written))
    term.say(f"token written to {written}; {expiry.describe(now)}")

