"""Grounded answers: the answer, its reasoning and the chunk ids it rests on, checked.

The model replies with ``{"reasoning": ..., "answer": ..., "citations": [chunk ids]}``
(or sets ``"abstain": true`` when the chunks do not answer the question). The check is
mechanical and strict: every cited id must be one of the chunks the model was given,
and an answer needs at least one citation when documents are required. A failed check
is fed back to the model and retried a bounded number of times; then the step abstains
with :data:`ABSTAIN` rather than pass an unsupported answer on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from controlroom.retrieval.retriever import ABSTAIN, RetrievedChunk

_INLINE = re.compile(r"\[(c[0-9a-f]{12})\]")


class GroundedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasoning: str = Field(description="how the cited passages answer the question")
    answer: str = Field(description="the answer for the user, without the reasoning")
    citations: list[str] = Field(
        default_factory=list, description="ids of the passages the answer rests on"
    )
    abstain: bool = Field(
        default=False, description="true when the passages do not answer the question"
    )


class CitationCheck(BaseModel):
    ok: bool
    problem: str | None = None
    cited: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


def check_citations(
    reply: GroundedAnswer, chunks: Sequence[RetrievedChunk], *, require: bool = True
) -> CitationCheck:
    """Whether ``reply`` cites only chunks it was given (and at least one, if required)."""
    given = {c.id for c in chunks}
    cited = list(dict.fromkeys([*reply.citations, *_INLINE.findall(reply.answer)]))
    if reply.abstain:
        return CitationCheck(ok=True, cited=cited)
    unknown = [c for c in cited if c not in given]
    if unknown:
        return CitationCheck(
            ok=False,
            cited=cited,
            unknown=unknown,
            problem=(
                f"it cites {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} "
                f"not among the passages given ({', '.join(sorted(given)) or 'none'}). Cite only "
                "those ids, or abstain"
            ),
        )
    if require and not cited:
        return CitationCheck(
            ok=False,
            cited=cited,
            problem="it cites no passage. Every answer must cite the ids of the passages it "
            "rests on, or abstain",
        )
    return CitationCheck(ok=True, cited=cited)


def passages(chunks: Sequence[RetrievedChunk]) -> str:
    """The chunks as the model reads them: id, where it comes from, and its text."""
    if not chunks:
        return "(no passages: none that you may use matched the question)"
    return "\n\n".join(f"{c.cite_as()}\n{c.text}" for c in chunks)


__all__ = ["ABSTAIN", "CitationCheck", "GroundedAnswer", "check_citations", "passages"]
