"""Service configuration, read from environment variables (and a .env file, if present)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    HttpUrl,
    RedisDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.auth import DEFAULT_LEEWAY_SECONDS
from web.origins import normalize_entry

_SYMMETRIC = {"HS256", "HS384", "HS512"}
_ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}


class ConfigurationError(Exception):
    """The environment does not describe a runnable service; the message names the variable."""


class Settings(BaseSettings):
    """Every setting of the service. Names are the environment variables, upper-cased."""

    # An empty value (`JWT_JWKS_URL=` in a copied .env.example) means "not set".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    redis_url: RedisDsn | None = Field(
        default=None,
        description="Redis holding the drafts, e.g. redis://localhost:6379/0, or any node of a "
        "Redis Cluster (detected by itself); rediss:// for TLS, user:password@ for ACLs.",
    )
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = Field(
        default=(),
        description="Comma-separated host:port of Redis Sentinels; the master is found (and "
        "followed across failovers) through them instead of REDIS_URL.",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="Name of the master the sentinels monitor (with REDIS_SENTINELS)."
    )
    redis_sentinel_username: str | None = Field(
        default=None, description="ACL user of the sentinels themselves, if they require one."
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the sentinels themselves (their requirepass)."
    )
    redis_username: str | None = Field(
        default=None,
        description="ACL user of the Redis data nodes, when REDIS_URL carries none (Sentinel).",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password of the Redis data nodes, when REDIS_URL carries none (Sentinel).",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 shared secret of the existing backend's tokens."
    )
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("HS256",), description="Comma-separated allow-list of token algorithms."
    )
    jwt_jwks_url: HttpUrl | None = Field(
        default=None, description="JWKS of an identity provider, for RS256/ES256 tokens."
    )
    jwt_issuer: str | None = Field(default=None, description="Required token issuer (iss).")
    jwt_audience: str | None = Field(default=None, description="Required token audience (aud).")
    jwt_leeway_seconds: int = Field(
        default=DEFAULT_LEEWAY_SECONDS,
        ge=0,
        le=300,
        description="Clock skew tolerated on a token's exp (and iat, nbf): a token is accepted "
        "until exp plus this, over HTTP and websockets alike.",
    )
    org_encryption_key: SecretStr | None = Field(
        default=None,
        description="32-character key that decrypts the old backend's organizationId claim.",
    )
    session_ttl_seconds: int = Field(
        default=7200, ge=1, le=86400, description="Lifetime of a draft, from creation."
    )
    dataverse_url: HttpUrl | None = Field(
        default=None,
        description="Dataverse environment, e.g. https://org.crm.dynamics.com (Web API v9.2).",
    )
    dataverse_token: SecretStr | None = Field(
        default=None, description="Static bearer token (the local emulator's)."
    )
    dataverse_tenant_id: str | None = Field(default=None, description="Entra ID tenant.")
    dataverse_client_id: str | None = Field(default=None, description="App registration id.")
    dataverse_client_secret: SecretStr | None = Field(
        default=None, description="App registration secret (client credentials flow)."
    )
    dataverse_timeout_seconds: float = Field(
        default=15, gt=0, le=300, description="Timeout of one Dataverse request."
    )
    commit_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts to write a commit, retries included."
    )
    commit_max_wait_seconds: float = Field(
        default=30, ge=0, le=600, description="Longest total wait between commit attempts."
    )
    commit_lease_seconds: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="How long a commit may run unheard before another process recovers it; "
        "the committing process renews it every third of this while it works.",
    )
    commit_settle_seconds: float = Field(
        default=300,
        gt=0,
        le=86400,
        description="How long after a write was sent to Dataverse a reconcile that does not "
        "find it rules it out (Dataverse ends a request within 2 minutes). Until then a draft "
        "whose commit is unconfirmed cannot be changed or cancelled.",
    )
    commit_recovery_interval_seconds: float = Field(
        default=1,
        gt=0,
        le=3600,
        description="How often each instance looks for commits to finish: a lease that ran "
        "out (its process died), or an unconfirmed commit whose draft reached expiresAt.",
    )
    shutdown_timeout_seconds: int = Field(
        default=25,
        gt=0,
        le=600,
        description="On SIGTERM, how long in-flight requests (commits) may take to finish "
        "before they are stopped and websockets are closed.",
    )
    graphiql: bool = Field(default=False, description="Serve GraphiQL at /graphql.")
    console: bool = Field(default=True, description="Serve the admin console at /.")
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated origins (https://app.example.com, or http://localhost:* "
        "for any port) whose browser pages may call the API over HTTP (CORS) and open the "
        "GraphQL websocket; '*' allows any. Same-origin pages and non-browser clients always may.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="json (one object per line) or console (a line for a person); "
        "unset: json for `serve`, console for `dev`.",
    )
    otel_exporter_otlp_endpoint: HttpUrl | None = Field(
        default=None,
        description="OpenTelemetry collector (OTLP over HTTP, e.g. http://localhost:4318); "
        "tracing is off when unset.",
    )
    mutation_rate_per_second: float = Field(
        default=20,
        gt=0,
        le=10_000,
        description="Mutations one user may run per second, across all instances.",
    )
    mutation_burst: int = Field(
        default=40,
        ge=1,
        le=100_000,
        description="Mutations one user may run at once above the rate before RATE_LIMITED.",
    )
    max_request_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted; a larger one is refused with 413 "
        "before it is read.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line and headers accepted (the HTTP server refuses more).",
    )
    introspection: bool = Field(
        default=True,
        description="Let admins introspect the schema (GraphiQL, codegen); anonymous callers "
        "and main users never may.",
    )
    max_open_drafts: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Open (uncommitted, unexpired) drafts one user may hold; "
        "createSession answers TOO_MANY_DRAFTS past it.",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_entry(origin) for origin in value)

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(_host_port(a.strip()) for a in value.split(",") if a.strip())
        return value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(a.strip().upper() for a in value.split(",") if a.strip())
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _check_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - _SYMMETRIC - _ASYMMETRIC
        if not value or unknown:
            raise ValueError(
                f"use HS256/RS256/ES256-style names, got {', '.join(sorted(unknown)) or 'none'}"
            )
        if set(value) & _SYMMETRIC and set(value) & _ASYMMETRIC:
            # Mixing them invites key-confusion attacks (an RSA public key used as HMAC secret).
            raise ValueError("do not mix HS* with RS*/ES* algorithms")
        return value

    @field_validator("org_encryption_key")
    @classmethod
    def _check_org_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) != 32:
            raise ValueError("must be exactly 32 characters (AES-256)")
        return value

    @model_validator(mode="after")
    def _check_redis(self) -> Settings:
        if self.redis_sentinels and self.redis_url is not None:
            raise ValueError("REDIS_SENTINELS: set either REDIS_URL or REDIS_SENTINELS, not both")
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError("REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS")
        if self.redis_sentinel_master and not self.redis_sentinels:
            raise ValueError("REDIS_SENTINELS: must be set with REDIS_SENTINEL_MASTER")
        return self

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        symmetric = set(self.jwt_algorithms) <= _SYMMETRIC
        if symmetric and not self.jwt_secret:
            raise ValueError("JWT_SECRET: must be set for HS* token algorithms")
        if not symmetric and not self.jwt_jwks_url:
            raise ValueError("JWT_JWKS_URL: must be set for RS*/ES* token algorithms")
        if self.dataverse_url is None:
            raise ValueError(
                "DATAVERSE_URL: must be set, e.g. https://yourorg.crm.dynamics.com "
                "(`orchestrator dev` starts a local emulator instead)"
            )
        client_credentials = {
            "DATAVERSE_TENANT_ID": self.dataverse_tenant_id,
            "DATAVERSE_CLIENT_ID": self.dataverse_client_id,
            "DATAVERSE_CLIENT_SECRET": self.dataverse_client_secret,
        }
        missing = [name for name, value in client_credentials.items() if not value]
        if not self.dataverse_token and missing:
            raise ValueError(
                f"{missing[0]}: must be set for Dataverse client credentials "
                "(or set DATAVERSE_TOKEN for a static bearer token)"
            )
        return self

    def require_redis_url(self) -> str:
        """Return REDIS_URL, or raise a ConfigurationError saying it is missing."""
        if self.redis_url is None:
            raise ConfigurationError(
                "REDIS_URL: must be set, e.g. redis://localhost:6379/0 "
                "(or REDIS_SENTINELS and REDIS_SENTINEL_MASTER)"
            )
        return str(self.redis_url)

    def require_redis(self) -> None:
        """Raise a ConfigurationError unless REDIS_URL or REDIS_SENTINELS says where Redis is."""
        if not self.redis_sentinels:
            self.require_redis_url()


def _host_port(address: str) -> tuple[str, int]:
    """Parse host:port (or [v6]:port); the port defaults to Sentinel's 26379."""
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port = address, "26379"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"use host:port pairs separated by commas, got {address!r}")
    return host, int(port)


class SigningSettings(BaseSettings):
    """What `orchestrator token` needs, read as Settings are (environment, then .env)."""

    model_config = Settings.model_config

    jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None


def load_signing_settings() -> SigningSettings:
    """Read the token-signing settings, as one readable ConfigurationError if they are wrong."""
    try:
        return SigningSettings()
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable ConfigurationError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(message if not name else f"{name}: {message}")
    return "; ".join(lines)
