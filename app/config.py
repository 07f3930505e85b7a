"""Settings: every `ATRIUM_*` variable in one place (ARCHITECTURE.md §3).

Derived defaults (database and storage URLs under the data dir, the secret key kept in the data
dir) are resolved by `Settings.resolved()` so that building a Settings object never touches disk.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"
SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
SUPPORTED_STORAGE_SCHEMES = ("file", "s3")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i)?)?b?\s*$", re.IGNORECASE)
PLACEHOLDER_RE = re.compile(r"change[-_ ]?me|placeholder|secret[-_ ]?key|example", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


class ConfigError(Exception):
    """A setting has a bad value; the message names the variable and the fix."""


def _size_or_number(value: object) -> object:
    return parse_size(value) if isinstance(value, str) else value


# A size setting: bytes, or a number with a unit (`10GB`, `500MiB`); every size setting parses
# alike.
Size = Annotated[int, BeforeValidator(_size_or_number)]


class AtriumSettings(BaseSettings):
    """Settings whose bad values stop start-up with one line per variable: its name, the value
    given, what is wrong and what would do (no pydantic traceback)."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(self._explain(exc)) from None

    @classmethod
    def _explain(cls, exc: ValidationError) -> str:
        lines = []
        prefix = str(cls.model_config.get("env_prefix", ""))
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            field = cls.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            variable = str(alias) if isinstance(alias, str) else f"{prefix}{name}".upper()
            given = error.get("input")
            reason = str(error["msg"]).removeprefix("Value error, ")
            hint = f" ({field.description})" if field is not None and field.description else ""
            lines.append(f"{variable}={given!s}: {reason}{hint}")
        return "; ".join(lines)


class Settings(AtriumSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_", extra="ignore")

    data_dir: Path = Field(default=Path("storage"), description="embedded database, blobs, caches")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in data dir")
    database_pool_size: int = Field(
        default=10, ge=1, description="PostgreSQL connections each server process keeps open"
    )
    database_max_overflow: int = Field(
        default=20,
        ge=0,
        description="PostgreSQL connections opened beyond the pool under load, closed after use",
    )
    database_pool_timeout: float = Field(
        default=10,
        gt=0,
        description="seconds a request waits for a free database connection before it is "
        "answered 503 with Retry-After",
    )
    storage_url: str = Field(default="", description="file://PATH or s3://bucket[/prefix]")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO)")
    s3_create_bucket: bool = Field(default=True, description="create the bucket if missing")
    s3_timeout: float = Field(
        default=60,
        gt=0,
        description="seconds to wait for an S3 answer before the request fails with 503",
    )
    s3_presign_downloads: bool = Field(
        default=False, description="redirect LFS downloads to presigned S3 URLs"
    )
    public_url: str | None = Field(default=None, description="external base URL for links")
    secret_key: SecretStr | None = Field(default=None, description="signs sessions and tokens")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer credential of the metrics scraper (Prometheus) for /metrics and "
        "/api/inference/metrics; unset: only administrators' tokens read metrics",
    )
    max_request_body: Size = Field(
        default=2 * 1024**3,
        description="largest accepted request body, in bytes or as 2GB (signed LFS uploads are "
        "bounded "
        "by their own signed size instead)",
    )
    log_level: str = Field(default="info", description="log level of the server")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="addresses or networks (comma-separated, * for any) of reverse proxies "
        "whose X-Forwarded-For names the client",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect provider for web single sign-on (its discovery document "
        "is ISSUER/.well-known/openid-configuration); unset: no single sign-on",
    )
    oidc_client_id: str | None = Field(default=None, description="this hub's OIDC client id")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="this hub's OIDC client secret"
    )
    oidc_username_claim: str = Field(
        default="preferred_username",
        description="ID token claim that names a user signed in for the first time",
    )
    oidc_groups_claim: str | None = Field(
        default=None,
        description="ID token claim listing groups ORG:ROLE (or ORG, read) that make the "
        "user a member of existing organizations at each sign-in",
    )
    oidc_button: str = Field(
        default="Single sign-on", description="label of the sign-in page's SSO button"
    )
    password_login: bool = Field(
        default=True, description="accept web sign-in with a local password (false: SSO only)"
    )
    min_password_length: int = Field(
        default=10, ge=1, description="shortest password accepted for web sign-in"
    )
    login_limit_account: int = Field(
        default=10, ge=0, description="failed sign-ins per account per login window; 0: no limit"
    )
    login_limit_ip: int = Field(
        default=30, ge=0, description="failed sign-ins per client address per login window"
    )
    login_window: int = Field(default=15 * 60, ge=1, description="sign-in limit window, seconds")
    token_limit_ip: int = Field(
        default=60, ge=0, description="invalid tokens per client address per token window"
    )
    token_window: int = Field(default=60, ge=1, description="token limit window, seconds")
    request_threads: int = Field(
        default=40,
        ge=1,
        description="threads that run request handlers at once in each server process; "
        "requests beyond wait their turn",
    )
    upload_idle_timeout: float = Field(
        default=60,
        gt=0,
        description="seconds an upload may send nothing before it is refused with 408",
    )
    upload_min_rate: int = Field(
        default=4096,
        ge=0,
        description="bytes per second an upload must average (measured over each 4 MiB, "
        "after its first ATRIUM_UPLOAD_IDLE_TIMEOUT seconds); slower ones are refused with 408",
    )
    uploads_per_client: int = Field(
        default=16,
        ge=1,
        description="uploads (LFS objects and parts) one client address may send at once; "
        "more are refused with 429",
    )
    lfs_part_size: Size = Field(
        default=64 * 1024**2,
        ge=5 * 1024**2,  # S3's smallest part
        description="LFS multipart part size in bytes (S3 parts, or uploads over the body limit)",
    )
    namespace_quota: Size = Field(
        default=0,
        ge=0,
        description="storage quota of each namespace in bytes or as 10GB, 500MiB; 0: unlimited",
    )
    events_poll_seconds: float = Field(
        default=5.0,
        ge=0,
        description="seconds between rounds that deliver repo events left undelivered (a crash, "
        "another replica); each commit delivers its own at once; 0: no polling",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="let webhooks send to loopback, link-local, private and reserved addresses "
        "(receivers on this machine or its private network); refused by default",
    )
    webhook_retry_seconds: float = Field(
        default=2.0,
        gt=0,
        description="wait before a failed webhook delivery is retried, doubled each time",
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        description="seconds between rounds that send due webhook deliveries; 0: no sending",
    )

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def resolved(self, *, create: bool = True) -> Settings:
        """Fill derived defaults and check every URL, raising ConfigError with the fix. With
        create False nothing is written: a missing secret key file stays missing."""
        data_dir = self.data_dir.expanduser().absolute()
        database_url = self.database_url or f"sqlite:///{data_dir / 'atrium.db'}"
        storage_url = self.storage_url or f"file://{data_dir / 'blobs'}"
        _check_scheme("ATRIUM_DATABASE_URL", database_url, SUPPORTED_DB_SCHEMES)
        _check_scheme("ATRIUM_STORAGE_URL", storage_url, SUPPORTED_STORAGE_SCHEMES)
        if storage_url.startswith("s3://") and not urlparse(storage_url).netloc:
            raise ConfigError("ATRIUM_STORAGE_URL: s3 URL has no bucket; use s3://bucket[/prefix]")
        if database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
        if self.secret_key is not None:
            secret = self.secret_key
        elif create or (data_dir / SECRET_KEY_FILE).exists():
            secret = SecretStr(_load_or_create_secret(data_dir))
        else:
            secret = SecretStr("")
        return self.model_copy(
            update={
                "data_dir": data_dir,
                "database_url": database_url,
                "storage_url": storage_url,
                "secret_key": secret,
            }
        )

    def check_shared_secret(self) -> None:
        """For a server: replicas sign sessions and credentials with one key, so a server on
        a shared (PostgreSQL) database needs ATRIUM_SECRET_KEY, and no server takes the
        placeholder of an example file. Call before `resolved()` (which fills in a local key)."""
        given = self.secret_key.get_secret_value() if self.secret_key is not None else None
        fix = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        if given is not None and (PLACEHOLDER_RE.search(given) or len(given) < 32):
            raise ConfigError(
                "ATRIUM_SECRET_KEY is a placeholder or shorter than 32 characters; "
                f"every replica must share one long random key: {fix}"
            )
        database_url = self.database_url or ""
        if given is None and database_url.startswith(("postgresql://", "postgresql+")):
            raise ConfigError(
                "ATRIUM_SECRET_KEY is required with a PostgreSQL database: replicas sharing it "
                f"must sign sessions with the same key, or users are signed out between them; {fix}"
            )

    def embedded_database(self) -> Path | None:
        """The SQLite file of an embedded hub (resolved settings), else None."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url.removeprefix(prefix))

    @property
    def secret(self) -> bytes:
        if self.secret_key is None:
            raise ConfigError("ATRIUM_SECRET_KEY: settings were not resolved")
        return self.secret_key.get_secret_value().encode()

    def describe(self) -> dict[str, str]:
        """Every setting as `ATRIUM_NAME -> value`, secrets masked (for `atrium config`)."""
        rows: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = "********" if value.get_secret_value() else ""
            else:
                shown = "" if value is None else str(value)
            if name == "database_url":
                shown = _mask_password(shown)
            rows[f"ATRIUM_{name.upper()}"] = shown
        return rows


def parse_size(text: str) -> int:
    """Bytes from `1024`, `10GB` (powers of 1000) or `10GiB` (powers of 1024)."""
    match = SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; use bytes or a unit, e.g. 10GB or 500MiB")
    number, prefix, binary = match.group(1), (match.group(2) or "").lower(), match.group(3)
    base = 1024 ** list(SIZE_UNITS).index(prefix) if binary else SIZE_UNITS[prefix]
    return int(float(number) * base)


def _check_scheme(variable: str, url: str, allowed: tuple[str, ...]) -> None:
    scheme = urlparse(url).scheme
    if scheme not in allowed:
        choices = ", ".join(f"{s}://" for s in allowed)
        raise ConfigError(f"{variable}: unknown URL scheme {scheme!r} in {url!r}; use {choices}")


def _mask_password(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":********@")
    return url


def _load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
    except OSError as exc:
        raise ConfigError(
            f"ATRIUM_DATA_DIR: cannot write {path} ({exc.strerror}); "
            "choose a writable folder or set ATRIUM_SECRET_KEY"
        ) from None
    return key
