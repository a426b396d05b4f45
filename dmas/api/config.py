"""The HTTP service's settings (`serve:` in the settings): where it listens, who may call it, request limits.

Who may call it: `auth: required` (the default) takes any configured credential kind, each one
additional to the others: API keys (`X-API-Key`, or `Authorization: Bearer <key>` as old clients
send them), service tokens (`x-service-token`) and JWTs (`Authorization: Bearer <JWT>`, when `jwt`
names an HS256 secret or a JWKS URL). `auth: none` serves every request as `anonymous` with the
admin role and is refused unless the server listens on loopback only (a laptop running the old UI).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dmas.api.security import ApiKey, Role, is_loopback_host

JwksAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class JwtSettings(BaseModel):
    """Bearer JWTs (the old platform's HS256 tokens or an OIDC provider's): who signs them, for whom, roles."""

    model_config = ConfigDict(extra="forbid")

    # The secret is read from the environment of each replica, so it never sits in a YAML file, in
    # the settings JSON handed to Ray actors, or in a settings dump.
    hs256_secret_env: str | None = Field(None, description="name of the env var holding the HS256 shared "
                                         "secret (at least 32 bytes); None: HS256 tokens are not accepted")
    jwks_url: str | None = Field(None, pattern=r"^https?://", description="the OIDC provider's JWKS URL "
                                 "(RS/PS/ES keys picked by the token's kid); None: no JWKS")
    algorithms: list[JwksAlgorithm] = Field(["RS256", "ES256"], min_length=1,
                                            description="algorithms accepted for keys from jwks_url")
    issuer: str | None = Field(None, description="required `iss` of every token")
    audience: str | None = Field(None, description="required `aud` of every token (this service's name at the "
                                 "identity provider)")
    leeway_s: float = Field(30.0, ge=0, le=300, description="clock skew tolerated on exp / nbf / iat")
    role_claim: str = Field("roles", min_length=1, description="claim holding the caller's roles: a list or "
                            "a space-separated string (`scope`); a dotted path reads nested claims "
                            "(`realm_access.roles`)")
    role_map: dict[str, Role] = Field(default_factory=dict, description="claim value -> dmas role, e.g. "
                                      '{"dmas-admin": "admin", "analyst": "viewer"}; unmapped values grant nothing')
    subject_claim: str = Field("sub", min_length=1, description="claim naming the caller in the audit log "
                               "(written as jwt:<value>)")
    jwks_timeout_s: float = Field(5.0, gt=0, le=60, description="longest wait for the JWKS URL")
    jwks_cache_s: float = Field(300.0, gt=0, description="how long a fetched key set is trusted")
    jwks_min_refetch_s: float = Field(30.0, ge=0, description="a token with an unknown kid refetches the key "
                                      "set at most this often (key rotation without a fetch per bad token)")

    @property
    def enabled(self) -> bool:
        return bool(self.hs256_secret_env or self.jwks_url)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> JwtSettings:
        if self.enabled:
            missing = [name for name in ("issuer", "audience") if not getattr(self, name)]
            if missing:
                raise ValueError(f"JWTs are accepted, so {' and '.join(missing)} must be set: a token "
                                 "minted for another service must not be accepted here")
            if not self.role_map:
                raise ValueError("JWTs are accepted, so role_map must map at least one value of "
                                 f"the '{self.role_claim}' claim to a dmas role")
        return self


def anonymous_refusal(host: str) -> str | None:
    """Why `auth: none` may not serve on `host`, or None when it may (loopback addresses only)."""
    if is_loopback_host(host):
        return None
    return (f"serve.auth is 'none', which serves every request without credentials with the admin role, so "
            f"it is allowed only on a loopback address (127.0.0.0/8, ::1, localhost), and the server would "
            f"listen on {host!r}; use auth 'required' with API keys (`dmas keys KEY_ID --role ROLE`) to "
            f"listen on a network address")


class ServeSettings(BaseModel):
    """The HTTP service: where it listens, who may call it, and what one request may ask for."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="listen address (loopback unless you mean it)")
    port: int = Field(8000, gt=0, lt=65536)
    auth: Literal["required", "none"] = Field("required", description="required: every route but /health "
                                              "needs a credential; none: no credentials, loopback only")
    api_keys: list[ApiKey] = Field(default_factory=list,
                                   description="[{key_id, role, sha256}] (`dmas keys KEY_ID --role ROLE`)")
    service_tokens: list[ApiKey] = Field(default_factory=list, description="the old platform's x-service-token "
                                         "values, stored like API keys: [{key_id, role, sha256}]")
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    # measured (tests/bench/bench_predict_ids.py, 2 cores) with the earlier lookup-table serving: 50k ids in
    # one /predict took 1.3 s and ~300 MB more per replica; 50k ids of ~15 characters also fill max_body_bytes
    max_entities_per_request: int = Field(50_000, gt=0, description="entity ids one /predict or /explain may "
                                          "name; more is a 413 saying how to page or raise it")
    # measured: integrated gradients take ~40 ms per entity here, so 1,000 explanations are ~40 s of a replica
    max_explanations_per_request: int = Field(1000, gt=0, description="entities one request may ask to explain "
                                              "(/explain, or /predict with explanations); more is a 413 as above")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="largest JSON request body")
    max_upload_request_bytes: int = Field(1024**3, gt=0, description="largest multipart upload request, all "
                                          "files together (each file is also held to limits.max_upload_bytes)")
    audit_log: str = Field("dmas_audit/serve.jsonl", description="append-only JSON lines, local path")
    api_replicas: int = Field(1, gt=0, description="ingress replicas; each scores in its own process from its own "
                              "online view of the shared store (no second hop: measured ~9 ms per request here)")
    max_replicas_per_node: int | None = Field(None, gt=0, description="spread the replicas over nodes (1: one per "
                                              "node, so losing a node loses one replica)")
    max_ongoing_requests: int = Field(32, gt=0)
    refresh_s: float = Field(1.0, gt=0, description="how often a replica's online view absorbs new commits: a "
                             "commit is visible to /predict within about this long")
    view_max_events: int = Field(64, gt=1, description="events kept per entity in the online view; a run needing "
                                 "more (tensorize.max_events + 1) is scored from the tables, more slowly")
    view_max_neighbors: int = Field(16, gt=0, description="interactions kept per entity in the online view")
    view_max_artifacts: int = Field(8, gt=0, description="artifacts kept per entity in the online view")
    max_query_scan: int = Field(10_000, gt=0, description="/query scores every entity on the fly up to this many "
                                "stored entities; past it, /query needs a `dmas score` of the run")
    cached_runs: int = Field(4, gt=0, description="runs kept loaded per replica")
    body_idle_timeout_s: float = Field(30.0, gt=0, description="a request whose body stops arriving for this "
                                       "long (it declared more bytes than it sends) is answered 400")
    latest_run_refresh_s: float = Field(1.0, ge=0, description="how long a replica trusts its answer to 'which "
                                        "run is the latest completed' before asking the registry again")

    @model_validator(mode="after")
    def _safe_auth(self) -> ServeSettings:
        if self.auth == "none" and (refusal := anonymous_refusal(self.host)):
            raise ValueError(refusal)
        names = [entry.key_id for entry in self.api_keys + self.service_tokens]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"key_id {', '.join(repeated)} names more than one API key or service token; the "
                             "audit log must tell callers apart")
        return self
