"""Owner-only state whatever the umask: the folder 0700, its files 0600 (SQLite's side files,
locks, keys, audit logs, the directory, the pack database, Chroma's folder), and a warning,
once and on stderr only, for an existing project folder that other accounts can reach."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from controlroom import Runner
from controlroom.cli import app
from controlroom.config import ensure_home, home_warning, warn_if_exposed
from controlroom.tools.pack.seed import seed_database
from tests.conftest import EXAMPLE, run_cli

# The test workflow's own tool keeps its ledger in <home>/examples/: a tool's files are its
# business (the 0700 folder around them is what keeps them private), not controlroom's.
TOOL_FILES = "examples"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path, *, skip: str = TOOL_FILES) -> dict[str, int]:
    """Every folder and file under ``root`` (itself included) with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != skip]
        for name in (*dirs, *files):
            full = Path(folder, name)
            found[str(full.relative_to(root))] = stat.S_IMODE(full.lstat().st_mode)
    return found


def open_to_others(found: dict[str, int]) -> dict[str, str]:
    return {name: f"{mode:04o}" for name, mode in found.items() if mode & 0o077}


def test_a_run_leaves_only_owner_only_state_under_umask_022(
    tmp_path: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "project"
    monkeypatch.setenv("CONTROLROOM_HOME", str(home))
    made = CliRunner().invoke(app, ["init"])
    assert made.exit_code == 0, made.output
    assert modes(home) == {".": 0o700, "directory.yaml": 0o600}
    with Runner(home=home) as runner:
        waiting = runner.start(str(EXAMPLE), user="alice", input="Pay invoice INV-1001")
        assert waiting.status.value == "waiting"
        while_open = modes(home)  # the SQLite files' -wal and -shm exist now
        [item] = waiting.pending
        done = runner.approve(waiting.run_id, item.approval_id, by="bob")
        assert done.status.value == "completed"
    after = modes(home)
    for name in ("controlroom.sqlite", "checkpoints.sqlite"):
        assert {f"{name}-wal", f"{name}-shm"} <= set(while_open), sorted(while_open)
    expected_files = {
        "controlroom.sqlite",
        "checkpoints.sqlite",
        "directory.yaml",
        f"locks/{done.run_id}.lock",
        f"audit/{done.run_id}.jsonl",
        f"audit/{done.run_id}.head.json",
        "keys/audit-ed25519.pem",
        "keys/audit-ed25519.pub.pem",
    }
    assert expected_files <= set(after), sorted(after)
    assert {"locks", "audit", "keys"} <= set(after)
    assert open_to_others(while_open) == {} and open_to_others(after) == {}
    for name, mode in after.items():
        folder = name == "." or (home / name).is_dir()
        assert mode == (0o700 if folder else 0o600), (name, oct(mode))


def test_the_pack_database_and_its_side_files_are_0600(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "pack" / "enterprise.sqlite"
    seed_database(path, employees=20)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("SELECT COUNT(*) FROM employees").fetchone()
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                assert stat.S_IMODE(side.stat().st_mode) == 0o600
    finally:
        conn.close()


@pytest.mark.retrieval
def test_the_chroma_folder_and_its_files_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    from controlroom.retrieval.store import DocumentStore

    home = tmp_path / "home"
    store = DocumentStore.open(home)
    store.add_chunks(
        ["c1"],
        ["restricted text"],
        np.ones((1, store.embedder.dimensions), dtype=np.float32),
        [{"access": "hr-confidential", "source": "bands.md"}],
    )
    found = modes(home)
    assert "chroma/chroma.sqlite3" in found and len(found) > 3
    assert open_to_others(found) == {}


def test_a_folder_without_state_is_made_owner_only_silently(
    tmp_path: Path, umask_022: None, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "set-up"
    home.mkdir()  # 0755, as `mkdir` and the umask make it
    (home / "directory.yaml").write_text("users: []\n")
    ensure_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert capsys.readouterr().err == ""


def test_an_existing_exposed_project_is_warned_about_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "shared"
    (home / "audit").mkdir(parents=True)
    os.chmod(home, 0o755)
    ensure_home(home)
    ensure_home(home)
    warn_if_exposed(home)
    err = capsys.readouterr().err
    assert err.count("Warning: the project folder") == 1
    assert f"chmod -R go-rwx {home}" in err and "mode 0755" in err
    assert stat.S_IMODE(home.stat().st_mode) == 0o755  # a project's folder is not changed
    os.chmod(home, 0o700)
    assert home_warning(home) is None


@pytest.mark.slow
def test_the_cli_warns_on_stderr_never_inside_json(tmp_path: Path) -> None:
    home = tmp_path / "project"
    assert run_cli(home, "init").returncode == 0
    started = run_cli(
        home, "run", str(EXAMPLE), "--user", "alice", "--input", "Pay invoice INV-1001", "--json"
    )
    assert started.returncode == 3, started.stderr
    assert "Warning" not in started.stderr  # its own folder: owner-only from the start
    os.chmod(home, 0o755)
    listed = run_cli(home, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["waiting"]
    assert listed.stderr.count("Warning: the project folder") == 1
    assert f"chmod -R go-rwx {home}" in listed.stderr
    checked = run_cli(home, "doctor", "--json")
    assert checked.returncode == 1
    report = json.loads(checked.stdout)
    assert any(
        f["area"] == "permissions" and "mode 0755" in f["summary"] for f in report["findings"]
    )
