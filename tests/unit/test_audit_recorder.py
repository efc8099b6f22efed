"""What the recorder writes, apart from a run: diffs, policy-set hashes, retrieval, off."""

from __future__ import annotations

from pathlib import Path

from controlroom.audit import AuditLog, RunAudit, read_records
from controlroom.audit.recorder import args_diff, content_text, policy_set_hash


def test_edited_arguments_are_a_json_patch_like_diff() -> None:
    before = {"invoice_id": "INV-1", "amount": 1250.0, "note": "x", "meta": {"a": 1}}
    after = {"invoice_id": "INV-1", "amount": 1200.0, "memo": "y", "meta": {"a": 2}}
    assert args_diff(before, after) == [
        {"op": "replace", "path": "/amount", "old": 1250.0, "value": 1200.0},
        {"op": "add", "path": "/memo", "value": "y"},
        {"op": "replace", "path": "/meta/a", "old": 1, "value": 2},
        {"op": "remove", "path": "/note", "old": "x"},
    ]
    assert args_diff({"a": 1}, {"a": 1}) == []


def test_a_gate_may_expose_its_policy_set_hash_any_way() -> None:
    class Attribute:
        policy_hash = "sha256:a"

    class Method:
        def policy_set_hash(self) -> str:
            return "sha256:b"

    assert policy_set_hash(Attribute()) == "sha256:a"
    assert policy_set_hash(Method()) == "sha256:b"
    assert policy_set_hash(object()) is None


def test_tool_results_are_recorded_as_the_model_sees_them() -> None:
    assert content_text({"b": 1.0, "a": "x"}) == '{"a": "x", "b": 1.0}'
    assert content_text("plain") == "plain"


def test_retrieval_records_chunk_ids_labels_and_scores(tmp_path: Path) -> None:
    audit = RunAudit(AuditLog(tmp_path / "r.jsonl", "r"))
    chunks = [{"id": "doc1#3", "labels": ["finance"], "score": 0.82, "text": "not copied"}]
    audit.retrieval(step=2, node="search", query="refund policy", chunks=chunks)
    [record] = read_records(tmp_path / "r.jsonl")
    assert record["kind"] == "retrieval"
    assert record["controlroom.retrieval.chunks"] == [
        {"id": "doc1#3", "labels": ["finance"], "score": 0.82}
    ]


def test_a_disabled_audit_records_nothing(tmp_path: Path) -> None:
    audit = RunAudit.disabled()
    audit.error("x")
    audit.run_stopped("completed")
    audit.checkpoint("x")
    audit.close()
    assert not audit.enabled
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_records_its_error_and_is_signed(project: Path) -> None:
    from controlroom import GraphBuilder, Runner, RunStatus
    from controlroom.audit import verify_log
    from controlroom.testing import ScriptedChatModel
    from tests.audit_support import audit_log, project_key

    wf = GraphBuilder("short", model="scripted:none").model("agent", "Hi {user.name}.").build()
    model = ScriptedChatModel(replies=[])  # runs out at once
    with Runner(home=project, models={"scripted:none": model}) as runner:
        result = runner.start(wf, user="alice", input="hello")
    assert result.status is RunStatus.FAILED
    records = read_records(audit_log(project, result.run_id))
    assert [r["kind"] for r in records] == ["run.start", "error", "run.end", "checkpoint"]
    assert "the script has run out" in records[1]["controlroom.error.message"]
    assert records[1]["node"] == "agent" and records[2]["controlroom.run.status"] == "failed"
    assert verify_log(audit_log(project, result.run_id), expected_key=project_key(project)).ok
