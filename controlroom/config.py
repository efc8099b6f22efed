"""Settings: pydantic-settings reading ``CONTROLROOM_*`` environment variables.

The project folder (``CONTROLROOM_HOME``, default ``./.controlroom``) holds all state:
LangGraph checkpoints, the run/approval/effect store, the user directory, locks.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
