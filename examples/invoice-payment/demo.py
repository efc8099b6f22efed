"""End-to-end demo of the invoice-payment example, driven through the `controlroom` CLI.

Runs on the embedded default model (Qwen2.5-Coder-1.5B through llama.cpp, offline; the
weights are prepared from their packages on first use). Each command runs in its own
process, as a person or a script would type it: alice (payment limit 5000) asks to pay
INV-1004; the model looks up the invoice and its vendor, decides to pay and proposes a
payment of the 5600.00 due; the policies send it to a finance manager; alice cannot
approve her own payment; bob approves it from another process; the run mails alice a
confirmation (inside example.com only) and completes; its audit log verifies. Pass
`--model scripted:script.yaml` to play the recorded conversation instead.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "controlroom"]
EXIT_USAGE = 2
EXIT_WAITING = 3


def sh(*args: str, ok: tuple[int, ...] = (0,)) -> str:
    print(f"\n$ controlroom {shlex.join(args)}", flush=True)
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    print(proc.stdout, end="")
    print(proc.stderr, end="", file=sys.stderr)
    if proc.returncode not in ok:
        sys.exit(f"demo: `controlroom {shlex.join(args)}` exited {proc.returncode}")
    print(f"(exit code {proc.returncode})", flush=True)
    return proc.stdout


def main() -> None:
    model = sys.argv[1:3] if sys.argv[1:2] == ["--model"] else []
    sh("init")
    sh("pack", "init", "--force")  # the enterprise tool pack's invoices, payments and mail
    sh("models")
    print("\nStarting the run (the first use of the embedded model prepares its weights).")
    started = sh(
        "run", str(HERE), "--user", "alice", "--input", "Pay invoice INV-1004", *model,
        "--json", ok=(0, EXIT_WAITING),
    )  # fmt: skip
    result = json.loads(started)
    run_id = result["run"]["run_id"]
    sh("approvals")
    if result["run"]["status"] == "waiting":  # the four-eyes rule: not the requester
        item = result["pending"][0]
        sh("approve", run_id, item["approval_id"], "--user", "alice", ok=(EXIT_USAGE,))
    for _ in range(5):  # the model may ask more than once; a person answers each time
        if result["run"]["status"] != "waiting":
            break
        item = result["pending"][0]
        decision = ["approve", run_id, item["approval_id"], "--user", "bob"]
        result = json.loads(sh(*decision, "--json", ok=(0, EXIT_WAITING)))
    sh("runs")
    sh("show", run_id)
    sh("audit", "verify", run_id)


if __name__ == "__main__":
    main()
