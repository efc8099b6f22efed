"""A throwaway PostgreSQL server for tests and benchmarks, from the installed binaries.

`PostgresServer.start()` runs ``initdb`` into a temporary folder and ``pg_ctl start`` on a
free port of 127.0.0.1 (no Unix socket outside that folder, trust authentication, fsync off:
it is thrown away). As root, initdb refuses to run, so the server runs as the ``postgres``
user that Debian's package creates. ``CONTROLROOM_TEST_DATABASE_URL`` points the tests at a
server of your own instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

MISSING = (
    "PostgreSQL's server binaries (initdb, pg_ctl, postgres) were not found, and the tests "
    "marked `postgres` need them. Install Debian's package (`apt-get install -y postgresql`; "
    ".ci/run does this), put their folder on PATH or in PG_BINDIR, or point "
    "CONTROLROOM_TEST_DATABASE_URL at a server you run. Deselect them with -m 'not postgres'."
)


def with_schema(url: str, schema: str) -> str:
    """The URL with its own schema (search_path) in the same database: another project."""
    from urllib.parse import quote

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PG_BINDIR, PATH, or Debian's layout."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    user: str | None  # run the server as this OS user (when we are root)

    @property
    def url(self) -> str:
        return f"postgresql://controlroom@127.0.0.1:{self.port}/postgres"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://controlroom@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        return ["runuser", "-u", self.user, "--", *args]

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(MISSING)
        user = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres").pw_name
            except KeyError:
                raise RuntimeError(
                    "Running as root, and there is no `postgres` user to run the test server "
                    "as (initdb refuses root). Install Debian's postgresql package, which "
                    "creates it, or run the tests as another user."
                ) from None
        root = Path(tempfile.mkdtemp(prefix="controlroom-pg-"))
        if user is not None:
            info = pwd.getpwnam(user)
            os.chown(root, info.pw_uid, info.pw_gid)
        server = cls(bindir=bindir, root=root, port=free_port(), user=user)
        data = root / "data"
        subprocess.run(
            server._cmd(
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "controlroom",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=root,
        )
        options = (
            f"-p {server.port} -h 127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
        )
        result = subprocess.run(
            server._cmd(
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        if result.returncode != 0:
            log = (root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        return server

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url_for(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                self._cmd(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ),
                capture_output=True,
                cwd=self.root,
                check=False,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


class ExternalServer:
    """A server the developer runs (CONTROLROOM_TEST_DATABASE_URL): new databases on it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create_database(self) -> str:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        info = conninfo_to_dict(self.url)
        info["dbname"] = name
        return make_conninfo(**info)  # type: ignore[arg-type]

    def stop(self) -> None:
        return None
