"""What an audit record is: kinds, common fields, and the key that spots re-executions.

One line of a log is the RFC 8785 form of one JSON object. Every record has:

``v``          format version (1)
``seq``        0, 1, 2 ... its position in the run's log
``time``       UTC, ISO 8601 with milliseconds
``kind``       one of :class:`Kind`
``run_id``     the run it belongs to
``prev_hash``  ``sha256:`` of the previous line's bytes (of the run's genesis for seq 0)
``pid``        the process that wrote it (several processes may write one run's log)

Records about one step also carry ``step`` (LangGraph's step number), ``node`` (the step id)
and ``attempt``. LangGraph re-executes a whole node after a crash and when a run resumes
from an approval; an action recorded again (a model called again, a decision taken again
for the same call) gets ``attempt`` 2, 3 ... so a re-execution is visible rather than
confusing. Decisions are recorded when they are final (right before the call executes or
is refused); the approval request and decision are recorded once per approval id.

Payload fields use the OpenTelemetry GenAI names where one exists (``gen_ai.*``, ``error.type``)
and ``controlroom.*`` otherwise.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    RUN_START = "run.start"
    RUN_RESUME = "run.resume"
    MODEL_CALL = "model.call"
    RETRIEVAL = "retrieval"
    GROUNDING = "answer.check"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    TOOL_DECISION = "tool.decision"
    TOOL_RESULT = "tool.result"
    ERROR = "error"
    RUN_WAIT = "run.wait"
    RUN_PAUSE = "run.pause"
    RUN_END = "run.end"
    CHECKPOINT = "checkpoint"
    LOG_REPAIR = "log.repair"


# Field names used by writers and readers alike.
CALL_ID = "gen_ai.tool.call.id"
TOOL_NAME = "gen_ai.tool.name"
APPROVAL_ID = "controlroom.approval.id"
DECISION = "controlroom.decision"
STATUS = "controlroom.run.status"


def record_key(record: dict[str, Any]) -> str | None:
    """What a record is about, for counting attempts and for keeping the last one."""
    kind = record.get("kind")
    if kind == Kind.MODEL_CALL:
        call = record.get("controlroom.model.call")
        return f"model:{record.get('step')}:{record.get('node')}" + (f":{call}" if call else "")
    if kind == Kind.TOOL_DECISION:
        return f"decision:{record.get('step')}:{record.get(CALL_ID)}"
    if kind == Kind.TOOL_RESULT:
        return f"result:{record.get('step')}:{record.get(CALL_ID)}"
    if kind == Kind.RETRIEVAL:
        return f"retrieval:{record.get('step')}:{record.get('node')}"
    if kind == Kind.GROUNDING:
        attempt = record.get("controlroom.grounding.attempt")
        return f"grounding:{record.get('step')}:{record.get('node')}:{attempt}"
    if kind in (Kind.APPROVAL_REQUESTED, Kind.APPROVAL_DECIDED):
        return f"{kind}:{record.get(APPROVAL_ID)}"
    return None
