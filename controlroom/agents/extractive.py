"""A deterministic stand-in for a model answering from passages: it quotes the best one.

:class:`ExtractiveChatModel` answers a grounded-answer request (an ``answer`` step) with
the first sentences of the first passage it was given, citing that passage's id, and
abstains when it was given none. It can only repeat what the passages say, which makes
it the test double for checking *what a user's answer can contain*: an answer built for
one user can never hold text from a passage that user's search did not return. It is not
a language model; use it in tests and as an evaluation baseline (``extractive:quote``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

_PASSAGE = re.compile(
    r"^\[(c[0-9a-f]{12})\] [^\n]*\n(.*?)(?=\n\n\[c[0-9a-f]{12}\] |\Z)", re.M | re.S
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class ExtractiveChatModel(BaseChatModel):
    """Quotes ``sentences`` sentences of the first passage and cites it (see module doc)."""

    sentences: int = 2

    @property
    def _llm_type(self) -> str:
        return "extractive"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        system = next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")
        _, _, given = system.partition("Passages:\n")
        found = _PASSAGE.findall(given)
        if not found:
            reply = {
                "reasoning": "No passage was given.",
                "answer": "",
                "citations": [],
                "abstain": True,
            }
        else:
            chunk_id, text = found[0]
            quote = " ".join(_SENTENCE.split(" ".join(text.split()))[: self.sentences])
            reply = {
                "reasoning": f"Passage {chunk_id} is the most relevant one given.",
                "answer": quote,
                "citations": [chunk_id],
                "abstain": False,
            }
        message = AIMessage(content=json.dumps(reply))
        return ChatResult(generations=[ChatGeneration(message=message)])
