"""Settings: pydantic-settings reading ``CONTROLROOM_*`` environment variables.

The project folder (``CONTROLROOM_HOME``, default ``./.controlroom``) holds all state:
LangGraph checkpoints, the run/approval/effect store, the user directory, locks, the
per-run audit logs (``audit/``) and the key that signs them (``keys/``).
With ``CONTROLROOM_DATABASE_URL`` set, checkpoints, the store and run locks live in
PostgreSQL instead (see docs/deploying.md); the rest stays in the project folder, which
processes on several machines then share.

**Permissions.** The folder holds salaries, typed-in secrets and restricted document text, so
whatever the umask, controlroom creates it 0700 and its files 0600 (:func:`ensure_home`,
:func:`private_dir`, :func:`private_file`); SQLite gives its ``-wal``/``-shm`` side files the
main file's mode. A folder that holds no state yet is made owner-only when controlroom first
puts state in it; an existing project folder that others may read or write is left as it is
and warned about on stderr, once per process, with the ``chmod`` that fixes it.
"""

from __future__ import annotations

import functools
import os
import shlex
import stat
import sys
from collections.abc import Iterable, Iterator
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


# --- permissions of the project folder ----------------------------------------------------

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# What marks a folder as a project that already holds state (for tightening and warnings).
STATE_ENTRIES = (
    "controlroom.sqlite",
    "checkpoints.sqlite",
    "enterprise.sqlite",
    "audit",
    "keys",
    "locks",
    "chroma",
    "batches",
)
_WARNED: set[str] = set()


def private_dir(path: Path) -> Path:
    """Create the folder ``path`` with mode 0700 (its missing parents as usual) if it is not
    there; an existing folder is left as it is."""
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        return path
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is masked by the umask; this is not
    return path


def private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists (then False, and untouched).

    For files another library then opens by name (SQLite, Chroma): they keep the mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically with mode 0600 (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def tighten_tree(root: Path, *, skip: Iterable[str] = ()) -> int:
    """Take group and other bits off ``root`` and everything under it that this account
    owns (folders become 0700, files 0600 where they were more open); returns how many
    entries changed. Links are not followed."""
    changed = 0
    skipped = set(skip)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skipped]
        for name in (folder, *(os.path.join(folder, f) for f in files)):
            try:
                info = os.lstat(name)
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or not mode & 0o077:
                    continue
                os.chmod(name, mode & ~0o077)
            except OSError:
                continue
            changed += 1
    return changed


def exposure(mode: int) -> str | None:
    """How a folder or file with this mode is open to other accounts (None: owner-only)."""
    group, other = (mode >> 3) & 0o7, mode & 0o7
    if not group and not other:
        return None
    parts = []
    for who, bits in (("its group", group), ("every other account", other)):
        if bits:
            can = [w for b, w in ((4, "read"), (2, "write"), (1, "enter")) if bits & b]
            parts.append(f"{who} may {'/'.join(can)}")
    return "; ".join(parts)


def holds_state(home: Path) -> bool:
    """Whether ``home`` already holds controlroom state (versus a folder being set up)."""
    return any((home / name).exists() for name in STATE_ENTRIES)


def fix_command(path: Path) -> str:
    return f"chmod -R go-rwx {shlex.quote(str(path))}"


def home_warning(home: Path) -> str | None:
    """The warning for a project folder others may read or write, or None."""
    try:
        mode = stat.S_IMODE(home.stat().st_mode)
    except OSError:
        return None
    how = exposure(mode)
    if how is None:
        return None
    return (
        f"Warning: the project folder {home} is open to other accounts on this machine "
        f"(mode {mode:04o}: {how}); they can read its runs, audit logs and databases. "
        f"Make it owner-only: {fix_command(home)}"
    )


def warn_if_exposed(home: Path) -> None:
    """Print :func:`home_warning` on stderr, once per process and folder."""
    key = str(home.absolute())
    if key in _WARNED:
        return
    message = home_warning(home)
    if message is None:
        return
    _WARNED.add(key)
    print(message, file=sys.stderr, flush=True)


def ensure_home(home: Path) -> Path:
    """The project folder, created 0700 if missing; a folder that holds no state yet (empty,
    or only a user directory and policies) is made owner-only as it becomes a project; an
    existing project folder that others can reach is warned about (:func:`warn_if_exposed`)."""
    if not home.is_dir():
        private_dir(home)
    elif not holds_state(home):
        try:
            info = home.stat()
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(home, stat.S_IMODE(info.st_mode) & ~0o077 | PRIVATE_DIR)
        except OSError:
            pass
    warn_if_exposed(home)
    return home
