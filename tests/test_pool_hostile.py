"""Hostile bundles against the real daemon and the real pool, all at once, beside one good bundle.

Every file outside the bundles holds a marker string. Each hostile bundle
must come back refused, untouched, with a reason naming its line and what to
do; the good one must run (ahead of whatever else the shared pool is busy with:
``priority`` orders one user's jobs); the daemon must live on; and the marker must never
reach the pool (its spool and execute directories), another bundle's inbox
folder, or chtcd's own state, nor may any outside file change.
"""

import os
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
from harness import Chtcd

from chtcd.cli import submit_folder

pytestmark = pytest.mark.pool

MARKER = f"chtcd-hostile-marker-{uuid.uuid4().hex}"
JOB = "executable = run.sh\nrequest_memory = 64MB\n"
RUN = "#!/bin/sh\necho ran > out.txt\n"


def contents_with(root: Path, needle: bytes) -> List[Path]:
    """Every regular file under ``root`` holding ``needle``; symbolic links are not followed."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                if needle in path.read_bytes():
                    found.append(path)
            except (FileNotFoundError, PermissionError):
                continue  # a running job's sandbox can vanish under the walk
    return found


def snapshot(root: Path) -> Dict[str, tuple]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def tree(folder: Path) -> Dict[str, object]:
    """A bundle's files as data: contents, or the target of a symbolic link."""
    out: Dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def test_hostile_bundles_are_refused_and_nothing_outside_leaks(pool, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets"
    (secrets / "dir").mkdir(parents=True)
    for name in ("id_rsa", "dir/key", "victim.log", "victim.txt", "items.txt"):
        (secrets / name).write_text(f"{MARKER}\n")
    tool = secrets / "tool.sh"
    tool.write_text(f"#!/bin/sh\necho {MARKER}\n")
    tool.chmod(0o755)
    touched = tmp_path / "TOUCHED"
    monkeypatch.setenv("CHTCD_TEST_SECRET", MARKER)  # $ENV and getenv are allowed now: test_pool_cleanroom.py
    before = snapshot(secrets)

    chtcd = Chtcd(pool, tmp_path / "chtcd")
    chtcd.config.write_text(chtcd.config.read_text() + "\n[limits]\nmax_upload_mb = 1\n")

    def up(name: str) -> str:
        """The relative path from the bundle's work folder (state/work/<id>/<name>) to the secrets."""
        return os.path.relpath(secrets, chtcd.base / "state" / "work" / "id" / name)

    hostile = {
        "abs-input": ({"abs-input.sub": JOB + f"transfer_input_files = {secrets}/id_rsa\nqueue\n"},
                      ["abs-input.sub line 3: transfer_input_files names", "outside the bundle", "copy the file into the bundle"]),
        "dotdot-input": ({"dotdot-input.sub": JOB + f"transfer_input_files = {up('dotdot-input')}/id_rsa\nqueue\n"},
                         ["dotdot-input.sub line 3: transfer_input_files names ../", "outside the bundle"]),
        "symlink-file": ({"symlink-file.sub": JOB + "transfer_input_files = key\nqueue\n", "@key": f"{secrets}/id_rsa"},
                         ["key is a symbolic link to", "outside the bundle", "copy the real file or folder into the bundle"]),
        "symlink-dir": ({"symlink-dir.sub": JOB + "transfer_input_files = data/\nqueue\n", "@data": f"{secrets}/dir"},
                        ["data is a symbolic link to", "outside the bundle"]),
        "abs-executable": ({"abs-executable.sub": f"executable = {tool}\nqueue\n"},
                           ["abs-executable.sub line 1: executable names", "outside the bundle", "copy the file into the bundle"]),
        "input-dotdot": ({"input-dotdot.sub": JOB + f"input = {up('input-dotdot')}/id_rsa\nqueue\n"},
                         ["input-dotdot.sub line 3: input names ../", "outside the bundle"]),
        "stdin-alias": ({"stdin-alias.sub": JOB + f"stdin = {up('stdin-alias')}/id_rsa\nqueue\n"},
                        ["stdin-alias.sub line 3: stdin names ../", "outside the bundle"]),
        "remap-escape": ({"remap-escape.sub": JOB + f'transfer_output_remaps = "out.txt = {secrets}/victim.txt"\nqueue\n'},
                         ["remap-escape.sub line 3: transfer_output_remaps names", "results may only be written inside"]),
        "log-outside": ({"log-outside.sub": JOB + f"log = {secrets}/victim.log\nqueue\n"},
                        ["log-outside.sub line 3: log names", "results may only be written inside"]),
        "initialdir-outside": ({"initialdir-outside.sub": JOB + f"initialdir = {up('initialdir-outside')}\noutput = victim.txt\nqueue\n"},
                               ["initialdir-outside.sub line 3: initialdir names ../", "use a folder inside the bundle"]),
        "include-pipe": ({"include-pipe.sub": JOB + f"include : /bin/touch {touched} |\nqueue\n"},
                         ["include-pipe.sub line 3 runs a program on this computer", "put the program's output into the bundle"]),
        "include-command": ({"include-command.sub": JOB + f"include ifexist command : /bin/touch {touched}\nqueue\n"},
                            ["include-command.sub line 3 runs a program"]),
        "comment-continued": ({"comment-continued.sub": JOB + f"# a comment \\\ninclude : /bin/touch {touched} |\nqueue\n"},
                              ["comment-continued.sub line 4 runs a program"]),
        "queue-from-abs": ({"queue-from-abs.sub": JOB + f"arguments = $(x)\nqueue x from {secrets}/items.txt\n"},
                           ["queue-from-abs.sub line 4: the queue statement reads items from", "outside the bundle", "copy that file into the bundle"]),
        "hold": ({"hold.sub": JOB + "hold = true\nqueue\n"}, ["hold.sub line 3: hold = true", "remove it"]),
        "too-big": ({"too-big.sub": JOB + "transfer_input_files = big.bin\nqueue\n", "big.bin": "0" * 1_500_000},
                    ["would upload 1.5 MB", "more than the 1 MB allowed ([limits] max_upload_mb)", "osdf://"]),
        "syntax": ({"syntax.sub": JOB + "this line is not a command\nqueue\n"},
                   ["syntax.sub line 3 is not a submit command", "every line must read 'command = value'"]),
        "no-submit": ({"notes.txt": "no submit file here\n"}, ["no submit file in no-submit/", "add one named no-submit.sub"]),
        "two-submits": ({"a.sub": JOB + "queue\n", "b.sub": JOB + "queue\n"},
                        ["several submit files (a.sub, b.sub)", "rename the one you want to two-submits.sub"]),
    }
    good = {
        "good.sub": "executable = run.sh\narguments = $(state)\ninitialdir = state-$(state)\n"
        "transfer_input_files = ../shared.txt, input.txt\noutput = out.txt\nerror = err.txt\nlog = job.log\n"
        "request_memory = 64MB\nrequest_disk = 64MB\npriority = 20\nqueue state from states.txt\n",
        "run.sh": '#!/bin/sh\ncat shared.txt input.txt > result.txt\necho "state $1"\n',
        "shared.txt": "shared\n", "states.txt": "wi\nmn\n",
        "state-wi/input.txt": "wisconsin\n", "state-mn/input.txt": "minnesota\n",
    }

    src = tmp_path / "src"
    for name, files in [*((n, f) for n, (f, _) in hostile.items()), ("good", good)]:
        folder = src / name
        folder.mkdir(parents=True)
        if name != "no-submit" and "run.sh" not in files:
            files = {**files, "run.sh": RUN}
        for rel, text in files.items():
            if rel.startswith("@"):
                (folder / rel[1:]).symlink_to(text)
                continue
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
            if rel.endswith(".sh"):
                (folder / rel).chmod(0o755)

    chtcd.start()
    try:
        for folder in sorted(src.iterdir()):
            submit_folder(folder, chtcd.outbox)
        reports = {name: chtcd.wait_delivered(name, timeout=60) for name in hostile}
        good_report = chtcd.wait_delivered("good", timeout=120)
        assert chtcd.proc.poll() is None, "the daemon must keep running"
    finally:
        assert chtcd.stop() == 0

    for name, (_files, fragments) in hostile.items():
        report = reports[name]
        assert report["outcome"] == "rejected", (name, report)
        for fragment in fragments:
            assert fragment in report["reason"], (name, report["reason"])
        back = tree(chtcd.inbox / name)
        assert back.pop("chtcd-report.json")
        assert back == tree(src / name), f"{name} must come back untouched"

    assert good_report["outcome"] == "delivered", good_report
    assert [j["exit_code"] for j in good_report["jobs"]] == [0, 0]
    for state, full in (("wi", "wisconsin"), ("mn", "minnesota")):
        back = chtcd.inbox / "good" / f"state-{state}"
        assert (back / "result.txt").read_text() == f"shared\n{full}\n"
        assert (back / "out.txt").read_text() == f"state {state}\n"

    needle = MARKER.encode()
    assert contents_with(pool.spool_dir, needle) == []
    assert contents_with(pool.execute_dir, needle) == []
    assert contents_with(chtcd.inbox, needle) == []
    assert contents_with(chtcd.base / "state", needle) == []
    assert snapshot(secrets) == before, "no file outside a bundle may change"
    assert not touched.exists(), "nothing may run while a submit file is read"
