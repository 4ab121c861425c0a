"""Settings read from the environment (prefix ``NBP_``), shared by every service."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


def read_secret_file(path: Path, setting: str) -> str:
    """A secret from a file mounted for this process (a Kubernetes Secret volume, mode 0400), so that it
    is in no environment: refused when other users may read the file."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o007:
        raise ValueError(f"{setting}: {path} is readable by other users (mode {mode:o}); make it 0400")
    return path.read_text(encoding="utf-8").rstrip("\r\n")


class Settings(BaseSettings):
    """What a service process needs to know about its surroundings.

    The database is either one URL (``NBP_DATABASE_URL``) or its parts (``NBP_DB_HOST`` ...), the form
    Kubernetes secrets provide; the parts are assembled into an asyncpg URL so passwords need no quoting.
    """

    model_config = SettingsConfigDict(env_prefix="NBP_", extra="ignore")

    database_url: str | None = None
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = "notebook_manager"
    db_user: str = "postgres"
    db_password: str | None = None
    # The password from a file instead (NBP_DB_PASSWORD_FILE), kept out of the environment.
    db_password_file: Path | None = None
    db_pool_size: int = Field(default=10, ge=1)
    # No overflow by default: connections opened past the pool are closed again at once, and under a
    # burst that churn (a connect per request) costs more than waiting a moment for a pooled one.
    db_max_overflow: int = Field(default=0, ge=0)

    log_level: str = "INFO"
    log_json: bool = True

    # Where the other services publish their OpenAPI documents, so that one service's /docs shows all.
    openapi_peers: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("openapi_peers", mode="before")
    @classmethod
    def _split_peers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _password_from_file(self) -> Settings:
        if self.db_password_file is not None and self.db_password is None:
            self.db_password = read_secret_file(self.db_password_file, "NBP_DB_PASSWORD_FILE")
        return self

    @cached_property
    def sqlalchemy_url(self) -> URL:
        """The asyncpg URL of the database, from ``database_url`` or from the parts."""
        if self.database_url:
            url = make_url(self.database_url)
            if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
                url = url.set(drivername="postgresql+asyncpg")
            return url
        return URL.create(
            "postgresql+asyncpg",
            username=self.db_user,
            password=self.db_password,
            host=self.db_host,
            port=self.db_port,
            database=self.db_name,
        )
