"""Export a run's audit log for an observability stack: nothing is sent anywhere.

``jsonl``      the log's own lines, byte for byte (verifiable wherever they go)
``otlp-json``  an OTLP/JSON ``ExportTraceServiceRequest`` (what an OpenTelemetry collector's
               ``otlp`` receiver or ``otlpjsonfile`` reader takes): one trace per run, a root
               span ``invoke_workflow <name>`` and one child span per record, named the
               GenAI way (``chat <model>``, ``execute_tool <tool>``), with the record's fields
               as attributes and ``controlroom.audit.seq`` / ``controlroom.audit.hash`` to
               find the signed record again. Model calls and tool results span their
               latency; other records are instants.

Writing the file (or stdout) is all this module does; shipping it is up to you.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from controlroom.audit.canonical import canonical, sha256
from controlroom.audit.records import TOOL_NAME, Kind

_SKIP = {"v", "seq", "time", "run_id", "prev_hash", "sig", "pub"}


def export_jsonl(path: Path) -> bytes:
    """The log's whole lines, unchanged (a torn last line is left out)."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def _nanos(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1_000_000) * 1000


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": json.dumps(value, sort_keys=True, ensure_ascii=False)}


def _attributes(fields: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in sorted(fields.items()) if v is not None]


def _span_name(record: dict[str, Any]) -> str:
    kind = record.get("kind")
    if kind == Kind.MODEL_CALL:
        return f"chat {record.get('gen_ai.request.model')}"
    if kind in (Kind.TOOL_DECISION, Kind.TOOL_RESULT):
        return f"execute_tool {record.get(TOOL_NAME)}" + (
            " (decision)" if kind == Kind.TOOL_DECISION else ""
        )
    return str(kind)


def to_otlp(records: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """An OTLP/JSON trace export request for one run's records."""
    trace_id = hashlib.sha256(f"controlroom trace {run_id}".encode()).hexdigest()[:32]

    def span_id(label: str) -> str:
        return hashlib.sha256(f"{run_id} {label}".encode()).hexdigest()[:16]

    root = span_id("root")
    spans: list[dict[str, Any]] = []
    starts: list[int] = []
    for record in records:
        end = _nanos(str(record["time"]))
        latency = record.get("controlroom.latency_ms")
        begin = end - int(float(latency) * 1_000_000) if isinstance(latency, int | float) else end
        starts.append(begin)
        fields = {k: v for k, v in record.items() if k not in _SKIP}
        fields["controlroom.audit.seq"] = record.get("seq")
        fields["controlroom.audit.hash"] = sha256(canonical(record))
        fields["controlroom.audit.prev_hash"] = record.get("prev_hash")
        spans.append(
            {
                "traceId": trace_id,
                "spanId": span_id(f"record {record.get('seq')}"),
                "parentSpanId": root,
                "name": _span_name(record),
                "kind": 3 if record.get("kind") == Kind.MODEL_CALL else 1,  # CLIENT / INTERNAL
                "startTimeUnixNano": str(begin),
                "endTimeUnixNano": str(end),
                "attributes": _attributes(fields),
                "status": {"code": 2} if record.get("error.type") else {},
            }
        )
    start = next((r for r in records if r.get("kind") == Kind.RUN_START), {})
    workflow = (start.get("controlroom.workflow") or {}).get("name", "run")
    first = min(starts) if starts else 0
    last = max((int(s["endTimeUnixNano"]) for s in spans), default=0)
    root_span = {
        "traceId": trace_id,
        "spanId": root,
        "name": f"invoke_workflow {workflow}",
        "kind": 1,
        "startTimeUnixNano": str(first),
        "endTimeUnixNano": str(last),
        "attributes": _attributes(
            {
                "gen_ai.operation.name": "invoke_workflow",
                "controlroom.run.id": run_id,
                "user.id": start.get("user.id"),
            }
        ),
        "status": {},
    }
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes({"service.name": "controlroom"})},
                "scopeSpans": [
                    {
                        "scope": {"name": "controlroom.audit", "version": "1"},
                        "spans": [root_span, *spans],
                    }
                ],
            }
        ]
    }
