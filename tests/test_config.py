import dataclasses
from pathlib import Path

import pytest

from chtcd import config
from chtcd.config import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


def test_example_config_loads_and_matches_defaults():
    example = Path(__file__).parent.parent / "config.example.toml"
    loaded = config.load(str(example))
    # The example sets only access_point that has no default; every other key it shows must be the default.
    defaults = config.from_mapping({"pool": {"access_point": loaded.pool.access_point}}, None)
    assert dataclasses.replace(loaded, source=None) == defaults


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, '[pool]\naccess_point = "ap2002.chtc.wisc.edu"\ncolector = "x"\n')
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert "colector" in str(err.value) and path in str(err.value)


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path, '[daemon]\ntick_seconds = "soon"\n')
    with pytest.raises(ConfigError, match=r"\[daemon\] tick_seconds"):
        config.load(path)


def test_bad_toml_is_an_error_not_a_traceback(tmp_path):
    path = write(tmp_path, "[pool\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_short_tick_refused_for_a_real_pool(tmp_path):
    path = write(tmp_path, '[daemon]\ntick_seconds = 5\n')
    with pytest.raises(ConfigError, match="30"):
        config.load(path)


def test_short_tick_allowed_against_loopback(tmp_path):
    path = write(tmp_path, '[pool]\ncollector = "127.0.0.1:19618"\n[daemon]\ntick_seconds = 2\n')
    assert config.load(path).daemon.tick_seconds == 2


def test_missing_access_point_says_what_to_set(tmp_path):
    loaded = config.load(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="access_point"):
        loaded.require_access_point()


def test_submit_defaults_yield_to_user_settings(tmp_path):
    path = write(tmp_path, '[pool]\naccess_point = "ap2002.chtc.wisc.edu"\n[submit]\nrequirements = "true"\n')
    defaults = config.load(path).submit_defaults()
    assert defaults["MY.FileSystemDomain"] == "\"ap2002.chtc.wisc.edu\""
    assert defaults["requirements"] == "true"
    assert "Requirements" not in defaults


def test_named_config_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(str(tmp_path / "nope.toml"))


def test_env_var_names_the_config(tmp_path, monkeypatch):
    path = write(tmp_path, '[pool]\naccess_point = "ap9.example"\n')
    monkeypatch.setenv("CHTCD_CONFIG", path)
    assert config.load(None).pool.access_point == "ap9.example"
