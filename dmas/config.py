"""Typed settings: defaults < YAML file (`DMAS_CONFIG` or `load_settings(path)`) < `DMAS_*` env < arguments.

Nested fields use `__` in env names, e.g. `DMAS_LIMITS__MAX_UPLOAD_BYTES=1000000`. An invalid value
fails at start with a `ConfigError` that names the field.
"""

from __future__ import annotations

import contextvars
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

from dmas.api.config import ServeSettings
from dmas.errors import ConfigError
from dmas.features.config import FeatureSettings
from dmas.limits import LimitSettings
from dmas.quality.config import CollapseCheckConfig
from dmas.runtime import RaySettings

_yaml_file: contextvars.ContextVar[str | None] = contextvars.ContextVar("dmas_yaml_file", default=None)


class Settings(BaseSettings):
    """Everything dmas reads at start."""

    model_config = SettingsConfigDict(env_prefix="DMAS_", env_nested_delimiter="__", extra="forbid")

    store_uri: str = Field("dmas_store", description="local folder or pyarrow filesystem URI (s3://...)")
    seed: int = Field(0, ge=0, description="seed for every random choice")
    ray: RaySettings = Field(default_factory=RaySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    quality: CollapseCheckConfig = Field(default_factory=CollapseCheckConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        yaml_file = _yaml_file.get()
        sources = [init_settings, env_settings]
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def load_settings(config_file: str | Path | None = None, **overrides) -> Settings:
    """Read settings from an optional YAML file, the environment and `overrides`.

    Raises ConfigError naming each invalid field.
    """
    import os

    path = config_file or os.environ.get("DMAS_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"config file not found: {path}")
    token = _yaml_file.set(str(path) if path else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _yaml_file.reset(token)


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "settings"
        problems.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return "invalid settings: " + "; ".join(problems)
