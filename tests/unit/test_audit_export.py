"""Export: the log as is (jsonl) or as OTLP/JSON traces; nothing is sent anywhere."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controlroom.audit import export_jsonl, read_records, to_otlp
from controlroom.cli import app
from tests.audit_support import audit_log, finished_run, write_workflow


def test_jsonl_is_the_log_byte_for_byte_and_otlp_is_one_trace(
    tmp_path: Path, project: Path
) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    path = audit_log(project, run_id)
    assert export_jsonl(path) == path.read_bytes()
    records = read_records(path)
    request = to_otlp(records, run_id)
    [resource] = request["resourceSpans"]
    [scope] = resource["scopeSpans"]
    spans = scope["spans"]
    assert scope["scope"]["name"] == "controlroom.audit"
    assert len(spans) == len(records) + 1
    root = spans[0]
    assert root["name"] == "invoke_workflow payments"
    assert {s["traceId"] for s in spans} == {root["traceId"]} and len(root["traceId"]) == 32
    assert all(s["parentSpanId"] == root["spanId"] for s in spans[1:])
    names = [s["name"] for s in spans[1:]]
    assert "chat script.yaml" in names and "execute_tool pay_invoice" in names
    chat = next(s for s in spans if s["name"] == "chat script.yaml")
    attributes = {a["key"]: a["value"] for a in chat["attributes"]}
    assert attributes["gen_ai.operation.name"] == {"stringValue": "chat"}
    assert "intValue" in attributes["gen_ai.usage.input_tokens"]
    assert int(chat["endTimeUnixNano"]) >= int(chat["startTimeUnixNano"])
    assert attributes["controlroom.audit.seq"]["intValue"] == "1"


def test_the_export_command_writes_a_file_or_stdout(tmp_path: Path, project: Path) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    cli = CliRunner()
    out = tmp_path / "trace.json"
    made = cli.invoke(app, ["audit", "export", run_id, "--format", "otlp-json", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert json.loads(out.read_text())["resourceSpans"]
    piped = cli.invoke(app, ["audit", "export", run_id[:5]])
    assert piped.exit_code == 0
    assert piped.stdout_bytes == audit_log(project, run_id).read_bytes()
