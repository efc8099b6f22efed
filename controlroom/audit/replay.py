"""Replay: play a recorded run again without any model or tool effect, and compare.

The parts here know nothing of graphs; :func:`controlroom.graphs.control.replay.replay_run` drives
the workflow with them in a scratch project folder:

* :class:`ReplaySession` reads what a log says happened, keeping the last attempt of
  anything recorded more than once (what the run went on with after a re-execution);
* :class:`ReplayChatModel` answers with the recorded replies, in order, and stops the
  replay with :class:`ReplayDivergence` as soon as the conversation it is asked to answer
  differs from the recorded input (by hash) or it is asked for more replies than recorded;
* :meth:`ReplaySession.dry_run` turns a tool into one that never runs: it returns the
  recorded result of the call (or raises its recorded error);
* :func:`compare` finds the first difference between the events of two logs: model calls
  (input and output hashes), approval requests and decisions, tool decisions (tool,
  arguments hash, verdict, deciding policies) and tool results, and the run's end.

A replay needs outputs recorded in full (redaction ``full``): hashed or masked replies
cannot be played back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from controlroom.audit.errors import ReplayError
from controlroom.audit.messages import input_digest, reply_from_record
from controlroom.audit.records import APPROVAL_ID, CALL_ID, TOOL_NAME, Kind, record_key
from controlroom.audit.redact import Redactor
from controlroom.audit.verify import VerifyReport
from controlroom.tools.spec import Tool, ToolContext


class ReplayDivergence(ReplayError):
    title = "Replay diverged"


@dataclass(frozen=True)
class Divergence:
    """The first point where the replay and the record differ."""

    what: str
    seq: int | None = None  # the record in the original log, when there is one
    recorded: Any = None
    replayed: Any = None


COMPARED: dict[str, tuple[str, ...]] = {
    Kind.RUN_START: ("user.id", "controlroom.workflow.digest", "controlroom.input.sha256"),
    Kind.MODEL_CALL: ("controlroom.input.sha256", "controlroom.output.sha256"),
    Kind.RETRIEVAL: ("controlroom.retrieval.chunks",),
    Kind.GROUNDING: (
        "controlroom.grounding.ok",
        "controlroom.grounding.cited",
        "controlroom.grounding.outcome",
    ),
    Kind.APPROVAL_REQUESTED: (
        TOOL_NAME,
        CALL_ID,
        "controlroom.tool.args_sha256",
        "controlroom.gate.verdict",
        "controlroom.policy.ids",
    ),
    Kind.APPROVAL_DECIDED: (
        "controlroom.approval.decision",
        "controlroom.approver.id",
        "controlroom.approval.args_sha256",
    ),
    Kind.TOOL_DECISION: (
        TOOL_NAME,
        "controlroom.tool.args_sha256",
        "controlroom.decision",
        "controlroom.decision.status",
        "controlroom.gate.verdict",
        "controlroom.policy.ids",
    ),
    Kind.TOOL_RESULT: (
        TOOL_NAME,
        "controlroom.tool.status",
        "controlroom.tool.result_sha256",
        "error.type",
    ),
    Kind.RUN_END: ("controlroom.run.status", "controlroom.output.sha256"),
}


def _value(record: dict[str, Any], name: str) -> Any:
    if name == "controlroom.workflow.digest":
        return (record.get("controlroom.workflow") or {}).get("digest")
    return record.get(name)


def describe(record: dict[str, Any]) -> str:
    kind = record.get("kind")
    step = f" at step {record['step']}" if "step" in record else ""
    if kind == Kind.MODEL_CALL:
        return f"the model call{step} ({record.get('node')})"
    if kind in (Kind.TOOL_DECISION, Kind.TOOL_RESULT):
        what = "decision on" if kind == Kind.TOOL_DECISION else "result of"
        return f"the {what} {record.get(TOOL_NAME)} call {record.get(CALL_ID)}{step}"
    if kind in (Kind.APPROVAL_REQUESTED, Kind.APPROVAL_DECIDED):
        what = "request" if kind == Kind.APPROVAL_REQUESTED else "decision"
        subject = record.get(TOOL_NAME) or "checkpoint"
        return f"the approval {what} {record.get(APPROVAL_ID)} ({subject})"
    if kind == Kind.RUN_START:
        return "the run's start"
    if kind == Kind.RUN_END:
        return "the run's end"
    return f"a {kind} record{step}"


def events(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparable events of a log: the last attempt of each, in log order."""
    last: dict[str, tuple[int, dict[str, Any]]] = {}
    for position, record in enumerate(records):
        kind = record.get("kind")
        if kind not in COMPARED:
            continue
        key = record_key(record) or str(kind)
        last[key] = (position, record)
    return [record for _, record in sorted(last.values(), key=lambda item: item[0])]


def compare(
    recorded: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]
) -> tuple[int, Divergence | None]:
    """How many events matched, and the first divergence (None: everything matched)."""
    ours, theirs = events(recorded), events(replayed)
    for count, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a.get("kind") != b.get("kind") or record_key(a) != record_key(b):
            return count, Divergence(
                f"the record has {describe(a)} next, the replay {describe(b)}", a.get("seq")
            )
        for name in COMPARED[str(a["kind"])]:
            if _value(a, name) != _value(b, name):
                return count, Divergence(
                    f"{describe(a)}: `{name}` differs",
                    a.get("seq"),
                    _value(a, name),
                    _value(b, name),
                )
    if len(ours) > len(theirs):
        missing = ours[len(theirs)]
        return len(theirs), Divergence(
            f"the replay stopped before {describe(missing)}", missing.get("seq")
        )
    if len(theirs) > len(ours):
        extra = theirs[len(ours)]
        return len(ours), Divergence(
            f"the replay went on with {describe(extra)}, which the record lacks"
        )
    return len(ours), None


class ReplaySession:
    """What a log recorded, handed out to the replayed run as it asks."""

    def __init__(self, records: Sequence[dict[str, Any]], redactor: Redactor | None = None) -> None:
        starts = [r for r in records if r.get("kind") == Kind.RUN_START]
        if not starts:
            raise ReplayError("The log has no run.start record, so the run cannot be replayed.")
        self.start = starts[0]
        mode = (self.start.get("controlroom.config") or {}).get("audit.redaction", "full")
        if mode != "full":
            raise ReplayError(
                f"The log was recorded with redaction `{mode}`: model replies and tool results "
                "are not in it, so they cannot be played back. Replay needs "
                "CONTROLROOM_AUDIT_REDACTION=full (the default) when the run is recorded."
            )
        kept = events(records)
        self.replies = [r for r in kept if r.get("kind") == Kind.MODEL_CALL]
        self.results = {r.get(CALL_ID): r for r in kept if r.get("kind") == Kind.TOOL_RESULT}
        self.decisions = [r for r in kept if r.get("kind") == Kind.APPROVAL_DECIDED]
        self.redactor = redactor or Redactor()
        self.cursor = 0
        self.divergences: list[Divergence] = []

    def diverge(self, divergence: Divergence) -> ReplayDivergence:
        self.divergences.append(divergence)
        return ReplayDivergence(divergence.what)

    def decision_for(self, approval_id: str) -> dict[str, Any] | None:
        return next((d for d in self.decisions if d.get(APPROVAL_ID) == approval_id), None)

    def next_reply(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
        if self.cursor >= len(self.replies):
            raise self.diverge(
                Divergence(
                    f"the replay asks the model for reply {self.cursor + 1}, but the record "
                    f"has {len(self.replies)} model calls"
                )
            )
        record = self.replies[self.cursor]
        digest = input_digest(messages, tools, self.redactor)
        if digest != record.get("controlroom.input.sha256"):
            raise self.diverge(
                Divergence(
                    f"{describe(record)}: the conversation sent to the model differs from the "
                    "recorded input",
                    record.get("seq"),
                    record.get("controlroom.input.sha256"),
                    digest,
                )
            )
        self.cursor += 1
        try:
            return reply_from_record(record)
        except (KeyError, ValueError, TypeError) as exc:
            raise ReplayError(f"Record {record.get('seq')} cannot be played back: {exc}.") from None

    def dry_run(self, tool: Tool) -> Tool:
        """The tool, not executed: its recorded result for each call is handed back."""

        def recorded_result(ctx: ToolContext, **_: Any) -> Any:
            record = self.results.get(ctx.call_id)
            if record is None:
                raise self.diverge(
                    Divergence(
                        f"the replay runs {tool.name} (call {ctx.call_id}), which the record "
                        "never ran"
                    )
                )
            if record.get("controlroom.tool.status") == "error":
                error = type(str(record.get("error.type") or "Exception"), (Exception,), {})
                raise error(record.get("controlroom.error.message", ""))
            text = record.get("gen_ai.tool.call.result")
            if not isinstance(text, str):
                raise ReplayError(f"The result in record {record.get('seq')} is redacted.")
            if record.get("controlroom.tool.result_format") == "json":
                return json.loads(text)
            return text

        return tool.model_copy(update={"func": recorded_result, "wants_context": True})


def _tool_names(tools: Sequence[Any]) -> list[str]:
    names = []
    for item in tools:
        function = convert_to_openai_tool(item).get("function") or {}
        names.append(str(function.get("name", "")))
    return names


class ReplayChatModel(BaseChatModel):
    """A chat model that plays a :class:`ReplaySession`'s recorded replies."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session: ReplaySession
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "replay"

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(update={"bound_tools": _tool_names(tools)})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.session.next_reply(messages, self.bound_tools)
        return ChatResult(generations=[ChatGeneration(message=reply)])


_WHEN = {
    "plan": "the call as the model asked for it",
    "recheck": "the arguments as the approver edited them",
    "edit": "the approver's edit, checked before it was recorded",
}


@dataclass
class ReplayReport:
    """The outcome of a replay: matched, or the first divergence."""

    run_id: str
    verification: VerifyReport
    matched: bool
    compared: int = 0
    divergence: Divergence | None = None
    replay_status: str | None = None
    replay_error: str | None = None
    refused: bool = False  # the log failed verification and --unverified was not given
    counts: dict[str, int] = field(default_factory=dict)
    redecided: bool = False  # decisions were also taken with today's policies and data
    drift: list[dict[str, Any]] = field(default_factory=list)  # where today decides otherwise
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 matches; 1 diverges (or refused); 3 matches, but today's policies or data
        decide some calls differently (only with ``redecide``)."""
        if not self.matched:
            return 1
        return 3 if self.drift else 0

    def summary(self) -> str:
        lines = []
        if not self.verification.ok:
            lines.append(self.verification.summary())
        if self.refused:
            lines.append(
                f"Not replayed: the log of run {self.run_id} fails verification. Pass "
                "--unverified to replay it anyway and find where it diverges."
            )
            return "\n".join(lines)
        if self.matched:
            parts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
            lines.append(
                f"Replay of run {self.run_id} matches the record: {self.compared} events "
                f"({parts}); "
                f"no model was called and no tool was executed."
            )
        else:
            d = self.divergence
            where = f" (record {d.seq})" if d and d.seq is not None else ""
            lines.append(f"Replay of run {self.run_id} DIVERGES{where}: {d.what if d else '?'}")
            if d and (d.recorded is not None or d.replayed is not None):
                lines.append(f"  recorded: {json.dumps(d.recorded)}")
                lines.append(f"  replayed: {json.dumps(d.replayed)}")
            if self.replay_error:
                lines.append(f"  the replayed run stopped: {self.replay_error}")
        if self.redecided:
            if not self.drift:
                lines.append(
                    "Re-decided with today's policies, data and directory: every decision "
                    "is the same (no policy drift)."
                )
            else:
                lines.append(
                    f"Re-decided with today's policies, data and directory: {len(self.drift)} "
                    "decision(s) differ (policy drift; the record itself is unchanged):"
                )
                for item in self.drift:
                    then, now = item["recorded"], item["today"]
                    when = _WHEN.get(str(item["when"]), str(item["when"]))
                    lines.append(
                        f"  step {item['step']} {item['tool']} (call {item['call_id']}, {when}): "
                        f"{then['verdict']} then ({', '.join(then['policies']) or '-'}), "
                        f"{now['verdict']} today ({', '.join(now['policies']) or '-'}): "
                        f"{now['reason']}"
                    )
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        d = self.divergence
        return {
            "run_id": self.run_id,
            "matched": self.matched,
            "refused": self.refused,
            "compared": self.compared,
            "counts": self.counts,
            "divergence": None
            if d is None
            else {"what": d.what, "seq": d.seq, "recorded": d.recorded, "replayed": d.replayed},
            "replay_status": self.replay_status,
            "replay_error": self.replay_error,
            "redecided": self.redecided,
            "drift": self.drift,
            "notes": self.notes,
            "verification": self.verification.to_json(),
            "summary": self.summary(),
        }
