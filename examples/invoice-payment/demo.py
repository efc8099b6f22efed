"""End-to-end demo of the invoice-payment example, driven through the `controlroom` CLI.

Each command runs in its own process, as a person or a script would type it: alice asks
for a payment, the run stops for approval, bob approves it with an edited amount from
another process, and the run completes.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "controlroom"]


def sh(*args: str, ok: tuple[int, ...] = (0,)) -> str:
    print(f"\n$ controlroom {shlex.join(args)}", flush=True)
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    print(proc.stdout, end="")
    print(proc.stderr, end="", file=sys.stderr)
    if proc.returncode not in ok:
        sys.exit(f"demo: `controlroom {shlex.join(args)}` exited {proc.returncode}")
    print(f"(exit code {proc.returncode})")
    return proc.stdout


def main() -> None:
    sh("init")
    started = sh(
        "run", str(HERE), "--user", "alice", "--input", "Pay invoice INV-1001", "--json", ok=(3,)
    )
    result = json.loads(started)
    run_id = result["run"]["run_id"]
    approval = result["pending"][0]
    sh("approvals")
    edited = dict(approval["args"], amount=1200.0)
    sh(
        "approve",
        run_id,
        approval["approval_id"],
        "--user",
        "bob",
        "--args",
        json.dumps(edited),
        "--reason",
        "agreed 50 discount with vendor",
    )
    sh("runs", "--json")
    sh("show", run_id)


if __name__ == "__main__":
    main()
