"""The command line: each command a thin function over the module that does the work.

    chtcd init | token fetch | doctor | service ... | run | status | submit
          cancel | retry | pause | resume | logs | demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

from . import __version__
from . import config as configuration
from .layout import Layout


def _fail(message: str, code: int = 2) -> int:
    print(f"chtcd: {message}", file=sys.stderr)
    return code


def _stop_during_start_up(signum: int, _frame: object) -> None:
    """A SIGTERM before the daemon serves is still a clean stop: nothing has been changed yet."""
    raise SystemExit(0)


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    signal.signal(signal.SIGTERM, _stop_during_start_up)
    from . import condor, daemon, log, notify, tokens
    from .pipeline import Pipeline
    from .restore import restore
    from .state import StateError, Store

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
    expiry = tokens.token_expiry(config.pool.token_dir, access_point)
    if expiry is not None and (expiry.expired(time.time()) or expiry.expiring(time.time())):
        log.get("chtcd").warning(expiry.describe(time.time()) + "; run chtcd token fetch")
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
    watcher = notify.Watcher(notify.Notifier(config), state)
    try:
        if args.once:
            pipeline.tick(time.time())
            for thread in watcher.look(pipeline.state):
                thread.join()
            return 0
        return daemon.Daemon(pipeline, after_step=lambda: watcher.look(pipeline.state)).serve()
    finally:
        lock.close()


def cmd_status(args: argparse.Namespace) -> int:
    from . import glance, status

    config = configuration.load(args.config)
    layout = Layout.from_config(config)
    try:
        state = status.read(layout, [args.name] if args.name else ())
    except glance.Unreadable as exc:
        return _fail(str(exc))
    now = time.time()
    overview = status.Overview.read(layout, config.pool.token_dir, config.pool.access_point)
    for warning in overview.warnings(now):
        print(f"chtcd: {warning}", file=sys.stderr)
    if args.name:
        found = status.matching(state, args.name)
        if not found:
            return _fail(f"chtcd knows no bundle named {args.name}; `chtcd status` lists them", 1)
        if args.json:
            print(json.dumps([status.bundle_summary(r, now, full=True) for r in found]))
        else:
            print("\n\n".join(status.detail(r, now, overview) for r in found))
        return 0
    print(status.as_json(state, now, overview) if args.json else status.as_table(state, now, overview))
    return 0


def special_files(source: Path) -> List[Path]:
    """Pipes, sockets and devices: copying one would hang or read a device, and HTCondor cannot send them."""
    found = []
    for dirpath, dirnames, filenames in os.walk(source):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not (path.is_symlink() or path.is_file() or path.is_dir()):
                found.append(path)
    return found


def submit_folder(source: Path, outbox: Path) -> Path:
    """Copy a folder beside its final place in the outbox, then rename it in: never seen half-copied."""
    import secrets  # here and below, not at the top: `chtcd status` starts faster without them
    import shutil

    from .atomic import free_name
    from .bundle import Rejected

    special = special_files(source)
    if special:
        raise Rejected(
            f"{special[0]} is not a regular file (a pipe, socket or device); HTCondor cannot send it: remove it"
        )
    outbox.mkdir(parents=True, exist_ok=True)
    staging = outbox / f".chtcd-incoming-{secrets.token_hex(4)}"
    shutil.copytree(source, staging, symlinks=True)
    target = free_name(outbox, source.name)
    os.rename(staging, target)
    return target


def cmd_submit(args: argparse.Namespace) -> int:
    from .bundle import Rejected, choose_submit_file

    source = Path(args.dir).expanduser().resolve()
    if not source.is_dir():
        return _fail(f"{args.dir} is not a folder")
    try:
        choose_submit_file(source)
    except Rejected as exc:
        return _fail(str(exc))
    config = configuration.load(args.config)
    try:
        target = submit_folder(source, config.paths.outbox)
    except Rejected as exc:
        return _fail(str(exc))
    print(f"queued {source.name} as {target}; results will appear in {config.paths.inbox / target.name}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from .firstrun import init

    return init(args.config, args.netid, args.access_point, args.yes)


def cmd_token_fetch(args: argparse.Namespace) -> int:
    from . import tokens

    config = configuration.load(args.config)
    access_point = config.require_access_point()
    netid = args.netid or config.pool.netid
    if not netid:
        return _fail("give your NetID: chtcd token fetch --netid NETID (or set netid in [pool])")
    try:
        path = tokens.fetch(netid, access_point, config.pool.token_dir)
    except tokens.FetchFailed as exc:
        return _fail(str(exc), 1)
    expiry = tokens.Expiry(path, tokens.expiry(path))
    print(f"token written to {path} (mode 600); {expiry.describe(time.time())}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from . import doctor

    return doctor.run(args.config)


def cmd_service(args: argparse.Namespace) -> int:
    from . import service

    try:
        if args.action == "status":
            print(service.state().describe())
            return 0
        if args.action == "install":
            config = configuration.load(args.config)
            config.require_access_point()
            path, _ = configuration.resolve_config_path(args.config)
            if not path.exists():
                return _fail(f"no config file at {path}: run chtcd init first")
            plan = service.plan_install(path.resolve())
        else:
            plan = service.plan_uninstall()
        if args.dry_run:
            print(plan.describe())
            return 0
        for line in plan.carry_out():
            print(line)
    except service.ServiceError as exc:
        return _fail(str(exc), 1)
    if args.action == "install":
        print("chtcd is running as a service; chtcd status shows what it does, chtcd logs what it did")
    return 0


def _layout(args: argparse.Namespace) -> Tuple[configuration.Config, Layout]:
    config = configuration.load(args.config)
    return config, Layout.from_config(config)


def _daemon_note(layout: Layout) -> str:
    from . import heartbeat

    if heartbeat.read(layout.heartbeat_file) is not None:
        return ""
    return " (no daemon is running now: it happens when chtcd starts)"


def cmd_cancel(args: argparse.Namespace) -> int:
    from . import control, status
    from .state import StateError

    config, layout = _layout(args)
    try:
        message = control.request_cancel(layout, args.name, status.read_state(layout), config.pool.access_point or "")
    except (control.ControlError, StateError) as exc:
        return _fail(str(exc), 1)
    print(message + ("" if "back in" in message else _daemon_note(layout)))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from . import control, status
    from .state import StateError

    _config, layout = _layout(args)
    try:
        if not (layout.inbox / args.name).is_dir() and control.in_trouble(status.read_state(layout), args.name):
            control.request_retry(layout, args.name)
            print(f"asked the daemon to try {args.name} again on its next tick, without waiting out its backoff" + _daemon_note(layout))
            return 0
        target = control.retry(layout, args.name)
    except (control.ControlError, StateError) as exc:
        return _fail(str(exc), 1)
    print(f"{args.name} is back in the outbox as {target} and will be sent again" + _daemon_note(layout))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from . import control

    _config, layout = _layout(args)
    if args.command == "pause":
        changed = control.pause(layout)
        print(
            ("paused" if changed else "already paused")
            + ": new folders wait in the outbox; bundles in flight are still tracked and delivered. chtcd resume to go on"
        )
    else:
        changed = control.resume(layout)
        print(("resumed" if changed else "was not paused") + ": folders in the outbox are taken again" + _daemon_note(layout))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from . import logview

    _config, layout = _layout(args)
    if not layout.log_file.exists() and not args.follow:
        return _fail(f"no log yet at {layout.log_file}: the daemon has not run with this config", 1)
    logview.show(layout.log_file, args.lines)
    if args.follow:
        sys.stdout.flush()
        logview.follow(layout.log_file, out=lambda line: print(line, flush=True))
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

    it = with_config(sub.add_parser("init", help="write the config, make the outbox and inbox, fetch the token"))
    it.add_argument("--netid", help="your NetID")
    it.add_argument("--access-point", help="your access point, e.g. ap2002.chtc.wisc.edu (ap2002 will do)")
    it.add_argument("--yes", action="store_true", help="ask nothing: take the flags and the defaults (never overwrites a config)")
    it.set_defaults(func=cmd_init)

    tk = sub.add_parser("token", help="your HTCondor token")
    tk_sub = tk.add_subparsers(dest="token_command", required=True)
    tf = with_config(tk_sub.add_parser("fetch", help="ssh NETID@AP condor_token_fetch, stored privately"))
    tf.add_argument("--netid", help="your NetID (default: netid in [pool])")
    tf.set_defaults(func=cmd_token_fetch)

    dr = with_config(sub.add_parser("doctor", help="check everything a run needs, with a fix for each problem"))
    dr.set_defaults(func=cmd_doctor)

    sv = with_config(sub.add_parser("service", help="run chtcd in the background (systemd user unit, launchd agent)"))
    sv.add_argument("action", choices=["install", "uninstall", "status"])
    sv.add_argument("--dry-run", action="store_true", help="print what would be written and run, change nothing")
    sv.set_defaults(func=cmd_service)

    st = with_config(sub.add_parser("status", help="what the daemon is doing (no schedd query)"))
    st.add_argument("name", nargs="?", help="one bundle in detail, with hold reasons")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    cn = with_config(sub.add_parser("cancel", help="remove a bundle's jobs and return it to the inbox"))
    cn.add_argument("name", help="the bundle's folder name")
    cn.set_defaults(func=cmd_cancel)

    rt = with_config(sub.add_parser("retry", help="send a bundle from the inbox through again, or try a bundle in trouble now"))
    rt.add_argument("name", help="the folder's name in the inbox")
    rt.set_defaults(func=cmd_retry)

    for verb, words in (("pause", "stop taking new bundles (tracking goes on)"), ("resume", "take new bundles again")):
        with_config(sub.add_parser(verb, help=words)).set_defaults(func=cmd_pause)

    lg = with_config(sub.add_parser("logs", help="the daemon's log, readably"))
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lg.add_argument("-n", "--lines", type=int, default=50, help="how many of the last lines to show first")
    lg.set_defaults(func=cmd_logs)

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
