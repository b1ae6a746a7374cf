"""The token stays private: checked before connecting, never written to a log, and chtcd's own files are 0600.

HTCondor silently skips a token file others can read; the only symptom is a
generic authentication failure. So each problem must come with the exact
command that fixes it.
"""

import logging
import stat
from pathlib import Path

import pytest
import structlog

from chtcd import log, report, tokens
from chtcd.state import BundleRecord, Stage, Store

AP = "ap2002.chtc.wisc.edu"
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6IlBPT0wifQ.eyJpc3MiOiJhcDIwMDIiLCJzdWIiOiJidWNreSJ9.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"


def fetch_command(token_dir: Path) -> str:
    return (
        f"mkdir -p {token_dir} && ssh NETID@{AP} condor_token_fetch > {token_dir}/ap2002 "
        f"&& chmod 700 {token_dir} && chmod 600 {token_dir}/*"
    )


def problem(token_dir: Path) -> str:
    with pytest.raises(tokens.TokenProblem) as err:
        tokens.check(token_dir, AP)
    return str(err.value)


def test_missing_folder_says_how_to_fetch_a_token(tmp_path):
    token_dir = tmp_path / "tokens.d"
    message = problem(token_dir)
    assert f"token folder {token_dir} does not exist" in message
    assert message.endswith(fetch_command(token_dir))


def test_empty_folder_says_how_to_fetch_a_token(tmp_path):
    token_dir = tmp_path / "tokens.d"
    token_dir.mkdir(mode=0o700)
    (token_dir / ".hidden").write_text(JWT)
    message = problem(token_dir)
    assert f"no token in {token_dir}" in message
    assert message.endswith(fetch_command(token_dir))


def test_token_file_others_can_read_says_chmod_600(tmp_path):
    token_dir = tmp_path / "tokens.d"
    token_dir.mkdir(mode=0o700)
    loose = token_dir / "ap2002"
    loose.write_text(JWT)
    loose.chmod(0o644)
    message = problem(token_dir)
    assert "HTCondor ignores token files others can read" in message
    assert message.endswith(f"run: chmod 600 {loose}")


def test_token_folder_others_can_read_says_chmod_700(tmp_path):
    token_dir = tmp_path / "tokens.d"
    token_dir.mkdir()
    token_dir.chmod(0o755)
    (token_dir / "ap2002").write_text(JWT)
    (token_dir / "ap2002").chmod(0o600)
    message = problem(token_dir)
    assert "readable by others (mode 755)" in message
    assert message.endswith(f"run: chmod 700 {token_dir}")


def test_private_folder_and_file_pass(tmp_path):
    token_dir = tmp_path / "tokens.d"
    token_dir.mkdir(mode=0o700)
    (token_dir / "ap2002").write_text(JWT)
    (token_dir / "ap2002").chmod(0o600)
    assert tokens.check(token_dir, AP) == [token_dir / "ap2002"]


@pytest.fixture
def logging_to(tmp_path):
    """Where log.setup will write; the process's logging is put back afterwards.

    Tests call log.setup themselves: its console handler binds sys.stderr as it is
    during the test, which is what capsys reads.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path / "chtcd.log"
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_a_token_is_redacted_from_the_log_file_and_the_console(logging_to, capsys):
    log.setup(logging_to)
    logger = log.get("chtcd.test")
    logger.warning(f"the schedd said: bad token {JWT}", token=JWT, nested=f"Bearer {JWT} trailing")
    logging.getLogger("apscheduler").error("a library line carrying %s", JWT)
    try:
        raise RuntimeError(f"AUTHENTICATE failed for {JWT}")
    except RuntimeError:
        logger.exception("step failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = logging_to.read_text()
    console = capsys.readouterr().err
    assert "the schedd said" in written and "step failed" in written and "a library line" in written
    for output in (written, console):
        assert JWT not in output
        assert JWT[:40] not in output
        assert log.REDACTED in output


def test_files_chtcd_writes_are_private(tmp_path, logging_to):
    log.setup(logging_to)
    log.get("chtcd.test").info("hello")
    store = Store(tmp_path / "state" / "state.json")
    (tmp_path / "state").mkdir()
    state = store.load()
    record = BundleRecord(id="b1", name="job", stage=Stage.READY, claimed_at=0.0, outcome="rejected", reason="x")
    state.bundles["b1"] = record
    store.save(state)
    state.bundles["b1"].reason = "y"
    store.save(state)
    folder = tmp_path / "job"
    folder.mkdir()
    report.write(folder, report.build(record, AP, 1.0))
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "doRollover"):
            handler.doRollover()
    log.get("chtcd.test").info("after rollover")
    written = [
        store.path, store.files.journal, store.client_id_path, logging_to, logging_to.with_name("chtcd.log.1"),
        folder / report.REPORT_NAME,
    ]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
