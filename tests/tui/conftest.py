"""The control room's tests run the spine's frozen test workflow (``tests/data/invoice-payment``,
the invoice-payment example as it was before it grew vendor checks and mail), so that the
example can evolve without moving these tests' steps, ids and snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

FLOW = Path(__file__).resolve().parents[1] / "data" / "invoice-payment"
FLOW_MODEL = f"scripted:{FLOW / 'script.yaml'}"


@pytest.fixture(autouse=True)
def _flow_model(_no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_MODEL", FLOW_MODEL)
