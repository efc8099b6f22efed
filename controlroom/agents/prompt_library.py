"""The prompt library: versioned prompt files with ids, shared between workflows.

A library is a ``prompts/`` folder holding one folder per prompt id, one file per version::

    prompts/
      grounded-answer/
        v1.md
        v2.md          # optional front matter: ---\\ndescription: ...\\n---

A workflow finds prompts in the ``prompts/`` folder next to its file first, then in the
``prompts/`` folder of the parent folder (``examples/prompts`` is shared by every example);
an id found in both is the nearer one's. A step's ``prompt:`` names one with ``"@ID"`` (the
latest version) or ``"@ID@N"`` (version N); the workflow loader puts the text in the step
and the audit's ``model.call`` records carry the prompt's id, version and sha256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from controlroom.errors import PromptNotFoundError

__all__ = [
    "PROMPTS_FOLDER",
    "PromptLibrary",
    "PromptRef",
    "PromptVersion",
    "parse_override",
    "parse_overrides",
    "parse_ref",
]

PROMPTS_FOLDER = "prompts"
PROMPT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REF = re.compile(r"^@([a-z0-9][a-z0-9._-]*)(?:@v?([0-9]+))?$")
_VERSION_FILE = re.compile(r"^v([0-9]+)\.md$")


class PromptRef(BaseModel):
    """Which library prompt a step uses: what the audit records."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int
    sha256: str


@dataclass(frozen=True)
class PromptVersion:
    """One version of one prompt: its text (front matter removed) and description."""

    id: str
    version: int
    path: Path
    text: str
    description: str = ""

    @property
    def sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def ref(self) -> PromptRef:
        return PromptRef(id=self.id, version=self.version, sha256=self.sha256)


def parse_ref(text: str) -> tuple[str, int | None] | None:
    """``"@id"`` -> (id, None); ``"@id@2"`` -> (id, 2); anything else (a template) -> None."""
    match = _REF.match(text.strip())
    if match is None:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def parse_override(text: str) -> tuple[str, int]:
    """``"id@2"`` (or ``id@v2``, ``@id@2``) -> (id, 2), for ``--prompt``."""
    match = _REF.match(text.strip() if text.strip().startswith("@") else "@" + text.strip())
    if match is None or match.group(2) is None:
        raise PromptNotFoundError(
            f"'{text}' is not a prompt version. Write ID@VERSION, for example "
            "`grounded-answer@2` (`controlroom prompts list` shows the ids and versions)."
        )
    return match.group(1), int(match.group(2))


def parse_overrides(texts: Sequence[str]) -> dict[str, int]:
    return dict(parse_override(t) for t in texts)


def _read(prompt_id: str, version: int, path: Path) -> PromptVersion:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptNotFoundError(
            f"Cannot read prompt file {path} ({exc}); it must be UTF-8 text."
        ) from None
    description = ""
    if raw.startswith("---\n"):
        head, sep, body = raw[4:].partition("\n---\n")
        if sep:
            try:
                meta = yaml.safe_load(head) or {}
            except yaml.YAMLError as exc:
                raise PromptNotFoundError(
                    f"{path}: the front matter is not valid YAML ({exc}). Write "
                    "`---`, `description: ...`, `---` at the top, or leave it out."
                ) from None
            if isinstance(meta, dict):
                description = str(meta.get("description") or "")
            raw = body
    return PromptVersion(prompt_id, version, path, raw.strip("\n").rstrip(), description)


class PromptLibrary:
    """The prompts found in some ``prompts/`` folders (nearer folders first)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [f for f in folders if f.is_dir()]
        self._files: dict[str, dict[int, Path]] = {}
        for folder in reversed(self.folders):  # nearer folders win: read them last
            for sub in sorted(folder.iterdir()):
                if not sub.is_dir() or not PROMPT_ID.match(sub.name):
                    continue
                versions = {
                    int(m.group(1)): f
                    for f in sub.iterdir()
                    if (m := _VERSION_FILE.match(f.name)) and f.is_file()
                }
                if versions:
                    self._files[sub.name] = versions

    @classmethod
    def for_workflow(cls, base_dir: Path) -> PromptLibrary:
        """``<workflow folder>/prompts``, then ``<its parent>/prompts``."""
        base = base_dir.resolve()
        return cls([base / PROMPTS_FOLDER, base.parent / PROMPTS_FOLDER])

    def ids(self) -> list[str]:
        return sorted(self._files)

    def versions(self, prompt_id: str) -> list[int]:
        return sorted(self._files.get(prompt_id, {}))

    def _where(self) -> str:
        return " or ".join(str(f) for f in self.folders) or "no prompts/ folder"

    def get(self, prompt_id: str, version: int | None = None) -> PromptVersion:
        """A version of a prompt (the latest without ``version``)."""
        files = self._files.get(prompt_id)
        if not files:
            known = ", ".join(self.ids()) or "none"
            raise PromptNotFoundError(
                f"No prompt '{prompt_id}' in {self._where()} (known: {known}). Add "
                f"prompts/{prompt_id}/v1.md next to the workflow or in its parent folder."
            )
        chosen = max(files) if version is None else version
        if chosen not in files:
            have = ", ".join(str(v) for v in sorted(files))
            raise PromptNotFoundError(
                f"Prompt '{prompt_id}' has no version {chosen} (versions: {have}). Add "
                f"v{chosen}.md to its folder or name an existing version."
            )
        return _read(prompt_id, chosen, files[chosen])

    def all(self) -> list[PromptVersion]:
        return [self.get(i, v) for i in self.ids() for v in self.versions(i)]

    def resolve(
        self, text: str, overrides: Mapping[str, int] | None = None
    ) -> PromptVersion | None:
        """The prompt a step's ``prompt:`` names (an override's version wins), or None for
        an ordinary template."""
        parsed = parse_ref(text)
        if parsed is None:
            return None
        prompt_id, version = parsed
        if overrides and prompt_id in overrides:
            version = overrides[prompt_id]
        return self.get(prompt_id, version)
