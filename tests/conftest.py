"""Shared fixtures. Every test runs with the network blocked (loopback only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlroom.testing import block_network

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "invoice-payment"

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
    return env
