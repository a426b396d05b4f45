from pathlib import Path

import pytest

from dmas.api.config import ServeSettings
from dmas.config import load_settings
from dmas.errors import ConfigError
from dmas.features.config import FeatureSettings
from dmas.limits import LimitSettings


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


def test_serve_api_keys_from_nested_env(monkeypatch):
    digest = "ab" * 32
    monkeypatch.setenv("DMAS_SERVE__API_KEYS", f'[{{"key_id": "etl", "role": "viewer", "sha256": "{digest}"}}]')
    monkeypatch.setenv("DMAS_SERVE__PORT", "8123")
    serve = load_settings().serve
    assert (serve.port, [(key.key_id, key.role, key.sha256) for key in serve.api_keys]) == (
        8123, [("etl", "viewer", digest)])


def test_bad_api_key_entry_names_the_field(monkeypatch):
    monkeypatch.setenv("DMAS_SERVE__API_KEYS", '[{"key_id": "etl", "role": "viewer", "sha256": "not-hex"}]')
    with pytest.raises(ConfigError, match=r"serve\.api_keys\.0\.sha256"):
        load_settings()


def test_yaml_sections_map_onto_the_configs_beside_their_code(tmp_path):
    config = tmp_path / "dmas.yaml"
    config.write_text("features:\n  batch_size: 8\n  extractor: {image_size: 64}\n"
                      "limits:\n  ingest_chunk_rows: 10\nserve:\n  port: 9001\n")
    settings = load_settings(config)
    assert isinstance(settings.features, FeatureSettings) and isinstance(settings.limits, LimitSettings)
    assert isinstance(settings.serve, ServeSettings)
    assert (settings.features.batch_size, settings.features.extractor_config().image_size,
            settings.limits.ingest_chunk_rows, settings.serve.port) == (8, 64, 10, 9001)


def test_bad_extractor_setting_names_the_field(tmp_path):
    config = tmp_path / "dmas.yaml"
    config.write_text("features:\n  extractor: {image_size: 3}\n")
    with pytest.raises(ConfigError, match=r"features\.extractor"):
        load_settings(config)


def test_the_shipped_settings_file_loads():
    assert load_settings(Path(__file__).parents[1] / "configs" / "dmas.yaml").serve.auth == "required"
