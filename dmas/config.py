"""Typed settings: defaults < YAML file (`DMAS_CONFIG` or `load_settings(path)`) < `DMAS_*` env < arguments.

Nested fields use `__` in env names, e.g. `DMAS_LIMITS__MAX_UPLOAD_BYTES=1000000`. An invalid value
fails at start with a `ConfigError` that names the field.
"""

from __future__ import annotations

import contextvars
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

from dmas.errors import ConfigError
from dmas.runtime import RaySettings

_yaml_file: contextvars.ContextVar[str | None] = contextvars.ContextVar("dmas_yaml_file", default=None)


class LimitSettings(BaseModel):
    """Input limits that protect the store and the machine."""

    model_config = ConfigDict(extra="forbid")

    max_upload_bytes: int = Field(200 * 1024**2, gt=0, description="largest artifact accepted")
    max_image_pixels: int = Field(89_478_485, gt=0, description="Pillow's decompression-bomb limit")
    max_reported_errors: int = Field(100, ge=0, description="row errors listed per ingest (all are counted)")
    ingest_chunk_rows: int = Field(100_000, gt=0, description="rows read and validated at a time")


class FeatureSettings(BaseModel):
    """How the feature pipeline runs (never what it computes: that is `extractor`, part of the version)."""

    model_config = ConfigDict(extra="forbid")

    # None lets Ray run one task per free CPU. A number becomes Ray Data's concurrency cap, which Ray
    # 2.60 enforces conservatively (a finished task holds its slot until its metadata is fetched):
    # measured on 2 CPUs (300 small artifacts, 4 tasks), cap 2 gave 1.55x the single-process loop
    # where None gave 1.70x.
    concurrency: int | None = Field(None, gt=0, description="most extraction tasks at once (None: one per CPU)")
    batch_size: int = Field(256, gt=0, description="most artifacts per extraction task")
    tasks_per_cpu: int = Field(2, gt=0, description="fewest extraction tasks per CPU; blobs are split evenly")
    max_retries: int = Field(3, ge=0, description="retries of a crashed extraction task")
    extractor: dict = Field(default_factory=dict, description="FeatureConfig fields (dmas/features/version.py)")

    @field_validator("extractor")
    @classmethod
    def _valid_extractor(cls, value: dict) -> dict:
        from dmas.features.version import FeatureConfig

        FeatureConfig(**value)
        return value

    def extractor_config(self):
        """The typed extractor settings (a FeatureConfig)."""
        from dmas.features.version import FeatureConfig

        return FeatureConfig(**self.extractor)


class ServeSettings(BaseModel):
    """The HTTP service: where it listens, who may call it, and what one request may ask for."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="listen address (loopback unless you mean it)")
    port: int = Field(8000, gt=0, lt=65536)
    api_keys: list[dict] = Field(default_factory=list,
                                 description="[{key_id, role, sha256}] (`dmas keys KEY_ID --role ROLE`)")
    max_entities_per_request: int = Field(1000, gt=0)
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="largest JSON request body")
    max_upload_request_bytes: int = Field(1024**3, gt=0, description="largest multipart upload request, all "
                                          "files together (each file is also held to limits.max_upload_bytes)")
    audit_log: str = Field("dmas_audit/serve.jsonl", description="append-only JSON lines, local path")
    predictor_replicas: int = Field(1, gt=0)
    explainer_replicas: int = Field(1, gt=0)
    max_ongoing_requests: int = Field(32, gt=0)
    batch_max_size: int = Field(16, gt=0, description="@serve.batch: requests answered together")
    # measured (tests/bench/bench_serve.py): 5 ms -> 1 ms took sequential p50 from 18 to 13.5 ms with the
    # same 8-client throughput (~130 entities/s); lookups are cheap, so waiting longer buys nothing
    batch_wait_s: float = Field(0.001, ge=0, description="@serve.batch: longest wait to fill a batch")
    cached_runs: int = Field(4, gt=0, description="runs kept loaded per replica")
    body_idle_timeout_s: float = Field(30.0, gt=0, description="a request whose body stops arriving for this "
                                       "long (it declared more bytes than it sends) is answered 400")
    latest_run_refresh_s: float = Field(1.0, ge=0, description="how long a replica trusts its answer to 'which "
                                        "run is the latest completed' before asking the registry again")

    @field_validator("api_keys")
    @classmethod
    def _valid_keys(cls, value: list[dict]) -> list[dict]:
        from dmas.api.security import ApiKey

        for entry in value:
            ApiKey(**entry)
        return value

    def keys(self):
        from dmas.api.security import ApiKey

        return [ApiKey(**entry) for entry in self.api_keys]


class Settings(BaseSettings):
    """Everything dmas reads at start."""

    model_config = SettingsConfigDict(env_prefix="DMAS_", env_nested_delimiter="__", extra="forbid")

    store_uri: str = Field("dmas_store", description="local folder or pyarrow filesystem URI (s3://...)")
    seed: int = Field(0, ge=0, description="seed for every random choice")
    ray: RaySettings = Field(default_factory=RaySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)

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
