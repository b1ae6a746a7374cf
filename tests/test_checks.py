"""The validator on its own: every rule, the readings HTCondor's parser could take, and no false alarms.

No pool is needed: the clean room only parses locally with the bindings.
`validate` goes through `admission.examine`, the pipeline's own entry point,
so what passes here is what chtcd would submit.
"""

import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chtcd import admission, bundle, checks, condor
from chtcd.bundle import Rejected
from chtcd.demo import example_bundle

NO_LIMIT = 10**12
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def validate(folder: Path, limit: int = NO_LIMIT) -> int:
    """The pipeline's own admission of one bundle (`admission.examine`); returns the bytes it would upload."""
    (verdict,) = admission.examine([folder], {}, condor.DEFAULT_ENV_ALLOWLIST, limit)
    if isinstance(verdict, admission.Refusal):
        raise Rejected(verdict.reason)
    return verdict.upload_bytes


def make(root: Path, name: str, files: Dict[str, str], links: Optional[Dict[str, str]] = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            path.write_text(text)
    for rel, target in (links or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).symlink_to(target)
    return folder


def refused(folder: Path, *fragments: str) -> str:
    with pytest.raises((Rejected, condor.Refused)) as err:
        validate(folder)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


JOB = "executable = run.sh\nrequest_memory = 64MB\n"


@pytest.fixture
def outside(tmp_path):
    """A file beside the bundles, as ~/.ssh/id_rsa would be."""
    path = tmp_path / "secret.txt"
    path.write_text("SECRET\n")
    return path


# ---- a false-positive guard: realistic bundles are never refused -----------------------------


def test_chtc_guide_test_job_passes(tmp_path):
    folder = tmp_path / "test"
    shutil.copytree(example_bundle("test"), folder)
    assert validate(folder) > 0


REALISTIC = {
    "nested inputs, outputs into subfolders": {
        "job.sub": JOB + "arguments = $(Process)\ntransfer_input_files = data/, scripts/prep.py, my data.txt\n"
        "output = logs/out.$(Cluster).$(Process).txt\nerror = logs/err.$(Process).txt\nlog = logs/job.log\n"
        "transfer_output_files = results\nqueue 3\n",
        "run.sh": "#!/bin/sh\n", "data/a/b.csv": "1\n", "data/c.csv": "2\n", "scripts/prep.py": "", "my data.txt": "x",
    },
    "CHTC's many-jobs guide: initialdir per item": {
        "job.sub": JOB + "initialdir = state-$(state)\ntransfer_input_files = ../shared.txt, input.csv\n"
        "output = $(state).out\nlog = ../logs/$(state).log\nqueue state from states.txt\n",
        "run.sh": "", "shared.txt": "", "states.txt": "wi\nmn\n", "logs/": "",
        "state-wi/input.csv": "", "state-mn/input.csv": "",
    },
    "URL inputs and a staged container": {
        "job.sub": JOB + "transfer_input_files = osdf:///chtc/staging/u/big.tar.gz, file:///staging/u/ref.fa, "
        "https://example.org/a.txt, s3://bucket.s3.amazonaws.com/key, local.txt\n"
        "container_image = osdf:///chtc/staging/u/image.sif\noutput_destination = osdf:///chtc/staging/u/out/\nqueue\n",
        "run.sh": "", "local.txt": "",
    },
    "a program on the execute machine": {
        "job.sub": "executable = /usr/bin/python3\ntransfer_executable = false\narguments = script.py\n"
        "transfer_input_files = script.py\nqueue\n",
        "script.py": "print(1)\n",
    },
    "containers: docker, CVMFS, a local image": {
        "job.sub": "universe = container\ncontainer_image = $(image)\nexecutable = run.sh\n"
        "queue image in (docker://rocker/r-ver:4.3, /cvmfs/singularity.opensciencegrid.org/htc/rocky:9, img.sif)\n",
        "run.sh": "", "img.sif": "",
    },
    "item data matching files, remaps, common commands": {
        "job.sub": JOB + "+ProjectName = \"CHTC\"\n+WantGlideIn = true\nrequirements = (OpSysMajorVer == 9) || (OpSysMajorVer == 8)\n"
        "transfer_input_files = $(f)\ntransfer_output_remaps = \"out.txt = results/$Fn(f).txt; log.txt=results/$(Process).log\"\n"
        "on_exit_hold = ExitCode != 0\nperiodic_release = (NumJobStarts < 3)\nmax_retries = 2\n"
        "output = $INT(Process,%04d).out\narguments = \"a|b\" $(f)\nqueue f matching files *.csv\n",
        "run.sh": "", "a.csv": "", "b.csv": "", "results/": "",
    },
    "include, comments that look dangerous, /dev/null": {
        "job.sub": "# include : /bin/touch nothing |\n# input = /etc/passwd\ninclude : common.inc\n"
        "input = /dev/null\noutput = /dev/null\ntransfer_input_files = $CHOICE(Process, a.txt, b.txt)\nqueue 2\n",
        "common.inc": JOB, "run.sh": "", "a.txt": "", "b.txt": "",
    },
}


@pytest.mark.parametrize("files", REALISTIC.values(), ids=list(REALISTIC))
def test_realistic_bundles_pass(tmp_path, files):
    validate(make(tmp_path, "job", files))


def test_symlinks_that_stay_inside_pass(tmp_path):
    folder = make(tmp_path, "job", {"job.sub": JOB + "transfer_input_files = current, data.txt\nqueue\n", "run.sh": "", "v2/x": "", "data/real.txt": ""},
                  links={"current": "v2", "data.txt": "data/real.txt"})
    validate(folder)


# ---- the rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, fragments",
    [
        ("transfer_input_files = {outside}", ["line 3: transfer_input_files names", "outside the bundle", "copy the file into the bundle"]),
        ("transfer_input_files = ../secret.txt", ["transfer_input_files names ../secret.txt", "outside the bundle"]),
        ("input = ../secret.txt", ["line 3: input names ../secret.txt", "outside the bundle"]),
        ("stdin = ../secret.txt", ["line 3: stdin names", "outside the bundle"]),
        ("container_image = {outside}", ["container_image names", "outside"]),
        ("x509userproxy = {outside}", ["x509userproxy names", "outside"]),
        ("transfer_plugins = mine={outside}", ["transfer_plugins names", "outside"]),
        ("output = ../escape.txt", ["line 3: output names ../escape.txt", "results may only be written inside"]),
        ("error = /tmp/escape.err", ["error names /tmp/escape.err", "outside the bundle"]),
        ("log = {outside}.log", ["line 3: log names", "outside the bundle"]),
        ("UserLog = /tmp/x.log", ["UserLog names /tmp/x.log", "outside"]),
        ("stdout = ../x", ["stdout names ../x", "outside"]),
        ('transfer_output_remaps = "out.txt = /tmp/out.txt"', ["transfer_output_remaps names /tmp/out.txt", "outside"]),
        ('transfer_output_remaps = "a = ok.txt; b = ../up.txt"', ["transfer_output_remaps names ../up.txt"]),
        ('transfer_output_remaps = "a\\=b = /tmp/x"', ["transfer_output_remaps names /tmp/x"]),
        ("transfer_output_files = ../x", ["transfer_output_files names ../x", "without .."]),
        ("output_directory = /tmp", ["output_directory names /tmp", "outside"]),
        ("initialdir = /tmp", ["line 3: initialdir names /tmp", "outside the bundle", "relative name"]),
        ("initialdir = ..", ["initialdir names ..", "outside"]),
        ("iwd = ..", ["iwd names ..", "outside"]),
        ("initial_dir = nowhere", ["initial_dir = nowhere does not exist", "create that folder"]),
        ("hold = true", ["line 3: hold = true", "remove it"]),
        ("universe = local", ["universe = local", "vanilla, container, docker"]),
        ("universe = java\njar_files = {outside}", ["universe = java"]),
        ("docker_send_credentials = true", ["sends credentials"]),
        ("use_x509userproxy = true", ["default proxy file", "outside the bundle"]),
        ("tool_daemon_cmd = {outside}", ["tool daemons"]),
        ("+TransferInput = \"{outside}\"", ["line 3 sets the job attribute TransferInput directly", "use the submit command"]),
        ("MY.Iwd = \"/\"", ["job attribute Iwd"]),
        ("transfer_input_files = missing.txt", ["missing.txt, which does not exist in the bundle", "add it or fix the name"]),
    ],
)
def test_each_rule_refuses_with_the_line_and_what_to_do(tmp_path, outside, line, fragments):
    folder = make(tmp_path, "job", {"job.sub": JOB + line.format(outside=outside) + "\nqueue\n", "run.sh": ""})
    refused(folder, *fragments)


def test_absolute_transferred_executable_is_refused_but_a_remote_one_is_not(tmp_path, outside):
    refused(make(tmp_path, "a", {"a.sub": f"executable = {outside}\nqueue\n"}), "a.sub line 1: executable names", "outside the bundle")
    validate(make(tmp_path, "b", {"b.sub": f"executable = {outside}\ntransfer_executable = false\nqueue\n"}))
    refused(make(tmp_path, "c", {"c.sub": f"Cmd = {outside}\nqueue\n"}), "Cmd names", "outside")


def test_transfer_executable_false_under_one_name_only_is_not_trusted(tmp_path, outside):
    folder = make(tmp_path, "a", {"a.sub": f"executable = {outside}\ntransfer_executable = false\nTransferExecutable = true\nqueue\n"})
    refused(folder, "executable names", "outside")


def test_symlinked_file_and_folder_pointing_out_are_refused(tmp_path, outside):
    refused(make(tmp_path, "f", {"f.sub": JOB + "queue\n", "run.sh": ""}, links={"key": str(outside)}),
            "key is a symbolic link to", "copy the real file or folder")
    refused(make(tmp_path, "d", {"d.sub": JOB + "queue\n", "run.sh": ""}, links={"data/home": str(outside.parent)}),
            "data/home is a symbolic link", "outside the bundle")


def test_symlinked_submit_file_pointing_out_is_not_read(tmp_path):
    (tmp_path / "elsewhere.sub").write_text("include : /bin/touch read |\nqueue\n")
    folder = make(tmp_path, "s", {}, links={"s.sub": str(tmp_path / "elsewhere.sub")})
    refused(folder, "s.sub is a symbolic link", "outside the bundle")


def test_broken_link_inside_a_sent_folder_is_refused_not_a_crash(tmp_path):
    folder = make(tmp_path, "b", {"b.sub": JOB + "transfer_input_files = data\nqueue\n", "run.sh": "", "data/a": ""},
                  links={"data/gone": "nothing"})
    refused(folder, "data/gone in it cannot be read", "symbolic link to nothing")


def test_named_pipe_in_the_bundle_is_refused(tmp_path):
    folder = make(tmp_path, "p", {"p.sub": JOB + "input = fifo\nqueue\n", "run.sh": ""})
    os.mkfifo(folder / "fifo")
    refused(folder, "fifo is a named pipe", "remove it")


def test_device_files_and_sockets_in_the_bundle_are_refused(tmp_path):
    import socket
    import stat

    folder = make(tmp_path, "d", {"d.sub": JOB + "queue\n", "run.sh": ""})
    try:
        os.mknod(folder / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device file needs root")
    refused(folder, "null is a device file", "remove it")
    (folder / "null").unlink()
    listening = socket.socket(socket.AF_UNIX)
    try:
        listening.bind(str(folder / "sock"))
        refused(folder, "sock is a socket", "remove it")
    finally:
        listening.close()


def test_a_file_name_with_a_folder_name_htcondor_cannot_carry(tmp_path):
    refused(make(tmp_path, "a,b", {"a,b.sub": JOB + "queue\n", "run.sh": ""}), "characters HTCondor cannot carry")


def test_upload_limit_names_the_size_and_staging(tmp_path):
    folder = make(tmp_path, "big", {"big.sub": JOB + "transfer_input_files = data.bin\nqueue\n", "run.sh": "", "data.bin": "x" * 3_000_000})
    with pytest.raises(Rejected) as err:
        validate(folder, limit=1_000_000)
    assert "3.0 MB" in str(err.value) and "max_upload_mb" in str(err.value) and "osdf://" in str(err.value)
    assert validate(folder, limit=5_000_000) >= 3_000_000


def test_a_shared_input_counts_once_per_job_and_the_refusal_gives_the_staging_line(tmp_path):
    """Spooling sends a job's files once per job (20 jobs, one 3 MB file: 60 MB sent), its executable too."""
    folder = make(tmp_path, "shared", {"shared.sub": JOB + "transfer_input_files = data.bin\nqueue 20\n", "run.sh": "x" * 1000, "data.bin": "x" * 3_000_000})
    assert validate(folder) == 20 * (3_000_000 + 1000)
    with pytest.raises(Rejected) as err:
        validate(folder, limit=10_000_000)
    message = str(err.value)
    assert "60.0 MB" in message and "data.bin (3.0 MB) travels 20 times" in message
    assert "transfer_input_files = osdf:///chtc/staging/NETID/data.bin" in message


def test_no_submit_file_and_two_without_a_choice(tmp_path):
    refused(make(tmp_path, "none", {"x.txt": ""}), "no submit file", "none.sub")
    refused(make(tmp_path, "two", {"a.sub": "queue\n", "b.sub": "queue\n"}), "a.sub, b.sub", "two.sub")


def test_syntax_error_names_the_line(tmp_path):
    refused(make(tmp_path, "syn", {"syn.sub": JOB + "this is not a command\nqueue\n", "run.sh": ""}), "syn.sub line 3 is not a submit command")


# ---- every job is checked, as HTCondor numbers it ------------------------------------------


def test_every_process_of_a_counted_queue_is_checked(tmp_path, outside):
    folder = make(tmp_path, "n", {"n.sub": JOB + f"transfer_input_files = $CHOICE(Process, a.txt, a.txt, {outside})\nqueue 3\n", "run.sh": "", "a.txt": ""})
    refused(folder, "transfer_input_files names", str(outside))


def test_process_counts_across_items_and_step_within_one(tmp_path):
    folder = make(tmp_path, "q", {"q.sub": "input = $(x).$(Step).$(Process)\nqueue 2 x from list.txt\n", "list.txt": "a\nb\n"})
    found = bundle.read(folder)
    jobs = condor.describe(found.text, folder, checks.FILE_COMMANDS).jobs
    assert [j["input"] for j in jobs] == ["a.0.0", "a.1.1", "b.0.2", "b.1.3"]


def test_item_variable_named_like_a_command_is_checked(tmp_path, outside):
    folder = make(tmp_path, "v", {"v.sub": JOB + "queue input from list.txt\n", "run.sh": "", "list.txt": f"{outside}\n"})
    refused(folder, "input names", "outside")


def test_initialdir_per_item_outside_is_refused(tmp_path):
    folder = make(tmp_path, "i", {"i.sub": JOB + "initialdir = $(d)\nqueue d from dirs.txt\n", "run.sh": "", "dirs.txt": "ok\n..\n", "ok/": ""})
    refused(folder, "initialdir names ..", "outside")


def test_two_initialdir_names_are_refused(tmp_path):
    folder = make(tmp_path, "i", {"i.sub": JOB + "initialdir = a\niwd = b\nqueue\n", "run.sh": "", "a/": "", "b/": ""})
    refused(folder, "sets the job's folder twice", "keep only initialdir")


def test_too_many_jobs_are_refused(tmp_path):
    refused(make(tmp_path, "many", {"many.sub": JOB + "queue 1000000\n", "run.sh": ""}), "1000000 jobs", "split it")


@pytest.mark.parametrize(
    "line",
    [
        "log = $RANDOM_CHOICE(a.log, /tmp/x.log)",
        "output = $EVAL(ifThenElse(random(2) == 0, \"a\", \"/tmp/b\"))",
        "log = $CHOICE($(Cluster), a.log, /tmp/x.log)",
        "which = $(ClusterId)\nlog = $CHOICE(which, a.log, /tmp/x.log)",
        "pick = $SUBSTR(far, $(ClusterId))\nfar = ../../x\noutput = $(pick)",
    ],
)
def test_names_that_change_between_check_and_submit_are_refused(tmp_path, line):
    folder = make(tmp_path, "r", {"r.sub": JOB + line + "\nqueue\n", "run.sh": ""})
    refused(folder, "can differ between chtcd's check and the real submission")


def test_plain_cluster_numbers_in_names_pass(tmp_path):
    validate(make(tmp_path, "c", {"c.sub": JOB + "output = o.$(Cluster).$(ClusterId).$(Process)\nlog = $INT(Cluster,%06d).log\n"
                                  "error = $CHOICE(Process, a, b)_$(Cluster).err\nqueue 2\n", "run.sh": ""}))


# ---- nothing runs, nothing outside is read, while the file is read --------------------------


def _marker_lines(marker: Path):
    return [
        f"include : /bin/touch {marker} |",
        f"include : touch {marker} | cat",
        f"include command : touch {marker}",
        f"include ifexist command : touch {marker}",
        f"@include : touch {marker} |",
        f"INCLUDE output into x.inc : touch {marker}",
        f"queue x from touch {marker} |",
        f"queue x from touch {marker}|x",
        f"# a comment \\\ninclude : touch {marker} |",
        f"x = 1\\\n# commented continuation |\ninclude : touch {marker} |",
        f"include : touch {marker} \x0b| x",
        f"include : touch {marker} \r\n|",
    ]


@pytest.mark.parametrize("index", range(12))
def test_no_reading_runs_a_program(tmp_path, index):
    marker = tmp_path / "MARKER"
    line = _marker_lines(marker)[index]
    folder = make(tmp_path, "evil", {"evil.sub": JOB + line + "\nqueue\n", "run.sh": ""})
    refused(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("queue x from {outside}", "outside the bundle"),
        ("queue x from [1:] ../secret.txt", "outside the bundle"),
        ("queue x from $(list)", "built from macros"),
        ("queue x matching ../*", "reaches outside the bundle"),
        ("queue x matching files /etc/*.conf", "reaches outside"),
        ("include : {outside}", "outside the bundle"),
        ("include : link.inc", "outside the bundle"),
    ],
)
def test_reading_outside_is_refused(tmp_path, outside, line, fragment):
    files = {"q.sub": JOB + line.format(outside=outside) + "\nqueue\n", "run.sh": ""}
    folder = make(tmp_path, "q", files, links={"link.inc": str(outside)})
    with pytest.raises(Rejected, match=None) as err:
        bundle.read(folder)
    assert fragment in str(err.value)


def test_env_and_getenv_are_accepted_and_see_only_the_allowlist(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "leaked")
    folder = make(tmp_path, "m", {"m.sub": JOB + "getenv = true\narguments = $(f) $ENV(HOME) $ENV(CHTCD_TEST_SECRET)\n"
                                  "queue f matching files *\n", "run.sh": ""})
    (folder / "$ENV(CHTCD_TEST_SECRET)").write_text("")
    assert validate(folder) == 0
    description = condor.describe(bundle.read(folder).text, folder, checks.FILE_COMMANDS)
    assert not any("leaked" in v for vs in description.varying.values() for v in vs)
    assert "leaked" not in repr(description.shared)
    assert description.env_refused == ["CHTCD_TEST_SECRET"]


# ---- property tests: refused iff the resolved path leaves the bundle ---------------------------

PARTS = st.sampled_from(["a.txt", "sub", "deep", "b.txt", "..", ".", "in_link", "out_link", "nothing"])
COMMANDS = st.sampled_from(["transfer_input_files", "input", "output", "error", "log", "remap", "executable"])
UPLOADS = {"transfer_input_files", "input", "executable"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """bundle/{a.txt, sub/{b.txt, deep/}, in_link -> sub, out_link -> ../outside}, outside/{a.txt, b.txt}."""
    root = tmp_path_factory.mktemp("tree")
    folder = root / "bundle"
    (folder / "sub" / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    (root / "outside").mkdir()
    (root / "outside" / "a.txt").write_text("SECRET")
    (root / "outside" / "b.txt").write_text("SECRET")
    (folder / "in_link").symlink_to("sub")
    (folder / "out_link").symlink_to("../outside")
    return root


def _resolve(root: Path, parts):
    """Where a path lands, worked out by hand from the tree's known layout (not with realpath)."""
    links = {("bundle", "in_link"): ["bundle", "sub"], ("bundle", "out_link"): ["outside"]}
    dirs = {("bundle",), ("bundle", "sub"), ("bundle", "sub", "deep"), ("outside",), ()}
    files = {("bundle", "a.txt"), ("bundle", "sub", "b.txt"), ("outside", "a.txt"), ("outside", "b.txt")}
    at, escaped, broken = ["bundle"], 0, False
    for part in parts:
        broken |= tuple(at) not in dirs  # the kernel stops at a file or a missing folder: ENOTDIR, ENOENT
        if part in ("", "."):
            continue
        if part == "..":
            if at:
                at.pop()
            else:
                escaped += 1
            continue
        at = at + [part]
        at = list(links.get(tuple(at), at))
    inside = not escaped and at[:1] == ["bundle"]
    exists = inside and not broken and (tuple(at) in files or tuple(at) in dirs)
    return inside, exists


@PROPERTY
@given(command=COMMANDS, parts=st.lists(PARTS, min_size=1, max_size=5), absolute=st.booleans())
def test_paths_are_refused_iff_they_leave_the_bundle(tree, command, parts, absolute):
    folder = tree / "bundle"
    value = ("/".join([str(folder)] + parts)) if absolute else "/".join(parts)
    line = f'transfer_output_remaps = "out.txt = {value}"' if command == "remap" else f"{command} = {value}"
    if command != "executable":
        line += "\nexecutable = sub/b.txt"
    (folder / "job.sub").write_text(line + "\nqueue\n")
    inside, exists = _resolve(tree, parts)
    text = (folder / "job.sub").read_text()
    description = condor.describe(bundle.read(folder).text, folder, checks.FILE_COMMANDS)
    try:
        checks.check(description, folder, text, "job.sub", NO_LIMIT)
    except Rejected as err:
        assert not inside or (command in UPLOADS and not exists), str(err)
        assert ("outside the bundle" in str(err)) == (not inside), str(err)
    else:
        assert inside and (exists or command not in UPLOADS)


LINK_TARGETS = st.sampled_from(
    ["a.txt", "sub", "sub/b.txt", "../bundle/a.txt", "../outside", "../outside/a.txt", "sub/../../outside", "./sub/..",
     "nothing", "../nothing", "/etc", "{root}/bundle/sub", "{root}/outside/a.txt", "..", "."]
)


@PROPERTY
@given(links=st.lists(st.tuples(st.sampled_from(["", "sub/"]), LINK_TARGETS), min_size=1, max_size=4))
def test_symlinks_are_refused_iff_they_point_out_of_the_bundle(tmp_path, links):
    root = Path(os.path.realpath(tmp_path)) / f"case{len(list(tmp_path.iterdir()))}"
    folder = root / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("")
    (folder / "sub" / "b.txt").write_text("")
    (root / "outside").mkdir()
    (root / "outside" / "a.txt").write_text("")
    escapes = False
    for index, (where, target) in enumerate(links):
        target = target.format(root=root)
        (folder / where / f"link{index}").symlink_to(target)
        landed = os.path.normpath(os.path.join(folder / where, target))
        escapes |= not (landed == str(folder) or landed.startswith(str(folder) + os.sep))
    if escapes:
        with pytest.raises(Rejected, match="symbolic link to .*outside the bundle"):
            checks.check_names(folder)
    else:
        checks.check_names(folder)


REMAP_SOURCES = st.text(alphabet="ab./ =", min_size=1, max_size=10)
REMAP_TARGETS = st.text(alphabet="ab./ =;", min_size=1, max_size=10)


@PROPERTY
@given(pairs=st.lists(st.tuples(REMAP_SOURCES, REMAP_TARGETS), min_size=1, max_size=4), quoted=st.booleans())
def test_remaps_are_split_as_htcondor_splits_them(pairs, quoted):
    """A backslash escapes the separator being looked for (= in a name, ; in a target), spaces around go:
    every target HTCondor writes to is one chtcd checks."""
    text = "; ".join(f"{src.replace('=', chr(92) + '=')} = {dst.replace(';', chr(92) + ';')}" for src, dst in pairs)
    parsed = list(checks.remaps(f'"{text}"' if quoted else text))
    assert parsed == [(src.strip(" "), dst.strip(" ")) for src, dst in pairs]


# ---- fuzz: whatever the text, only a refusal comes out, and nothing runs ---------------------

_VALUES = st.one_of(
    st.sampled_from(["a.txt", "../x", "/etc/passwd", "$(Process)", "$(x)", "$ENV(HOME)", "$RANDOM_CHOICE(a,b)",
                     "osdf:///x", "sub/", "\"q\"", "a,b", "$CHOICE(Cluster, a, /x)", "true", "x|y", "\\"]),
    st.text(max_size=20),
)
_RUN = st.sampled_from(["touch {marker} |", "touch {marker}", "touch {marker} | cat", "/bin/touch {marker}|", "inc.sub", "a.txt"])
_LINE = st.one_of(
    st.builds(lambda c, v: f"{c} = {v}", st.sampled_from(list(checks.FILE_COMMANDS) + ["arguments", "x", "+Foo", "MY.Iwd"]), _VALUES),
    st.builds(lambda at, k, t: f"{at}include {k}: {t}", st.sampled_from(["", "@"]),
              st.sampled_from(["", "ifexist ", "command ", "ifexist command ", "output into y ", "IFEXIST ", "output "]), _RUN),
    st.builds(lambda q, t: f"queue {q}".replace("{run}", t), st.sampled_from(["", "3", "x from list.txt", "x in (a, b)", "x matching *",
                                                                            "x from {run}", "2 x from [1:] list.txt", "$(n)", "x from (", "-1"]), _RUN),
    st.sampled_from(["# c \\", "\\", "x = a \\", "#", "# |", "", "if $(x)", "else", "endif", "error : stop", "use template : x", "\x0b| x"]),
    st.text(max_size=30),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
)


@FUZZ
@given(lines=st.lists(_LINE, max_size=8), crlf=st.booleans())
def test_fuzzed_submit_files_only_ever_refuse_and_never_run_anything(tmp_path, lines, crlf):
    marker = tmp_path / "MARKER"
    marker.unlink(missing_ok=True)
    shutil.rmtree(tmp_path / "fuzz", ignore_errors=True)
    folder = make(tmp_path, "fuzz", {"list.txt": "a\nb\n", "a.txt": "", "inc.sub": "x = 1\n", "sub/": ""})
    text = ("\r\n" if crlf else "\n").join(line.replace("{marker}", str(marker)) for line in lines)
    (folder / "fuzz.sub").write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        validate(folder)
    except (Rejected, condor.Refused):
        pass
    assert not marker.exists()
