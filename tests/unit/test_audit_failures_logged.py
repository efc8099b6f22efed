"""An audit write that fails never hides the run's own outcome, and is never silent: it is
logged (and `audit verify` / `doctor` find the log's missing end)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from controlroom import Runner
from controlroom.audit.recorder import RunAudit
from tests.conftest import EXAMPLE, TEST_MODEL


def test_a_stop_record_that_cannot_be_written_is_logged(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(self: RunAudit, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunAudit, "run_stopped", disk_full)
    with caplog.at_level(logging.WARNING), Runner(home=project) as runner:
        result = runner.start(
            str(EXAMPLE), user="alice", input="Pay invoice INV-1001", model=TEST_MODEL
        )
    assert result.status.value == "waiting"  # the run's outcome is still reported
    [logged] = [r for r in caplog.records if "Could not record where run" in r.getMessage()]
    assert logged.levelno == logging.ERROR
    assert result.run_id in logged.getMessage() and "No space left" in logged.getMessage()
