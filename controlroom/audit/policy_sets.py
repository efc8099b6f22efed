"""The policy sets that decided a project's runs, kept by content hash for replay.

Every tool decision in an audit log names the policy set that took it
(``controlroom.policy.set_hash``, the hash of the policy files' names and texts). When a
run is driven, the set it is decided by is copied to ``<home>/audit/policies/`` under that
hash (once per content: a few kilobytes for every version a project ever ran with), so a
replay decides again with the policies the run was decided by, not with whatever the
folder holds today. A copy is checked against its hash when read: an edited copy is not
used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from controlroom.tools.policy_files import policy_digest

FOLDER = "policies"


def policy_set_path(audit_dir: Path, digest: str) -> Path:
    name = digest.replace(":", "-").replace("/", "_")
    return audit_dir / FOLDER / f"{name}.json"


def keep_policy_set(audit_dir: Path, digest: str, sources: dict[str, str]) -> None:
    """Save a policy set under its hash, unless it is saved already (atomic, owner-only)."""
    if not sources or policy_digest(sources) != digest:
        return
    target = policy_set_path(audit_dir, digest)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"digest": digest, "files": sources}, out, sort_keys=True, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


def load_policy_set(audit_dir: Path, digest: str) -> dict[str, str] | None:
    """The files of the policy set with this hash, if a copy is kept and matches it."""
    try:
        data = json.loads(policy_set_path(audit_dir, digest).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        return None
    return files if policy_digest(files) == digest else None
