"""Shared set-up for retrieval tests: the sample corpus in a store, users, a Chroma server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from controlroom.identity import Directory, Principal
from controlroom.retrieval import DocumentStore, ingest
from controlroom.tools.policy import PolicyGate, builtin_policies

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "examples" / "corpus"
SAMPLE_DIRECTORY = REPO / "controlroom" / "data" / "sample_directory.yaml"
RESTRICTED = ("hr-confidential", "finance-restricted", "it-admin", "exec-only")


def pack_policies() -> PolicyGate:
    return PolicyGate.load(builtin_policies("pack"))


def sample_users() -> Directory:
    return Directory.load(SAMPLE_DIRECTORY)


def copy_corpus(target: Path) -> Path:
    shutil.copytree(CORPUS, target)
    return target


def ingested_store(home: Path, corpus: Path, *, url: str | None = None) -> DocumentStore:
    store = DocumentStore.open(home, url=url)
    report = ingest(store, [corpus])
    assert not report.failed, report.failed
    return store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_server(path: Path) -> Iterator[str]:
    """A real ``chroma run`` on 127.0.0.1 (the CLI installed with chromadb)."""
    exe = Path(sys.executable).parent / "chroma"
    port = free_port()
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited: {(path / 'server.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("chroma run did not start listening within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def principal(user_id: str) -> Principal:
    return sample_users()[user_id]
