"""Shared fixtures. Every test runs with the network blocked (loopback only)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlroom.testing import block_network
from tests.pg_support import ExternalServer, PostgresServer

REPO = Path(__file__).resolve().parents[1]
# The spine's test workflow: a frozen copy of the first invoice-payment example (its graph,
# tools and script are what many tests and the TUI snapshots check); examples/invoice-payment
# itself has its own test, tests/integration/test_example_invoice_payment.py.
EXAMPLE = REPO / "tests" / "data" / "invoice-payment"

DIRECTORY_YAML = """
users:
  - id: alice
    name: Alice Martin
    roles: [employee, finance-clerk]
    attributes: {department: finance}
  - id: bob
    name: Bob Okafor
    roles: [employee, finance-manager, approver]
    attributes: {department: finance}
"""


# Tests play the example's script unless they name a model: the embedded default model
# is exercised by the `model`-marked tests only.
TEST_MODEL = f"scripted:{EXAMPLE / 'script.yaml'}"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONTROLROOM_MODEL", TEST_MODEL)
    monkeypatch.delenv("CONTROLROOM_DATABASE_URL", raising=False)  # tests choose (`backend`)
    with block_network():
        yield


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a two-user directory, set as CONTROLROOM_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    monkeypatch.setenv("CONTROLROOM_HOME", str(home))
    for var in ("CONTROLROOM_DIRECTORY", "CONTROLROOM_USER"):
        monkeypatch.delenv(var, raising=False)
    return home


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")}
    env["CONTROLROOM_HOME"] = str(home)
    env["CONTROLROOM_MODEL"] = TEST_MODEL
    if os.environ.get("CONTROLROOM_DATABASE_URL"):  # set by the `backend` fixture
        env["CONTROLROOM_DATABASE_URL"] = os.environ["CONTROLROOM_DATABASE_URL"]
    return env


def run_cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m controlroom ARGS`` in a subprocess, on the project folder ``home``."""
    return subprocess.run(
        [sys.executable, "-m", "controlroom", *args],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=timeout,
        check=False,
    )


# --- shared-state backends: SQLite files, or PostgreSQL ------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | ExternalServer]:
    """A throwaway PostgreSQL server for the session (or CONTROLROOM_TEST_DATABASE_URL's).

    Missing binaries fail the `postgres` tests with what to install: they never skip."""
    external = os.environ.get("CONTROLROOM_TEST_DATABASE_URL")
    if external:
        yield ExternalServer(external)
        return
    try:
        server = PostgresServer.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(
    postgres_server: PostgresServer | ExternalServer, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A fresh empty database, set as CONTROLROOM_DATABASE_URL for this test."""
    url = postgres_server.create_database()
    monkeypatch.setenv("CONTROLROOM_DATABASE_URL", url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on each backend: `-m postgres` / `-m 'not postgres'` select one."""
    if request.param == "postgres":
        request.getfixturevalue("database_url")
    else:
        monkeypatch.delenv("CONTROLROOM_DATABASE_URL", raising=False)
    return str(request.param)


# --- retrieval: the sample corpus ingested once per session, and a Chroma server -------------


@pytest.fixture(scope="session")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.retrieval_support import copy_corpus

    return copy_corpus(tmp_path_factory.mktemp("corpus") / "corpus")


@pytest.fixture(scope="session")
def corpus_store(tmp_path_factory: pytest.TempPathFactory, corpus_copy: Path) -> Any:
    """An embedded store holding the sample corpus (ingested once per session)."""
    from tests.retrieval_support import ingested_store

    with block_network():
        return ingested_store(tmp_path_factory.mktemp("corpus-home"), corpus_copy)


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on 127.0.0.1 for the session."""
    from tests.retrieval_support import chroma_server

    yield from chroma_server(tmp_path_factory.mktemp("chroma-server"))


@pytest.fixture(scope="session")
def server_corpus_store(
    tmp_path_factory: pytest.TempPathFactory, corpus_copy: Path, chroma_url: str
) -> Any:
    """The sample corpus ingested into the Chroma server."""
    from tests.retrieval_support import ingested_store

    with block_network():
        return ingested_store(tmp_path_factory.mktemp("unused"), corpus_copy, url=chroma_url)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One local Ray instance (2 CPUs, loopback only) for the `ray` tests of the session."""
    import logging

    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        namespace="controlroom-tests",
        object_store_memory=200 * 1024 * 1024,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield ray
    finally:
        ray.shutdown()
