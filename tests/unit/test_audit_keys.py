"""The signing key: made once per project folder, replaceable by the user's own."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlroom import Runner
from controlroom.audit import AuditKeyError, expected_public_key, load_or_create_signer
from controlroom.audit.keys import PUBLIC_KEY_FILE, check_signature, load_public_key
from tests.audit_support import audit_log, finished_run, project_key, write_workflow


def test_a_project_key_is_created_once_private_to_its_owner(tmp_path: Path) -> None:
    first = load_or_create_signer(tmp_path / "keys")
    again = load_or_create_signer(tmp_path / "keys")
    assert first.key_id == again.key_id and first.key_id.startswith("ed25519:")
    assert stat.S_IMODE((tmp_path / "keys" / "audit-ed25519.pem").stat().st_mode) == 0o600
    assert load_public_key(tmp_path / "keys" / PUBLIC_KEY_FILE) == first.public
    assert check_signature(first.public_b64, first.sign(b"data"), b"data")
    assert not check_signature(first.public_b64, first.sign(b"data"), b"other")


def write_pem(path: Path, key: Ed25519PrivateKey, fmt: str) -> None:
    if fmt == "openssh":
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    else:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    path.write_bytes(data)


@pytest.mark.parametrize("fmt", ["pkcs8", "openssh"])
def test_runs_are_signed_with_the_users_own_key(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    own = Ed25519PrivateKey.generate()
    key_file = tmp_path / "mine.pem"
    write_pem(key_file, own, fmt)
    monkeypatch.setenv("CONTROLROOM_AUDIT_KEY", str(key_file))
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    assert not (project / "keys").exists()  # no project key was made
    public = own.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    with Runner(home=project) as runner:
        settings = runner.settings
    assert expected_public_key(settings.keys_path, settings.audit_key) == public
    ssh_pub = tmp_path / "mine.pub"
    ssh_pub.write_bytes(
        own.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    assert load_public_key(ssh_pub) == public
    from controlroom.audit import verify_log

    assert verify_log(audit_log(project, run_id), expected_key=public).ok


def test_unusable_keys_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="does not exist"):
        load_or_create_signer(tmp_path, tmp_path / "missing.pem")
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(AuditKeyError, match="not an Ed25519 key"):
        load_or_create_signer(tmp_path, ec)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(AuditKeyError, match="not an unencrypted Ed25519 private key"):
        load_or_create_signer(tmp_path, junk)
    with pytest.raises(AuditKeyError, match="No audit key"):
        expected_public_key(tmp_path / "nothing")


def test_openssl_made_keys_work(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    made = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip("no openssl with ed25519 here")
    assert load_or_create_signer(tmp_path, key).key_id.startswith("ed25519:")


def test_project_key_helper(project: Path, tmp_path: Path) -> None:
    finished_run(project, write_workflow(tmp_path / "wf"))
    assert len(project_key(project)) == 32
