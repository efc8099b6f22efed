"""The evaluation dataset (docs/evaluation-format.md) as pydantic models, and its loader.

Problems are reported as one :class:`~controlroom.errors.DatasetError` naming the file, the
line and the key path (``cases[3].expect.vars``), like malformed workflow files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controlroom.errors import ControlroomError, DatasetError
from controlroom.graphs.authoring.workflow_file import SourceMap

__all__ = [
    "ApprovalAnswer",
    "ApprovalPolicy",
    "Case",
    "Dataset",
    "Defaults",
    "Expect",
    "Setup",
    "answer_for",
    "find_dataset",
    "load_dataset",
]

ApprovalAnswer = Literal["approve", "reject", "pending"]
ApprovalPolicy = ApprovalAnswer | dict[str, ApprovalAnswer]
DATASET_FILE = Path("eval") / "dataset.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Setup(_Strict):
    """What the eval's fresh project folder is prepared with (once, before any case)."""

    directory: str = Field(
        default="sample", description="`sample` (the shipped sample directory) or a path"
    )
    pack: bool = Field(default=False, description="create the enterprise tool pack database")
    ingest: list[str] = Field(default_factory=list, description="paths to ingest (documents)")


class Defaults(_Strict):
    user: str | None = None
    approvals: ApprovalPolicy = "approve"
    approver: str | None = None


class Expect(_Strict):
    """Expected outcomes; a case succeeds when every key given holds."""

    status: Literal["completed", "waiting", "failed"] | None = None
    vars: dict[str, Any] | None = None
    tools_called: list[str] = Field(default_factory=list)
    tools_not_called: list[str] = Field(default_factory=list)
    tool_args: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per tool, arguments one of its executed calls must have (a subset; "
        "numbers match however they are written)",
    )
    output_contains: list[str] = Field(default_factory=list)
    output_excludes: list[str] = Field(default_factory=list)
    abstain: bool | None = None
    cite_sources: list[str] = Field(default_factory=list)
    approvals_requested: int | None = Field(default=None, ge=0)


class Case(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    input: str
    description: str = ""  # extension: a note for readers of the dataset and the report
    user: str | None = None
    approvals: ApprovalPolicy | None = None
    approver: str | None = None  # extension: who answers this case's approvals
    tags: list[str] = Field(default_factory=list)
    script: str | None = None
    expect: Expect = Field(default_factory=Expect)


class Dataset(_Strict):
    name: str
    description: str = ""  # extension
    workflow: str = ".."
    setup: Setup = Field(default_factory=Setup)
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Dataset:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"the case id `{case.id}` is used twice; ids must be unique")
            seen.add(case.id)
        return self


def answer_for(case: Case, defaults: Defaults, tool_or_step: str | None) -> ApprovalAnswer:
    """How the eval answers one approval: the case's policy, then the dataset's defaults
    (a mapping looks the tool name, or the approval step's id, up, then ``*``); an
    approval no policy covers stays pending."""
    for policy in (case.approvals, defaults.approvals):
        if policy is None:
            continue
        if isinstance(policy, str):
            return policy
        if tool_or_step is not None and tool_or_step in policy:
            return policy[tool_or_step]
        if "*" in policy:
            return policy["*"]
    return "pending"


def find_dataset(path: Path) -> Path:
    """A dataset file, or a workflow folder's ``eval/dataset.yaml``."""
    if path.is_dir():
        candidate = path / DATASET_FILE
        if candidate.is_file():
            return candidate
        raise DatasetError(
            f"No evaluation dataset in {path} (looked for {candidate}). Give the dataset "
            "file: `controlroom eval WORKFLOW DATASET.yaml`."
        )
    if not path.is_file():
        raise DatasetError(f"No dataset file at {path}. Give a YAML file with `cases:`.")
    return path


def _where(loc: tuple[int | str, ...]) -> tuple[tuple[str | int, ...], str]:
    path: list[str | int] = []
    text = ""
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            text += f"[{part}]"
        elif part in ("str", "dict[str,literal['approve','reject','pending']]") or part.startswith(
            ("literal[", "function-")
        ):
            continue  # a union member's tag, not a key
        else:
            path.append(part)
            text += f".{part}" if text else part
    return tuple(path), text or "the top level"


def load_dataset(path: Path) -> tuple[Dataset, str]:
    """The dataset at ``path`` and its sha256 (of the file's bytes)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Cannot read the dataset {path} ({exc}); it must be UTF-8.") from None
    source = SourceMap(str(path))
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            source.record(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not valid YAML ({exc}).") from None
    except ControlroomError as exc:  # a key written twice
        raise DatasetError(exc.message) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a mapping with `name` and `cases` (see docs/evaluation-format.md)."
        )
    try:
        dataset = Dataset.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            key_path, where = _where(err["loc"])
            problems.append(f"{source.locate(key_path)}: at `{where}`: {err['msg']}")
        more = len(exc.errors()) - len(problems)
        tail = f" (and {more} more)" if more > 0 else ""
        raise DatasetError(
            "; ".join(problems) + tail + ". See docs/evaluation-format.md for the format."
        ) from None
    return dataset, "sha256:" + hashlib.sha256(raw).hexdigest()
