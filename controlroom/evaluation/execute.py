"""Run a dataset's cases as durable runs and score them.

The eval prepares one project folder (a temporary one unless ``home`` is given) as the
dataset's ``setup`` says, then runs every case through the SDK's :class:`Runner`: start the
run for the case's user, answer its approvals as the case's policy says (by the dataset's
approver), until it completes, fails or stays pending. With several workers each worker is
a thread with its own Runner on the same project folder. Every case is then scored from the
run's final state and its audit log (:mod:`controlroom.evaluation.scoring`).
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from controlroom.audit.keys import load_or_create_signer
from controlroom.config import Settings
from controlroom.errors import ControlroomError, DatasetError
from controlroom.evaluation.dataset import Case, Dataset, answer_for, find_dataset, load_dataset
from controlroom.evaluation.report import ApprovalTaken, CaseResult, Check, EvalReport, totals
from controlroom.evaluation.scoring import score_run
from controlroom.graphs.authoring.spec import RetrieveStep
from controlroom.graphs.authoring.workflow import Workflow, load_workflow
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import RunStatus
from controlroom.retrieval import DocumentStore, ingest, open_store

__all__ = ["EvalOptions", "Progress", "prepare_project", "resolve_target", "run_eval"]

SCRIPTED = "scripted"
MAX_DECISIONS = 50  # approvals answered per case before the eval gives up on it
REJECT_REASON = "Rejected by the evaluation dataset's approvals policy."

Progress = Callable[[CaseResult], None]


@dataclass
class EvalOptions:
    model: str | None = None  # a model spec, `scripted` (each case's script), None: default
    workers: int = 1
    prompt_versions: dict[str, int] = field(default_factory=dict)
    cases: Sequence[str] = ()  # only these case ids
    tags: Sequence[str] = ()  # only cases with one of these tags
    home: Path | None = None  # keep the project folder here (default: a temporary one)


def resolve_target(first: str, second: str | None) -> tuple[Path, Path | None]:
    """(dataset file, workflow or None) from ``eval WORKFLOW_OR_DATASET [DATASET]``."""
    if second is not None:
        return find_dataset(Path(second)), Path(first)
    path = Path(first)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        head = path.read_text(encoding="utf-8", errors="replace")
        if "\ncases:" in "\n" + head:
            return path, None
        raise DatasetError(
            f"{path} has no `cases:`; it looks like a workflow. Give its dataset too: "
            f"`controlroom eval {path} DATASET.yaml`, or put one at eval/dataset.yaml next to it."
        )
    if path.is_dir():
        return find_dataset(path), path
    raise DatasetError(f"No workflow or dataset at {path}.")


def select_cases(dataset: Dataset, options: EvalOptions) -> list[Case]:
    chosen = dataset.cases
    if options.cases:
        known = {c.id for c in chosen}
        unknown = [c for c in options.cases if c not in known]
        if unknown:
            raise DatasetError(
                f"--cases names ids the dataset does not have: {', '.join(unknown)}. Its ids: "
                f"{', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}."
            )
        wanted = set(options.cases)
        chosen = [c for c in chosen if c.id in wanted]
    if options.tags:
        tags = set(options.tags)
        chosen = [c for c in chosen if tags & set(c.tags)]
        if not chosen:
            raise DatasetError(f"No case is tagged {', '.join(sorted(tags))}.")
    return chosen


def _settings(home: Path) -> Settings:
    """The eval's own project: nothing shared with the user's (no server, no database)."""
    return Settings().model_copy(
        update={
            "home": home,
            "directory": None,
            "database_url": None,
            "chroma_url": None,
            "document_policies": None,
        }
    )


def prepare_project(
    dataset: Dataset, base: Path, home: Path
) -> tuple[Settings, DocumentStore | None]:
    """Set the project folder up as the dataset's ``setup`` says; ``base`` is the dataset's
    folder (relative paths start there). Returns the settings and, when documents were
    ingested, the opened document store (shared by the workers)."""
    settings = _settings(home)
    home.mkdir(parents=True, exist_ok=True)
    setup = dataset.setup
    target = settings.directory_path
    if setup.directory == "sample":
        sample = resources.files("controlroom") / "data" / "sample_directory.yaml"
        with resources.as_file(sample) as src:
            shutil.copyfile(src, target)
    else:
        src_path = (base / setup.directory).resolve()
        if not src_path.is_file():
            raise DatasetError(
                f"setup.directory: no user directory file at {src_path}. Give `sample` or a "
                "path relative to the dataset file."
            )
        shutil.copyfile(src_path, target)
    if setup.pack:
        from controlroom.tools.pack import seed_database
        from controlroom.tools.pack.db import DB_NAME

        db = home / DB_NAME
        if not db.exists():
            seed_database(db)
    documents: DocumentStore | None = None
    if setup.ingest:
        paths = [(base / p).resolve() for p in setup.ingest]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise DatasetError(f"setup.ingest: no such path(s): {', '.join(missing)}.")
        documents = open_store(settings)
        ingest(documents, paths)
    if settings.audit:  # create the signing key once, before workers race to create it
        load_or_create_signer(settings.keys_path, settings.audit_key)
    Runner(settings).close()  # create the store's tables once, before the workers start
    return settings, documents


@contextmanager
def _project(home: Path | None) -> Iterator[tuple[Path, bool]]:
    if home is not None:
        yield home.resolve(), True
        return
    with tempfile.TemporaryDirectory(prefix="controlroom-eval-") as tmp:
        yield Path(tmp), False


def _model_for(case: Case, base: Path, model: str | None) -> str | None:
    if model != SCRIPTED:
        return model
    if case.script is None:
        raise DatasetError(
            f"Case {case.id} has no `script:`, so it cannot run with --model scripted. Add "
            "a ScriptedChatModel script to the case, or run with a model spec."
        )
    script = (base / case.script).resolve()
    if not script.is_file():
        raise DatasetError(f"Case {case.id}: no script file at {script}.")
    return f"{SCRIPTED}:{script}"


def _decide(
    runner: Runner, result: RunResult, case: Case, dataset: Dataset
) -> tuple[RunResult, list[ApprovalTaken]]:
    """Answer the run's approvals by the case's policy until none can be answered."""
    taken: list[ApprovalTaken] = []
    approver = case.approver or dataset.defaults.approver
    for _ in range(MAX_DECISIONS):
        if result.status is not RunStatus.WAITING:
            break
        pending = result.pending or runner.approvals(result.run_id)
        todo = None
        for item in pending:
            answer = answer_for(case, dataset.defaults, item.tool or item.step)
            if answer != "pending":
                todo = (item, answer)
                break
            if all(t.approval_id != item.approval_id for t in taken):
                taken.append(
                    ApprovalTaken(
                        approval_id=item.approval_id, tool=item.tool, step=item.step, answer=answer
                    )
                )
        if todo is None:
            break
        item, answer = todo
        if approver is None:
            raise DatasetError(
                f"Case {case.id}: the run waits for an approval ({item.tool or item.step}) "
                "but the dataset names no approver. Set `defaults.approver` (or the case's "
                "`approver`)."
            )
        taken.append(
            ApprovalTaken(
                approval_id=item.approval_id, tool=item.tool, step=item.step, answer=answer
            )
        )
        if answer == "approve":
            result = runner.approve(result.run_id, item.approval_id, by=approver)
        else:
            result = runner.reject(
                result.run_id, item.approval_id, by=approver, reason=REJECT_REASON
            )
    return result, taken


def run_case(
    runner: Runner, wf: Workflow, case: Case, *, dataset: Dataset, base: Path, model: str | None
) -> CaseResult:
    """Run one case and score it; a case that cannot run is reported, never raised."""
    user = case.user or dataset.defaults.user or ""
    started = time.perf_counter()
    spec = model or "(workflow default)"
    run_id: str | None = None
    try:
        spec_used = _model_for(case, base, model)
        spec = spec_used or wf.spec.model or runner.settings.model
        if not user:
            raise DatasetError(
                f"Case {case.id} names no user; set `user:` on it or `defaults.user`."
            )
        result = runner.start(wf, user=user, input=case.input, model=spec_used, approve="ask")
        run_id = result.run_id
        result, taken = _decide(runner, result, case, dataset)
    except Exception as exc:  # the case is reported as an error; the eval goes on
        why = (
            f"{exc.title}: {exc.message}"
            if isinstance(exc, ControlroomError)
            else f"{type(exc).__name__}: {exc}"
        )
        failed = Check(name="run", ok=False, detail=why)
        return CaseResult(
            id=case.id,
            tags=case.tags,
            user=user,
            input=case.input,
            model=spec,
            run_id=run_id,
            status="error",
            success=False,
            checks=[failed],
            error=failed.detail,
            latency_s=round(time.perf_counter() - started, 3),
        )
    return score_run(
        runner,
        wf,
        case,
        user=user,
        model=spec,
        result=result,
        approvals=taken,
        latency_s=time.perf_counter() - started,
    )


@dataclass
class _Pool:
    """Workers, each a thread with its own Runner on the eval's project folder."""

    settings: Settings
    documents: DocumentStore | None
    wf: Workflow
    run: Callable[[Runner, Case], CaseResult]
    progress: Progress | None
    todo: queue.Queue[tuple[int, Case]] = field(default_factory=queue.Queue)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[BaseException] = field(default_factory=list)

    def work(self, results: list[CaseResult | None]) -> None:
        try:
            with Runner(self.settings, documents=self.documents) as runner:
                runner.register(self.wf)
                while True:
                    try:
                        index, case = self.todo.get_nowait()
                    except queue.Empty:
                        return
                    result = self.run(runner, case)
                    with self.lock:
                        results[index] = result
                        if self.progress is not None:
                            self.progress(result)
        except BaseException as exc:  # reported by run_eval, in the caller's thread
            with self.lock:
                self.errors.append(exc)

    def run_all(self, cases: Sequence[Case], workers: int) -> list[CaseResult]:
        for item in enumerate(cases):
            self.todo.put(item)
        results: list[CaseResult | None] = [None] * len(cases)
        threads = [
            threading.Thread(target=self.work, args=(results,), name=f"eval-worker-{i}")
            for i in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise self.errors[0]
        return [r for r in results if r is not None]


def run_eval(
    dataset_path: Path,
    workflow: Path | str | None = None,
    options: EvalOptions | None = None,
    *,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EvalReport:
    """Run the dataset's (selected) cases and return the report."""
    options = options or EvalOptions()
    if options.workers < 1:
        raise DatasetError("--workers must be 1 or more.")
    dataset, digest = load_dataset(dataset_path)
    base = dataset_path.resolve().parent
    target = workflow if workflow is not None else base / dataset.workflow
    wf = load_workflow(target, prompt_versions=options.prompt_versions or None)
    cases = select_cases(dataset, options)
    if options.model == SCRIPTED:  # fail early and clearly, before anything runs
        for case in cases:
            _model_for(case, base, options.model)
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.perf_counter()
    with _project(options.home) as (home, kept):
        settings, documents = prepare_project(dataset, base, home)
        if documents is None and any(isinstance(s, RetrieveStep) for s in wf.spec.steps):
            documents = open_store(settings)  # one store for every worker
        if on_start is not None:
            on_start(len(cases))

        def run(runner: Runner, case: Case) -> CaseResult:
            return run_case(runner, wf, case, dataset=dataset, base=base, model=options.model)

        workers = max(1, min(options.workers, len(cases)))
        done = _Pool(settings, documents, wf, run, progress).run_all(cases, workers)
        default_model = wf.spec.model or settings.model
        return EvalReport(
            name=dataset.name,
            dataset=str(dataset_path.resolve()),
            dataset_sha256=digest,
            workflow=wf.ref,
            workflow_digest=wf.digest,
            model=options.model or default_model,
            prompts={step: f"{p.id}@{p.version}" for step, p in sorted(wf.prompts.items())},
            prompt_overrides=dict(options.prompt_versions),
            workers=workers,
            home=str(home) if kept else None,
            started_at=stamp,
            elapsed_s=round(time.perf_counter() - started, 3),
            cases=done,
            totals=totals(done),
        )
