"""Settings of a collapse check (`configs/dmas.yaml` section `quality`, or arguments of the CLI and route)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CollapseCheckConfig(BaseModel):
    """How a check calibrates and how much of each table the model-fitting dimensions read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    null_draws: int = Field(30, ge=30, description="seeded null resamples of the reference per threshold")
    false_positive_rate: float = Field(0.01, gt=0.0, lt=1.0, description="chance a clean candidate is flagged")
    seed: int = Field(0, ge=0)
    max_rows: int = Field(20_000, ge=100, description="rows per side the model-fitting dimensions subsample to")
    dimensions: list[str] | None = Field(None, description="names of the dimensions to run (default: all eight)")
    cache_dir: str | None = Field(None, description="folder for null distributions, keyed by reference and n")
    timeout_s: float | None = Field(None, gt=0, description="give up (error 4001) after this long")
    workers: int | None = Field(None, ge=1, description="processes the null draws run on (default: the CPUs "
                                                        "this process may use); never changes a report byte")
