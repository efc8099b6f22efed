"""One process at a time executes a run: an advisory file lock per run.

The operating system drops the lock when its process dies (SIGKILL included), so a run
whose record says "running" but whose lock is free was interrupted and can be resumed.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controlroom.config import PRIVATE_FILE, private_dir
from controlroom.errors import RunBusyError


def _lock_file(locks_dir: Path, run_id: str) -> Path:
    private_dir(locks_dir)  # 0700, and each lock file 0600, whatever the umask
    return locks_dir / f"{run_id}.lock"


@contextmanager
def run_lock(locks_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock, or raise :class:`RunBusyError` naming the holder's pid."""
    path = _lock_file(locks_dir, run_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunBusyError(
                f"Run {run_id} is being executed by another process (pid {holder}). Wait for "
                "it to stop at an approval or finish, then try again."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_locked(locks_dir: Path, run_id: str) -> bool:
    """Whether some live process holds the run's lock right now."""
    path = locks_dir / f"{run_id}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
