"""The control room's tests run a frozen copy of the invoice-payment example (its workflow,
tools and script as of the control room's first version) so that the example can evolve
without moving these tests' steps, ids and snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

FLOW = Path(__file__).resolve().parent / "invoice_flow"
FLOW_MODEL = f"scripted:{FLOW / 'script.yaml'}"


@pytest.fixture(autouse=True)
def _flow_model(_no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_MODEL", FLOW_MODEL)
