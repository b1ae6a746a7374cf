"""The command line: `chtcd run | status | submit | demo`."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional

from . import __version__
from . import config as configuration
from .atomic import free_name
from .bundle import Rejected, choose_submit_file
from .layout import Layout
from .state import State, StateError, Store


def _fail(message: str, code: int = 2) -> int:
    print(f"chtcd: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from . import condor, daemon, log, tokens
    from .pipeline import Pipeline
    from .restore import restore

    config = configuration.load(args.config)
    access_point = config.require_access_point()
    layout = Layout.from_config(config)
    layout.create()
    try:
        lock = daemon.acquire_lock(layout.lock_file)
    except daemon.AlreadyRunning as exc:
        return _fail(str(exc))
    log.setup(layout.log_file)
    try:
        tokens.check(config.pool.token_dir, access_point)
    except tokens.TokenProblem as exc:
        return _fail(str(exc))
    store = Store(layout.state_file)
    try:
        state = store.load()
    except StateError as exc:
        return _fail(str(exc))
    if store.recovered_from:
        log.get("chtcd").warning("the state file was damaged; recovered from " + store.recovered_from)
    restore(state, layout, time.time())
    access = condor.AccessPoint(config.pool.collector, access_point, config.pool.token_dir)
    pipeline = Pipeline(config, layout, store, state, access)
    try:
        if args.once:
            pipeline.tick(time.time())
            return 0
        return daemon.Daemon(pipeline).serve()
    finally:
        lock.close()


def cmd_status(args: argparse.Namespace) -> int:
    from . import status

    config = configuration.load(args.config)
    layout = Layout.from_config(config)
    if layout.state_file.exists() or layout.state_file.with_name("state.json.prev").exists():
        try:
            state = Store(layout.state_file).load()
        except StateError as exc:
            return _fail(str(exc))
    else:
        state = State(client_id="")
    now = time.time()
    print(status.as_json(state, now) if args.json else status.as_table(state, now))
    return 0


def submit_folder(source: Path, outbox: Path) -> Path:
    """Copy a folder beside its final place in the outbox, then rename it in: never seen half-copied."""
    outbox.mkdir(parents=True, exist_ok=True)
    staging = outbox / f".chtcd-incoming-{secrets.token_hex(4)}"
    shutil.copytree(source, staging, symlinks=True)
    target = free_name(outbox, source.name)
    os.rename(staging, target)
    return target


def cmd_submit(args: argparse.Namespace) -> int:
    source = Path(args.dir).expanduser().resolve()
    if not source.is_dir():
        return _fail(f"{args.dir} is not a folder")
    try:
        choose_submit_file(source)
    except Rejected as exc:
        return _fail(str(exc))
    config = configuration.load(args.config)
    target = submit_folder(source, config.paths.outbox)
    print(f"queued {source.name} as {target}; results will appear in {config.paths.inbox / target.name}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    return demo(keep_pool=args.keep_pool, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chtcd", description="Hands-off remote submission to CHTC.")
    parser.add_argument("--version", action="version", version=f"chtcd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="config file (default: $CHTCD_CONFIG, else the user config folder)")
        return p

    run = with_config(sub.add_parser("run", help="run the daemon in the foreground"))
    run.add_argument("--once", action="store_true", help="one full pass, then exit")
    run.set_defaults(func=cmd_run)

    st = with_config(sub.add_parser("status", help="what the daemon is doing (no schedd query)"))
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    sm = with_config(sub.add_parser("submit", help="put a folder into the outbox safely"))
    sm.add_argument("dir", help="the bundle folder to send")
    sm.set_defaults(func=cmd_submit)

    dm = sub.add_parser("demo", help="try chtcd against a local HTCondor pool, no CHTC account needed")
    dm.add_argument("--keep-pool", action="store_true", help="leave the local pool running afterwards")
    dm.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    dm.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except configuration.ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
