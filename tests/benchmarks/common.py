"""What every benchmark script shares: the ``--smoke`` flag.

``--smoke`` runs a benchmark at tiny sizes and a few iterations. It still goes through every
code path the full run measures and writes its JSON with the same keys (and ``"smoke": true``),
so ``make bench-smoke`` and the test suite (tests/benchmarks/test_bench_smoke.py) notice when a
refactor breaks a benchmark. Its figures mean nothing: never compare them with a full run's.

Options given explicitly on the command line win over the smoke sizes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

SMOKE_HELP = (
    "tiny sizes and a few iterations: checks that the benchmark still runs end to end and "
    "writes its JSON; the figures mean nothing (what `make bench-smoke` and the tests run)"
)


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, smoke: dict[str, Any]
) -> argparse.Namespace:
    """Parse ``argv``; with ``--smoke`` the defaults become ``smoke``'s values."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    unknown = set(smoke) - set(vars(parser.parse_args([])))
    if unknown:  # a typo here would silently run a smoke test at full size
        raise ValueError(f"smoke sizes for options the parser does not have: {sorted(unknown)}")
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args(argv)
    return args
