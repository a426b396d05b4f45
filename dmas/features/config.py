"""How the feature pipeline runs (`features:` in the settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dmas.features.version import FeatureConfig


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
        FeatureConfig(**value)
        return value

    def extractor_config(self) -> FeatureConfig:
        """The typed extractor settings."""
        return FeatureConfig(**self.extractor)
