"""Choose the backend the settings name (the one place that knows both)."""

from __future__ import annotations

from controlroom.config import Settings, ensure_home
from controlroom.errors import ConfigError
from controlroom.graphs.storage.backend import Backend
from controlroom.graphs.storage.sqlite import SqliteBackend


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name: PostgreSQL when a database URL is set, else SQLite.

    Either way the project folder is made owner-only when it is new (it holds the audit
    logs and keys), and one that others can reach is warned about once, on stderr."""
    ensure_home(settings.home)
    if settings.backend == "postgres":
        try:
            from controlroom.graphs.storage.postgres import PostgresBackend
        except ImportError as exc:
            raise ConfigError(
                f"The PostgreSQL backend needs the `scale` extra ({exc.name} is missing): "
                "pip install 'controlroom[scale]', or unset CONTROLROOM_DATABASE_URL to keep "
                "state in SQLite files in the project folder.",
                title="PostgreSQL support not installed",
            ) from None
        return PostgresBackend(settings)
    return SqliteBackend(settings)
