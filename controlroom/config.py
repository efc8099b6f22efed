"""Settings: pydantic-settings reading ``CONTROLROOM_*`` environment variables.

The project folder (``CONTROLROOM_HOME``, default ``./.controlroom``) holds all state:
LangGraph checkpoints, the run/approval/effect store, the user directory, locks, the
per-run audit logs (``audit/``) and the key that signs them (``keys/``).
With ``CONTROLROOM_DATABASE_URL`` set, checkpoints, the store and run locks live in
PostgreSQL instead (see docs/deploying.md); the rest stays in the project folder, which
processes on several machines then share.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "local:qwen2.5-coder-1.5b"


class Settings(BaseSettings):
    """Where controlroom keeps its state and what it uses by default."""

    model_config = SettingsConfigDict(env_prefix="CONTROLROOM_", extra="ignore")

    home: Path = Field(default=Path(".controlroom"), description="project folder")
    directory: Path | None = Field(
        default=None, description="user directory file; default <home>/directory.yaml"
    )
    model: str = Field(default=DEFAULT_MODEL, description="default model spec")
    user: str | None = Field(default=None, description="default acting user for the CLI")
    openai_api_key: SecretStr | None = Field(
        default=None, description="OpenAI API key if OPENAI_API_KEY is not set"
    )
    audit: bool = Field(default=True, description="write a signed audit log per run")
    audit_redaction: Literal["full", "hash", "mask"] = Field(
        default="full", description="prompts, outputs and tool arguments in the audit log"
    )
    audit_fsync: Literal["always", "batch"] = Field(
        default="batch", description="sync every audit record, or batch all but decisions"
    )
    audit_checkpoint_every: int = Field(default=100, ge=1, description="sign every N records")
    audit_key: Path | None = Field(
        default=None, description="Ed25519 signing key; default <home>/keys/audit-ed25519.pem"
    )
    audit_public_key: Path | None = Field(
        default=None, description="public key `audit verify` expects; default the signing key's"
    )
    audit_secrets: list[str] = Field(
        default_factory=list, description="values never to write to the audit log (JSON list)"
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB) for checkpoints, "
        "runs, approvals, the effect ledger and run locks, shared by every process and "
        "machine; default the SQLite files in <home>",
    )
    database_pool_size: int = Field(
        default=4, ge=1, le=64, description="PostgreSQL connections per process (at most)"
    )

    chroma_url: str | None = Field(
        default=None, description="Chroma server URL for retrieval; default embedded in <home>"
    )
    document_policies: str | None = Field(
        default=None,
        description="Cedar policies deciding who reads which document labels; default "
        "<home>/policies if present, else builtin:pack",
    )

    @property
    def directory_path(self) -> Path:
        return self.directory if self.directory is not None else self.home / "directory.yaml"

    @property
    def checkpoints_path(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def store_path(self) -> Path:
        return self.home / "controlroom.sqlite"

    @property
    def locks_path(self) -> Path:
        return self.home / "locks"

    @property
    def audit_path(self) -> Path:
        return self.home / "audit"

    @property
    def keys_path(self) -> Path:
        return self.home / "keys"

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        """Where shared state lives: SQLite files in the home folder, or PostgreSQL."""
        return "postgres" if self.database_url_value else "sqlite"

    @property
    def database_url_value(self) -> str | None:
        """The PostgreSQL URL in clear (None when unset or blank): for connecting only."""
        url = self.database_url.get_secret_value().strip() if self.database_url else ""
        return url or None


_ACTIVE_HOME: ContextVar[Path | None] = ContextVar("controlroom_active_home", default=None)


@contextmanager
def using_home(home: Path) -> Iterator[None]:
    """Make ``home`` the project folder that code without a Settings object sees.

    The runner sets it while it drives a run, so a tool or a policy lookup that needs the
    project folder (the tool pack's database, for one) finds the run's folder even when
    it was given as ``Runner(home=...)`` rather than through CONTROLROOM_HOME.
    """
    token = _ACTIVE_HOME.set(home)
    try:
        yield
    finally:
        _ACTIVE_HOME.reset(token)


def active_home() -> Path:
    """The project folder of the run being driven, else the configured one."""
    return _ACTIVE_HOME.get() or _configured_home(os.environ.get("CONTROLROOM_HOME"), os.getcwd())


@functools.lru_cache(maxsize=16)
def _configured_home(env: str | None, cwd: str) -> Path:
    return Settings().home.absolute()
