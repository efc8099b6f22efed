"""Batch parts that need no Ray: inputs, usage errors, queued runs, the SQL translation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom import Runner, RunStatus, UnknownUserError
from controlroom.audit.keys import expected_public_key
from controlroom.audit.log import log_path
from controlroom.audit.verify import verify_log
from controlroom.batch import create_batch, parse_inputs
from controlroom.cli import app
from controlroom.errors import ConfigError, RunNotFoundError, RunStateError
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, load_workflow
from controlroom.graphs.storage.checkpoints import saver_history as checkpoints_from_saver
from controlroom.graphs.storage.postgres import translate
from tests.batch_support import batch_workflow


def test_inputs_are_strings_or_objects_one_per_line() -> None:
    parsed = parse_inputs(
        '"Settle #1"\n\n{"input": "Settle #2", "user": "bob", "model": "scripted:x.yaml"}\n'
    )
    assert [(i.input, i.user, i.model) for i in parsed] == [
        ("Settle #1", None, None),
        ("Settle #2", "bob", "scripted:x.yaml"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"input": "ok"}\n{"input": "x",}\n', "in.jsonl:2: not valid JSON"),
        ('{"input": "ok"}\n[1, 2]\n', "in.jsonl:2: a JSON list, expected a string or an object"),
        ('{"inptu": "x"}\n', "in.jsonl:1: `input`: Field required; `inptu`: Extra inputs"),
        ('{"input": ""}\n', "in.jsonl:1: `input`: String should have at least 1 character"),
        ("\n\n", "in.jsonl holds no inputs"),
    ],
)
def test_malformed_inputs_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_inputs(text, "in.jsonl")
    assert caught.value.title == "Malformed batch inputs"
    assert problem in caught.value.message


def test_cli_usage_errors_exit_2_with_one_paragraph(project: Path, tmp_path: Path) -> None:
    wf = batch_workflow(tmp_path / "wf")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "fine"}\nnot json\n')
    cli = CliRunner()
    cases = [
        (["batch", str(wf), str(bad), "--user", "alice"], f"{bad}:2: not valid JSON"),
        (["batch", str(wf), str(bad), "--user", "alice", "--ray", "h:6379", "-w", "2"],
         "--workers sizes the local Ray instance"),
        (["batch", str(wf)], "Give a WORKFLOW and an INPUTS file"),
        (["batch", "--resume", "bnope"], "No single batch 'bnope'"),
        (["batch", str(wf), "--resume", "b1"], "--resume continues a recorded batch"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    assert Runner(home=project).list_runs() == []  # nothing was created
    as_json = cli.invoke(app, ["batch", str(wf), str(bad), "--user", "alice", "--json"])
    assert json.loads(as_json.stdout)["error"]["title"] == "Malformed batch inputs"


@pytest.mark.usefixtures("backend")
def test_a_batch_creates_queued_runs_that_resume_starts(project: Path, tmp_path: Path) -> None:
    runner = Runner(home=project)
    wf = batch_workflow(tmp_path / "wf")
    wf_object = load_workflow(wf)
    wf_object.ref = PYTHON_OBJECT
    with pytest.raises(RunStateError, match="cannot see a Workflow object"):
        create_batch(runner, wf_object, parse_inputs('"x"'), user="alice")
    with pytest.raises(UnknownUserError, match="carol"):  # unknown users fail before any write
        create_batch(runner, wf, parse_inputs('"x"\n{"input": "y", "user": "carol"}'), user="alice")
    assert runner.list_runs() == [] and runner.store.list_batches() == []

    batch, items = create_batch(runner, wf, parse_inputs('"Settle #1"\n"Settle #2"'), user="bob")
    assert [r.status for r in runner.list_runs()] == [RunStatus.QUEUED] * 2
    again, again_items = runner.store.get_batch(batch.batch_id[:5])
    assert again == batch and again_items == items
    # Creating a run that exists (a crashed driver going on) returns it unchanged.
    assert runner.create(wf, user="bob", input="other", run_id=items[0].run_id).input == "Settle #1"
    with pytest.raises(RunStateError, match="not a run id"):
        runner.create(wf, user="bob", input="x", run_id="not-an-id")
    done = runner.resume(items[0].run_id)
    assert done.status is RunStatus.COMPLETED and done.output == "Posted 250.00 to ACC-1."
    s = runner.settings
    key = expected_public_key(s.keys_path, s.audit_key, s.audit_public_key)
    assert verify_log(log_path(s.audit_path, items[0].run_id), expected_key=key).ok
    with pytest.raises(RunNotFoundError, match="No single batch"):
        runner.store.get_batch("bzzz")
    runner.close()


def test_sqlite_statements_translate_to_postgres() -> None:
    assert translate("SELECT * FROM runs WHERE run_id = ? AND x LIKE ?") == (
        "SELECT * FROM runs WHERE run_id = %s AND x LIKE %s"
    )
    assert translate("UPDATE runs SET a = :a, b = :b WHERE run_id = :run_id") == (
        "UPDATE runs SET a = %(a)s, b = %(b)s WHERE run_id = %(run_id)s"
    )
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    # Quoted text, casts and percent signs are left alone (percent doubled for psycopg).
    assert translate("SELECT '?:x%' , y::text, 5 % 2 FROM t WHERE s = 'pending'") == (
        "SELECT '?:x%%' , y::text, 5 %% 2 FROM t WHERE s = 'pending'"
    )
    with pytest.raises(ConfigError, match="INSERT OR REPLACE"):
        translate("INSERT OR REPLACE INTO t VALUES (?)")


@pytest.mark.usefixtures("backend")
def test_checkpoint_history_and_forks_work_on_every_backend(project: Path, tmp_path: Path) -> None:
    runner = Runner(home=project)
    done = runner.start(batch_workflow(tmp_path / "wf"), user="alice", input="Settle #1")
    history = runner.checkpoints(done.run_id)
    assert [(i.step, i.ran, i.next) for i in history] == [
        (-1, [], ["__start__"]),
        (0, ["__start__"], ["route"]),
        (1, ["route"], ["small"]),
        (2, ["small"], ["post"]),
        (3, ["post"], ["small"]),
        (4, ["small"], []),
    ]
    # The generic listing (what PostgreSQL uses) agrees with the SQLite fast path.
    generic = checkpoints_from_saver(runner.checkpointer, done.run_id)
    assert [i.model_dump() for i in generic] == [i.model_dump() for i in history]
    fork = runner.fork(done.run_id, "step:2", by="bob", resume=True)
    assert fork.run.parent_run_id == done.run_id and fork.status is RunStatus.COMPLETED
    runner.close()
