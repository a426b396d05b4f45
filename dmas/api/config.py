"""The HTTP service's settings (`serve:` in the settings): where it listens, who may call it, request limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dmas.api.security import ApiKey


class ServeSettings(BaseModel):
    """The HTTP service: where it listens, who may call it, and what one request may ask for."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="listen address (loopback unless you mean it)")
    port: int = Field(8000, gt=0, lt=65536)
    api_keys: list[ApiKey] = Field(default_factory=list,
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

    def keys(self) -> list[ApiKey]:
        return list(self.api_keys)
