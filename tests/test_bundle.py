import pytest

from chtcd import bundle
from chtcd.bundle import Rejected


def make(tmp_path, name, files):
    folder = tmp_path / name
    folder.mkdir()
    for rel, text in files.items():
        (folder / rel).write_text(text)
    return folder


def test_single_submit_file_is_chosen(tmp_path):
    folder = make(tmp_path, "run", {"job.sub": "queue\n", "data.txt": "x"})
    assert bundle.read(folder).submit_file.name == "job.sub"


def test_several_submit_files_pick_the_one_named_after_the_folder(tmp_path):
    folder = make(tmp_path, "b", {"a.sub": "queue\n", "b.submit": "queue\n"})
    assert bundle.choose_submit_file(folder).name == "b.submit"


def test_several_submit_files_without_a_choice_list_the_candidates(tmp_path):
    folder = make(tmp_path, "examples", {"a.sub": "queue\n", "b.sub": "queue\n"})
    with pytest.raises(Rejected) as err:
        bundle.choose_submit_file(folder)
    assert "a.sub" in str(err.value) and "b.sub" in str(err.value) and "examples.sub" in str(err.value)


def test_no_submit_file(tmp_path):
    with pytest.raises(Rejected, match="no submit file"):
        bundle.read(make(tmp_path, "empty", {"x.txt": ""}))


@pytest.mark.parametrize(
    "line",
    ["include : /bin/touch /tmp/pwned |", "INCLUDE command : /bin/true", "include:echo hi|"],
)
def test_include_commands_are_refused_before_parsing(tmp_path, line):
    folder = make(tmp_path, "evil", {"evil.sub": f"executable = a.sh\n{line}\nqueue\n"})
    with pytest.raises(Rejected, match="line 2 .*(runs a program|run it as a program)"):
        bundle.read(folder)


@pytest.mark.parametrize("target", ["/etc/passwd", "../x.sub", "~/x", "$(HOME)/x"])
def test_includes_outside_the_bundle_are_refused(tmp_path, target):
    folder = make(tmp_path, "inc", {"inc.sub": f"include : {target}\nqueue\n"})
    with pytest.raises(Rejected, match="outside the bundle|built from macros"):
        bundle.read(folder)


def test_relative_include_inside_is_fine(tmp_path):
    folder = make(tmp_path, "inc", {"inc.sub": "include : common.inc\nqueue\n", "common.inc": "x = 1\n"})
    assert bundle.read(folder).text.startswith("include")


def test_continued_line_cannot_hide_a_command(tmp_path):
    folder = make(tmp_path, "cont", {"cont.sub": "include : sh -c 'touch x' \\\n |\nqueue\n"})
    with pytest.raises(Rejected, match="line 1 runs a program"):
        bundle.read(folder)


def test_env_macro_passes_the_screen(tmp_path):
    """$ENV is safe by construction now: the clean room has only the allowlist (tests/test_cleanroom.py)."""
    folder = make(tmp_path, "env", {"env.sub": "arguments = $ENV(AWS_SECRET_ACCESS_KEY)\nqueue\n"})
    assert bundle.read(folder).submit_file.name == "env.sub"


def test_included_file_is_screened_too(tmp_path):
    folder = make(tmp_path, "nest", {"nest.sub": "include : a.inc\nqueue\n", "a.inc": "include : /bin/id |\n"})
    with pytest.raises(Rejected, match="a.inc line 1"):
        bundle.read(folder)


def test_included_symlink_pointing_out_is_refused(tmp_path):
    outside = tmp_path / "secret.inc"
    outside.write_text("x = 1\n")
    folder = make(tmp_path, "link", {"link.sub": "include : common.inc\nqueue\n"})
    (folder / "common.inc").symlink_to(outside)
    with pytest.raises(Rejected, match="outside the bundle"):
        bundle.read(folder)


def test_syntax_error_names_the_line():
    assert "line 2" in bundle.syntax_error("executable = a\nthis is wrong\nqueue\n", "x.sub")
    assert bundle.syntax_error("# c\n+Foo = 1\nMY.Bar = 2\nexecutable = a\nqueue 3\n", "x.sub") is None
