import pytest

from dmas.config import load_settings
from dmas.errors import ConfigError


def test_defaults_need_no_file_or_env(monkeypatch):
    monkeypatch.delenv("DMAS_CONFIG", raising=False)
    settings = load_settings()
    assert settings.store_uri == "dmas_store"
    assert settings.limits.max_upload_bytes == 200 * 1024**2


def test_env_overrides_yaml_and_arguments_override_env(tmp_path, monkeypatch):
    config = tmp_path / "dmas.yaml"
    config.write_text("store_uri: from-yaml\nseed: 3\nlimits:\n  max_reported_errors: 7\n")
    monkeypatch.setenv("DMAS_SEED", "5")
    settings = load_settings(config)
    assert (settings.store_uri, settings.seed, settings.limits.max_reported_errors) == ("from-yaml", 5, 7)
    assert load_settings(config, seed=9).seed == 9


def test_nested_env_variable(monkeypatch):
    monkeypatch.setenv("DMAS_LIMITS__MAX_UPLOAD_BYTES", "1234")
    assert load_settings().limits.max_upload_bytes == 1234


def test_invalid_setting_names_the_field(monkeypatch):
    monkeypatch.setenv("DMAS_LIMITS__MAX_UPLOAD_BYTES", "-1")
    with pytest.raises(ConfigError, match=r"limits\.max_upload_bytes"):
        load_settings()


def test_unknown_yaml_key_is_refused(tmp_path):
    config = tmp_path / "dmas.yaml"
    config.write_text("store_url: typo\n")
    with pytest.raises(ConfigError, match="store_url"):
        load_settings(config)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
