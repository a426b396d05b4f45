"""Input limits that protect the store and the machine (`limits:` in the settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LimitSettings(BaseModel):
    """Input limits that protect the store and the machine."""

    model_config = ConfigDict(extra="forbid")

    max_upload_bytes: int = Field(200 * 1024**2, gt=0, description="largest artifact accepted")
    max_image_pixels: int = Field(89_478_485, gt=0, description="Pillow's decompression-bomb limit")
    max_reported_errors: int = Field(100, ge=0, description="row errors listed per ingest (all are counted)")
    ingest_chunk_rows: int = Field(100_000, gt=0, description="rows read and validated at a time")
