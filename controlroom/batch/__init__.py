"""Batches of runs on Ray (``controlroom batch``): see :mod:`controlroom.batch.driver`.

Above :mod:`controlroom.graphs` (it drives runs through the runner) and below the CLI.
Ray is imported only when a batch executes (the ``scale`` extra).
"""

from controlroom.batch.create import create_batch, ensure_runs
from controlroom.batch.driver import BatchOptions, default_report_path, run_batch, write_report
from controlroom.batch.inputs import BatchInput, parse_inputs, read_inputs
from controlroom.batch.report import BatchProgress, BatchReport, BatchRunReport, RunOutcome

__all__ = [
    "BatchInput",
    "BatchOptions",
    "BatchProgress",
    "BatchReport",
    "BatchRunReport",
    "RunOutcome",
    "create_batch",
    "default_report_path",
    "ensure_runs",
    "parse_inputs",
    "read_inputs",
    "run_batch",
    "write_report",
]
