"""The clean room (issue 12): one parse and expansion, in a child with nothing of this computer; exactly those values sent.

No pool is needed: `condor.describe` starts the clean room, `condor.submission`
builds what `AccessPoint.submit` hands the bindings, and the bindings' own
parser (in this process, on chtcd's escaped text only) shows what the schedd
would get. `tests/test_pool_cleanroom.py` does it against the real pool.
"""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chtcd import bundle, checks, condor
from chtcd.config import from_mapping

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def folder_with(tmp_path: Path, text: str, **files: str) -> Path:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "b.sub").write_text(text)
    for name, body in files.items():
        (folder / name).write_text(body)
    return folder


def describe(folder: Path, **kw) -> condor.Description:
    return condor.describe(bundle.read(folder).text, folder, checks.FILE_COMMANDS, **kw)


def daemon_parse(text: str, rows: str, items: Path) -> list:
    """What the bindings make of chtcd's submission text, job by job, as the real submit parses it."""
    items.write_text(rows or "")
    sub = condor._bindings().Submit(text)
    sub["ClusterId"] = "4242"
    jobs = []
    for row in sub.itemdata() or [{}]:
        for key, value in row.items():
            sub[key] = value
        jobs.append({k: sub.expand(k) for k in sub.keys() if not k.startswith("chtcd_v") and k != "ClusterId"})
    return jobs


def test_composed_env_sees_only_the_allowlist_and_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "leaked")
    monkeypatch.setenv("_CONDOR_CHTCD_KNOB", "leaked-knob")
    folder = folder_with(tmp_path, "A = $\nB = $CHOICE(0, $)\narguments = $(A)ENV(CHTCD_TEST_SECRET) $(B)ENV(HOME) $(CHTCD_KNOB)\nqueue\n")
    description = describe(folder)
    assert description.shared["arguments"] == f"UNDEFINED {Path.home()}"
    assert description.env_refused == ["CHTCD_TEST_SECRET"]
    (note,) = checks.env_notes(description, "b.sub")
    assert "CHTCD_TEST_SECRET" in note and "[limits] env_allowlist" in note


def test_no_condor_config_value_is_reachable(tmp_path, monkeypatch):
    config = tmp_path / "user_config"
    config.write_text("CHTCD_SITE_SECRET = leaked\nSEC_TOKEN_DIRECTORY = /leaked\n")
    monkeypatch.setenv("CONDOR_CONFIG", str(config))
    folder = folder_with(tmp_path, "arguments = <$(CHTCD_SITE_SECRET)><$(SEC_TOKEN_DIRECTORY)><$ENV(CONDOR_CONFIG)>\nqueue\n")
    assert "leaked" not in describe(folder).shared["arguments"]


def test_the_clean_room_works_in_the_bundle(tmp_path):
    folder = folder_with(tmp_path, "arguments = $(x)\nqueue x from list.txt\n", **{"list.txt": "a\nb\n"})
    assert describe(folder).varying["arguments"] == ["a", "b"]


def test_getenv_is_done_in_the_clean_room_and_never_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "leaked")
    monkeypatch.setenv("LANG", "C.UTF-8")
    folder = folder_with(tmp_path, 'getenv = true\nenvironment = "SOFT_DIR=/opt/soft PATH=$ENV(PATH) Q=\'a b\'"\nqueue\n')
    description = describe(folder)
    assert description.shared["getenv"] == "false"
    env = dict(condor.parse_environment(description.shared["environment"]))
    assert env["SOFT_DIR"] == "/opt/soft" and env["Q"] == "a b" and env["LANG"] == "C.UTF-8"
    assert set(env) - {"SOFT_DIR", "Q"} <= {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ"} | {k for k in env if k.startswith("LC_")}
    assert "leaked" not in description.shared["environment"]


def test_getenv_names_outside_the_allowlist_are_reported_and_not_taken(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "leaked")
    folder = folder_with(tmp_path, "getenv = CHTCD_TEST_SECRET, HOME\nqueue\n")
    description = describe(folder)
    assert description.env_refused == ["CHTCD_TEST_SECRET"]
    assert description.shared["getenv"] == "false"
    assert dict(condor.parse_environment(description.shared["environment"])) == {"HOME": str(Path.home())}


def test_the_allowlist_is_the_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "mine")
    config = from_mapping({"limits": {"env_allowlist": ["CHTCD_TEST_*"]}}, None)
    folder = folder_with(tmp_path, "arguments = $ENV(CHTCD_TEST_SECRET) $ENV(HOME)\nqueue\n")
    assert describe(folder, allowlist=config.limits.env_allowlist).shared["arguments"] == "mine UNDEFINED"


def test_composed_random_choice_is_picked_once_and_sent_as_picked(tmp_path):
    folder = folder_with(tmp_path, "A = $\ntransfer_input_files = $(A)RANDOM_CHOICE(a.txt, b.txt, c.txt)\nqueue 30\n")
    description = describe(folder)
    picked = [description.value("transfer_input_files", job) for job in range(30)]
    assert set(picked) <= {"a.txt", "b.txt", "c.txt"}
    text, rows = condor.submission(description, folder, condor.stamps("b", "c"), str(tmp_path / "items"))
    assert "RANDOM_CHOICE" not in text + (rows or "")
    sent = daemon_parse(text, rows, tmp_path / "items")
    assert [job["transfer_input_files"] for job in sent] == picked


def test_what_is_sent_is_what_was_checked_job_by_job(tmp_path, monkeypatch):
    monkeypatch.setenv("CHTCD_TEST_SECRET", "leaked")
    folder_with(tmp_path, "")
    folder = tmp_path / "b"
    (folder / "d-x").mkdir()
    (folder / "d-y").mkdir()
    (folder / "b.sub").write_text(
        "A = $\nexecutable = run.sh\narguments = $(A)ENV(CHTCD_TEST_SECRET) $(item) $(Process) $$(OpSys) x$(DOLLAR)ENV(HOME)\n"
        "initialdir = d-$(item)\noutput = out.$(Cluster).$(Process).txt\n+Tag = \"$(item)\"\nqueue 2 item in (x, y)\n"
    )
    description = describe(folder, defaults={"Requirements": "true", "arguments": "ignored"})
    text, rows = condor.submission(description, folder, condor.stamps("b", "c"), str(tmp_path / "items"))
    assert "leaked" not in text + rows and "$ENV(CHTCD" not in text + rows
    sent = daemon_parse(text, rows, tmp_path / "items")
    assert [j["arguments"] for j in sent] == [f"UNDEFINED {i} {p} $$(OpSys) x$ENV(HOME)" for p, i in enumerate("xxyy")]
    assert [j["output"] for j in sent] == [f"out.4242.{p}.txt" for p in range(4)]
    assert [j["initialdir"] for j in sent] == [str(folder / f"d-{i}") for i in "xxyy"]
    assert [j["MY.Tag"] for j in sent] == ['"x"', '"x"', '"y"', '"y"']
    assert all(j["Requirements"] == "true" and j["MY.ChtcdBundleId"] == '"b"' for j in sent)


def test_nothing_varies_then_no_items(tmp_path):
    folder = folder_with(tmp_path, "executable = run.sh\nqueue 3\n")
    text, rows = condor.submission(describe(folder), folder, {}, "unused")
    assert rows is None and text.endswith("queue 3\n")


def test_a_value_htcondor_would_read_differently_is_refused(tmp_path):
    folder = folder_with(tmp_path, "arguments = $$x\nqueue\n")
    try:
        describe(folder)
    except condor.Refused as exc:
        assert "cannot hand to HTCondor unchanged" in str(exc)
    else:
        raise AssertionError("refused expected")


VALUES = st.text(alphabet=st.sampled_from(list("$()[]{}ENVab_1 :,'\"")), max_size=24)


@FUZZ
@given(value=VALUES)
def test_escape_round_trips_or_the_clean_room_says_so(value):
    """Whatever `escape` makes of a value, the bindings expand it back to exactly that value, or `_verified` refuses it."""
    sub = condor._bindings().Submit("")
    sub["ClusterId"] = "4242"
    sub["v"] = condor.escape(value) or "empty"
    value = value or "empty"
    back = sub.expand("v")
    if back != value:
        try:
            condor._verified(condor._bindings(), {"v": value}, {}, "")
        except condor.Refused:
            return
        raise AssertionError(f"{value!r} came back as {back!r} and was not refused")


@FUZZ
@given(pairs=st.lists(st.tuples(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
                                st.text(alphabet=st.sampled_from(list("ab =;'\"\t/")), max_size=8)), max_size=4))
def test_environment_format_round_trips(pairs):
    merged = dict(pairs)
    assert dict(condor.parse_environment(condor.format_environment(list(merged.items())))) == merged


def test_one_clean_room_reads_each_bundle_of_a_batch_from_its_own_folder(tmp_path):
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "list.txt").write_text(f"{name}1\n{name}2\n")
        (folder / f"{name}.sub").write_text("executable = run.sh\narguments = $(x)\nqueue x from list.txt\n")
        folders.append(folder)
    a, b = condor.describe_many([(bundle.read(f).text, f) for f in folders], checks.FILE_COMMANDS)
    assert [a.value("arguments", j) for j in range(a.count)] == ["a1", "a2"]
    assert [b.value("arguments", j) for j in range(b.count)] == ["b1", "b2"]
    assert a.cluster != b.cluster, "each bundle its own cluster stand-in"


def test_a_reader_that_dies_on_a_batch_refuses_only_the_bundle_it_dies_on(tmp_path, monkeypatch):
    real = condor._clean_room

    def dies_on_bad(requests, allowlist):
        if any(Path(r["folder"]).name == "bad" for r in requests):
            raise condor.Refused("chtcd could not read the submit file (its reader failed: Segmentation fault)")
        return real(requests, allowlist)

    monkeypatch.setattr(condor, "_clean_room", dies_on_bad)
    found = []
    for name in ("good", "bad", "fine"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.sub").write_text("executable = run.sh\nqueue\n")
        found.append((bundle.read(folder).text, folder))
    good, bad, fine = condor.describe_many(found, checks.FILE_COMMANDS)
    assert isinstance(bad, condor.Refused) and "Segmentation" in str(bad)
    assert isinstance(good, condor.Description) and isinstance(fine, condor.Description)
