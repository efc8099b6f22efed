"""Crash tests: CLI commands killed at named points (controlroom.faults), fast.

A `Zygote` is one Python process that imports controlroom once and then forks a child per
command, so a command costs milliseconds of start-up instead of seconds of imports. Each
child is exactly a `controlroom` CLI process: its own environment, its stdout and stderr,
its exit code; armed with CONTROLROOM_FAULT semantics it SIGKILLs itself at the named
point (no `finally`, no flush: a real crash). The zygote itself never opens a project.

`Cli` runs commands on one project folder; `CrashMatrix` runs a scenario once to learn
every point it reaches (the trace), then once per point with a kill there, and resumes
until the run settles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import DIRECTORY_YAML, cli_env
from tests.pg_support import with_schema

_ZYGOTE = r"""
import json, os, signal, sys, traceback
from controlroom import faults
from controlroom.testing import block_network
import typer.main
from controlroom.cli.app import app

cli_app = typer.main.get_command(app)  # Typer builds its click commands once, here
block_network().__enter__()  # loopback only, as in every test
ready = sys.stdout
ready.write("ready\n"); ready.flush()
for line in sys.stdin:
    cmd = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            os.environ.clear()
            os.environ.update(cmd["env"])
            os.chdir(cmd["cwd"])
            out = os.open(cmd["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(cmd["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1); os.dup2(err, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            sys.stdin = open(os.devnull)
            faults.arm(cmd.get("target"), cmd.get("count", 1), trace=cmd.get("trace"))
            code = 0
            try:
                cli_app.main(args=cmd["args"], prog_name="controlroom")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 70
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(locals().get("code", 71))
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        reply = {"rc": -os.WTERMSIG(status)}
    else:
        reply = {"rc": os.WEXITSTATUS(status)}
    ready.write(json.dumps(reply) + "\n"); ready.flush()
"""


@dataclass
class Outcome:
    args: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"controlroom {' '.join(self.args)} -> {self.rc}\n{self.stdout}\n{self.stderr}"


class Zygote:
    """One pre-imported controlroom process that forks a CLI child per command."""

    def __init__(self) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="controlroom-zygote-")
        self._n = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_")},
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def run(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        cwd: Path,
        fault: str | None = None,
        trace: Path | None = None,
    ) -> Outcome:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._n += 1
        base = Path(self._scratch.name) / f"cmd{self._n}"
        target, count = None, 1
        if fault is not None:
            target, _, n = fault.partition("@")
            count = int(n or 1)
        cmd = {
            "args": args,
            "env": env,
            "cwd": str(cwd),
            "stdout": f"{base}.out",
            "stderr": f"{base}.err",
            "target": target,
            "count": count,
            "trace": str(trace) if trace is not None else None,
        }
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the crash-test zygote died")
        rc = int(json.loads(line)["rc"])
        out = Path(f"{base}.out").read_text(errors="replace")
        err = Path(f"{base}.err").read_text(errors="replace")
        return Outcome(args, rc, out, err)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._scratch.cleanup()


def project_env(home: Path) -> dict[str, str]:
    """The environment of a CLI process on ``home`` (its own schema on PostgreSQL)."""
    env = cli_env(home)
    if "CONTROLROOM_DATABASE_URL" in env:
        env["CONTROLROOM_DATABASE_URL"] = with_schema(env["CONTROLROOM_DATABASE_URL"], home.name)
    return env


def new_home(parent: Path, name: str) -> Path:
    home = parent / name
    home.mkdir(parents=True)
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    return home


@dataclass
class Cli:
    """CLI commands on one project folder, through a zygote."""

    zygote: Zygote
    home: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, fault: str | None = None, trace: Path | None = None) -> Outcome:
        env = {**project_env(self.home), **self.env}
        return self.zygote.run(list(args), env, cwd=self.cwd, fault=fault, trace=trace)


def read_trace(path: Path) -> list[tuple[str, int]]:
    """The points a traced command reached, each with its occurrence number (1, 2, ...)."""
    if not path.exists():
        return []
    seen: Counter[str] = Counter()
    out = []
    for line in path.read_text().splitlines():
        name = line.split("\t", 1)[0]
        seen[name] += 1
        out.append((name, seen[name]))
    return out
