"""A damaged, cut-short, emptied or newer state file: one paragraph naming the file and the
way out, exit 2, never a traceback; an emptied store beside audit logs is never re-created."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom import Runner
from controlroom.cli import app
from controlroom.errors import StateError
from controlroom.graphs.storage.run_store import Store
from tests.conftest import EXAMPLE, run_cli
from tests.state_support import emptied, garbage, make_project, pages_scrambled, truncated

cli = CliRunner()
Damage = Callable[[Path], None]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("corrupt-template") / "home"
    done, waiting = make_project(home)
    return home, done, waiting


@pytest.fixture
def copy(
    template: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, str]:
    """A fresh copy of the template project, set as CONTROLROOM_HOME."""
    source, done, waiting = template
    home = tmp_path / "home"
    shutil.copytree(source, home, symlinks=True)
    monkeypatch.setenv("CONTROLROOM_HOME", str(home))
    for var in ("CONTROLROOM_DIRECTORY", "CONTROLROOM_USER"):
        monkeypatch.delenv(var, raising=False)
    return home, done, waiting


DAMAGES: dict[str, tuple[Damage, str, str]] = {
    "garbage": (garbage, "Damaged state file", "is not a SQLite database"),
    "truncated": (truncated, "Damaged state file", "is cut short"),
    "emptied": (emptied, "Emptied state file", "is empty (0 bytes)"),
    "scrambled": (pages_scrambled, "Damaged state file", "database disk image is malformed"),
}


def _commands(done: str, waiting: str) -> dict[str, list[str]]:
    return {
        "runs": ["runs"],
        "show": ["show", waiting],
        "run": ["run", str(EXAMPLE), "--user", "alice", "--input", "Pay invoice INV-1001"],
    }


def _assert_one_paragraph(output: str, title: str, path: Path, words: str) -> None:
    assert output.startswith(f"{title}: "), output
    assert "Traceback" not in output
    paragraph = " ".join(output.split())
    assert str(path) in paragraph and words in paragraph
    assert "backup" in paragraph and "`controlroom doctor`" in paragraph
    assert len(output.strip().splitlines()) == 1, output


CASES = [
    (command, name, damage)
    for command in ("runs", "show", "run")
    for name in ("controlroom.sqlite", "checkpoints.sqlite")
    for damage in sorted(DAMAGES)
    # `runs` reads the store only: scrambled checkpoint pages surface at `show` and `run`
    if (command, name, damage) != ("runs", "checkpoints.sqlite", "scrambled")
]


@pytest.mark.parametrize(("command", "name", "damage"), CASES)
def test_a_damaged_state_file_is_one_paragraph_and_exit_2(
    copy: tuple[Path, str, str], damage: str, name: str, command: str
) -> None:
    home, done, waiting = copy
    harm, title, words = DAMAGES[damage]
    if name == "checkpoints.sqlite" and damage == "emptied":
        words = "is empty (0 bytes), but the store lists 2 started run(s)"
    harm(home / name)
    before = (home / name).read_bytes()
    result = cli.invoke(app, _commands(done, waiting)[command])
    assert result.exit_code == 2, (result.output, result.exception)
    _assert_one_paragraph(result.output, title, home / name, words)
    if damage != "scrambled":
        assert (home / name).read_bytes() == before  # refused before anything was written
    if name == "controlroom.sqlite" and damage == "emptied":
        assert "holds the signed audit logs of 2 run(s)" in " ".join(result.output.split())
        assert "rm " in result.output and "audit.old" in result.output  # afresh, deliberately


@pytest.mark.slow
def test_the_real_command_prints_no_traceback(
    template: tuple[Path, str, str], copy: tuple[Path, str, str]
) -> None:
    home, _, waiting = copy
    truncated(home / "controlroom.sqlite")
    shown = run_cli(home, "show", waiting)
    assert shown.returncode == 2, shown.stderr
    assert shown.stderr.startswith("Damaged state file: ") and "Traceback" not in shown.stderr
    assert str(home / "controlroom.sqlite") in " ".join(shown.stderr.split())
    shutil.copy(template[0] / "controlroom.sqlite", home / "controlroom.sqlite")
    garbage(home / "checkpoints.sqlite")
    listed = run_cli(home, "runs", "--json")
    assert listed.returncode == 2 and listed.stderr == ""
    assert (
        "checkpoints.sqlite" in listed.stdout and '"title": "Damaged state file"' in listed.stdout
    )


def test_an_empty_store_without_audit_logs_is_a_new_project(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    home.mkdir()
    (home / "controlroom.sqlite").write_bytes(b"")
    (home / "checkpoints.sqlite").write_bytes(b"")
    with Runner(home=home) as runner:
        assert runner.list_runs() == []
    assert _user_version(home / "controlroom.sqlite") == Store.SCHEMA_VERSION


def test_a_store_is_stamped_with_its_schema_version_and_an_old_one_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "controlroom.sqlite"
    Store(path).close()
    assert _user_version(path) == Store.SCHEMA_VERSION
    with sqlite3.connect(path) as conn:  # as 0.1 left it: unversioned, no later columns
        conn.execute("PRAGMA user_version = 0")
        conn.execute("ALTER TABLE runs DROP COLUMN parent_checkpoint")
    Store(path).close()
    assert _user_version(path) == Store.SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    assert "parent_checkpoint" in columns


def test_a_store_from_a_newer_version_is_refused_untouched(
    copy: tuple[Path, str, str],
) -> None:
    home, _, _ = copy
    path = home / "controlroom.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {Store.SCHEMA_VERSION + 1}")
        conn.execute("DROP TABLE refusals")  # a table this version would re-create
    result = cli.invoke(app, ["runs"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert text.startswith("State from a newer version: ") and str(path) in text
    assert f"schema version is {Store.SCHEMA_VERSION + 1}" in text and "pip install -U" in text
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "refusals" not in tables and _user_version(path) == Store.SCHEMA_VERSION + 1


def test_another_database_in_place_of_the_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "controlroom.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id TEXT)")
    with pytest.raises(StateError, match=r"not a controlroom store \(its tables: invoices\)"):
        Store(path)


def test_corruption_found_at_query_time_is_one_paragraph(tmp_path: Path) -> None:
    path = tmp_path / "controlroom.sqlite"
    store = Store(path)
    store.close()
    conn = sqlite3.connect(path)  # enough rows to span pages beyond the first
    with conn:
        conn.executemany(
            "INSERT INTO effects (key, run_id, tool, status, started_at) VALUES (?, ?, ?, ?, ?)",
            [(f"k{i}", "r1", "t" * 200, "started", "now") for i in range(200)],
        )
    conn.close()  # the last connection: the WAL goes into the file
    pages_scrambled(path)
    with pytest.raises(StateError, match="database disk image is malformed") as caught:
        Store(path).list_effects()
    assert caught.value.title == "Damaged state file" and str(path) in caught.value.message


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.mark.postgres
def test_a_postgres_store_records_its_version_and_refuses_a_newer_one(
    project: Path, database_url: str
) -> None:
    import psycopg

    Runner(home=project).close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT value FROM controlroom_meta WHERE key = 'schema_version'"
        ).fetchone()
        assert row is not None and int(row[0]) == Store.SCHEMA_VERSION
        conn.execute(
            "UPDATE controlroom_meta SET value = %s WHERE key = 'schema_version'",
            (str(Store.SCHEMA_VERSION + 1),),
        )
    with pytest.raises(StateError, match="newer controlroom") as caught:
        Runner(home=project)
    assert "CONTROLROOM_DATABASE_URL" in caught.value.message
