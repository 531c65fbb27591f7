"""Settings shared by every service and the operator command, read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TOKEN_SECRET = "dev-only-secret-change-me-0123456789abcdef"
# Keys the review audit's joint hash chain (HMAC-SHA256); never stored in the database.
DEV_AUDIT_KEY = "dev-only-audit-key-change-me-0123456789"
# Tokens and console CSRF tokens are HMAC-SHA256 signed: a shorter key is guessable.
MIN_SECRET_LENGTH = 32


class CommonSettings(BaseSettings):
    """What every process needs: where the data lives and how credentials are signed."""

    # A refused setting is named, its value never shown: it may be a password or a secret.
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", env_file=None, hide_input_in_errors=True
    )

    environment: str = Field("development", alias="REE_ENV")
    data_dir: Path = Field(Path(".data"), alias="REE_DATA_DIR")
    # The document store's folder (shared/documents.py); unset: `documents` in the data dir.
    document_dir: Path | None = Field(None, alias="REE_DOCUMENT_DIR")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # Each service has its own Redis user (shared/redis_acl.py). The URL may carry
    # `user:password@`; these, when set, take precedence, so the password can come from a
    # secret of its own. `rediss://` URLs speak TLS, verified against the CA file if given.
    redis_username: str | None = Field(None, alias="REE_REDIS_USERNAME")
    redis_password: str | None = Field(None, alias="REE_REDIS_PASSWORD")
    redis_ca_file: Path | None = Field(None, alias="REE_REDIS_CA_FILE")
    # Prefix of the PostgreSQL schemas; tests give each run its own prefix.
    schema_prefix: str = Field("", alias="REE_SCHEMA_PREFIX")
    # Prefix of the Redis stream names; tests give each run its own so runs never mix.
    stream_prefix: str = Field("", alias="REE_STREAM_PREFIX")
    token_secret: str = Field(DEV_TOKEN_SECRET, alias="REE_TOKEN_SECRET")
    log_level: str = Field("INFO", alias="REE_LOG_LEVEL")
    # json: one JSON object a line with the application, case, event and trace ids
    # (shared/logs.py); text: plain lines for a terminal.
    log_format: Literal["json", "text"] = Field("json", alias="REE_LOG_FORMAT")

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> CommonSettings:
        if self.environment == "production" and self.token_secret == DEV_TOKEN_SECRET:
            raise ValueError("REE_TOKEN_SECRET must be set in production")
        if self.environment == "production" and len(self.token_secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"REE_TOKEN_SECRET must be at least {MIN_SECRET_LENGTH} characters in production"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unauthenticated_redis_in_production(self) -> CommonSettings:
        # Without a password anyone who reaches Redis can forge events (issue 17, F4).
        url = urlsplit(self.redis_url)
        if self.environment == "production" and not (self.redis_password or url.password):
            raise ValueError(
                "Redis authentication is required in production: give REDIS_URL as "
                "redis://<user>:<password>@host:port/db or set REE_REDIS_PASSWORD"
            )
        if self.redis_ca_file is not None and url.scheme != "rediss":
            raise ValueError("REE_REDIS_CA_FILE needs a rediss:// REDIS_URL (TLS)")
        return self

    def redis_options(self) -> dict[str, str]:
        """redis-py options that settings add to `redis_url` (credentials, CA file)."""
        options: dict[str, str] = {}
        if self.redis_username:
            options["username"] = self.redis_username
        if self.redis_password:
            options["password"] = self.redis_password
        if self.redis_ca_file is not None:
            options["ssl_ca_certs"] = str(self.redis_ca_file)
        return options

    def database_url_for(self, component: str) -> str:
        """The SQLAlchemy URL for one component's own database (SQLite) or server (PostgreSQL)."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{component}.db').resolve()}"

    def document_folder(self) -> Path:
        return self.document_dir or self.data_dir / "documents"

    def schema_for(self, component: str) -> str:
        return f"{self.schema_prefix}{component}"

    def stream(self, name: str) -> str:
        return f"{self.stream_prefix}{name}"


class AuditSettings(CommonSettings):
    """The keys of review's audit trail (review and `reechannel audit`), kept out of the database.

    Whoever can write the database must not be able to re-key the chain or sign a checkpoint.
    """

    # A rejected key must not be echoed in the error (pydantic prints the input otherwise).
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    audit_key: str = Field(DEV_AUDIT_KEY, alias="REE_AUDIT_KEY")
    # Ed25519 private key (64 hex digits: the raw 32-byte seed) that signs audit checkpoints;
    # empty: a key file in the data folder, made on first use (development only).
    audit_signing_key: str = Field("", alias="REE_AUDIT_SIGNING_KEY")

    @model_validator(mode="after")
    def _refuse_dev_audit_keys_in_production(self) -> AuditSettings:
        if self.environment == "production" and (
            self.audit_key == DEV_AUDIT_KEY or len(self.audit_key) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                f"REE_AUDIT_KEY must be set (at least {MIN_SECRET_LENGTH} characters) in production"
            )
        if self.environment == "production" and not self.audit_signing_key:
            raise ValueError("REE_AUDIT_SIGNING_KEY must be set in production")
        return self


class ServiceSettings(CommonSettings):
    """Knobs every service has; each service subclasses this once with its own name and port."""

    service_name: str = "service"
    host: str = Field("127.0.0.1", alias="REE_HOST")
    port: int = 8000
    max_body_bytes: int = Field(1_000_000, alias="REE_MAX_BODY_BYTES")
    # The size of each pool of PostgreSQL connections a service process keeps
    # (shared/runtime.py): its schema's engine (as many more at a peak), the credential
    # lookups, intake's writes, and the directory's engine (at most 5, as many more at a
    # peak). Replicas * services * about 4 * this must fit the server's max_connections.
    db_pool_size: int = Field(10, ge=1, le=100, alias="REE_DB_POOL_SIZE")
    max_page_size: int = 200
    default_page_size: int = 50
    # Event consumption: see ARCHITECTURE.md, delivery guarantees.
    consumer_batch: int = Field(50, alias="REE_CONSUMER_BATCH")
    consumer_block_ms: int = Field(1000, alias="REE_CONSUMER_BLOCK_MS")
    claim_idle_ms: int = Field(30_000, alias="REE_CLAIM_IDLE_MS")
    max_deliveries: int = Field(5, alias="REE_MAX_DELIVERIES")
    outbox_poll_seconds: float = Field(0.5, alias="REE_OUTBOX_POLL_SECONDS")
    outbox_batch: int = Field(200, alias="REE_OUTBOX_BATCH")
    # After Redis loses its data, events of this many recent hours are published again.
    outbox_replay_hours: float = Field(72.0, alias="REE_OUTBOX_REPLAY_HOURS")
    # How long a relay that died mid-pass keeps the others from publishing (shared/outbox.py).
    relay_lock_ms: int = Field(3000, ge=100, le=60_000, alias="REE_RELAY_LOCK_MS")
    # Stream entries every group has acknowledged leave after this long (shared/retention.py),
    # looked at every stream_trim_seconds by the stream's producer (0: never trimmed).
    stream_retention_seconds: float = Field(
        7 * 24 * 3600, ge=0, alias="REE_STREAM_RETENTION_SECONDS"
    )
    stream_trim_seconds: float = Field(60.0, ge=0, alias="REE_STREAM_TRIM_SECONDS")
    rate_limit_per_minute: int = Field(600, alias="REE_RATE_LIMIT_PER_MINUTE")
    # shared: one count per credential for all replicas of a service, in Redis; process:
    # each replica counts alone (shared/ratelimit.py).
    rate_limit_scope: Literal["shared", "process"] = Field("shared", alias="REE_RATE_LIMIT_SCOPE")
    # How often a service looks whether its fast-changing tables (every outbox, notify's
    # deliveries) need a VACUUM or an ANALYZE (PostgreSQL); 0 leaves them to autovacuum.
    upkeep_seconds: float = Field(5.0, ge=0, alias="REE_UPKEEP_SECONDS")
    # Published outbox rows past the replay window and processed-event ids past the
    # redelivery horizon are deleted every prune_seconds (0: never), prune_batch rows per
    # transaction (shared/pruning.py).
    prune_seconds: float = Field(300.0, ge=0, alias="REE_PRUNE_SECONDS")
    prune_batch: int = Field(1000, ge=1, le=100_000, alias="REE_PRUNE_BATCH")
    processed_events_hours: float = Field(14 * 24, gt=0, alias="REE_PROCESSED_EVENTS_HOURS")

    @model_validator(mode="after")
    def _horizon_past_every_redelivery(self) -> ServiceSettings:
        # An event comes again while it is on its stream or while a replay may publish it
        # again: forgetting its id before both are over would apply it twice.
        minimum = self.stream_retention_seconds / 3600 + self.outbox_replay_hours
        if self.processed_events_hours <= minimum:
            raise ValueError(
                "REE_PROCESSED_EVENTS_HOURS must exceed the stream retention plus the replay "
                f"window (REE_STREAM_RETENTION_SECONDS + REE_OUTBOX_REPLAY_HOURS: {minimum:g} h)"
            )
        return self
