"""Ed25519 keys that sign audit checkpoints.

Each project folder gets its own key pair on first use: ``<home>/keys/audit-ed25519.pem``
(PKCS#8) and ``audit-ed25519.pub.pem`` next to it, both mode 0600 in a 0700 folder. Replace
it with your own key by putting an Ed25519 private key (PEM PKCS#8 or OpenSSH format,
unencrypted) at that path, or by pointing ``CONTROLROOM_AUDIT_KEY`` at one; pin the key
verifiers must expect with ``CONTROLROOM_AUDIT_PUBLIC_KEY`` or ``controlroom audit verify
--key``. A key is named by its id, ``ed25519:`` and the first 16 hex digits of the SHA-256
of its raw public bytes.

A key kept in the same folder as the logs proves the log was not altered by someone who
could not read that folder; keep the private key elsewhere (another volume, a secrets
mount) and pin the public key to make it stronger.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlroom.audit.errors import AuditKeyError
from controlroom.config import private_dir, write_private

KEY_FILE = "audit-ed25519.pem"
PUBLIC_KEY_FILE = "audit-ed25519.pub.pem"


def key_id(public: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Signer:
    """A private key that signs checkpoints."""

    private: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public(self) -> bytes:
        return raw_public(self.private.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public).decode()

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data)).decode()

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())


def check_signature(public_b64: str, signature_b64: str, data: bytes) -> bool:
    """Whether ``signature_b64`` signs ``data`` under the raw base64 public key."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"Cannot read the audit signing key {path}: {exc}.") from None
    for load in (
        serialization.load_pem_private_key,
        serialization.load_ssh_private_key,
        serialization.load_der_private_key,
    ):
        try:
            key = load(data, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(key, Ed25519PrivateKey):
            return key
        raise AuditKeyError(
            f"{path} holds a {type(key).__name__}, not an Ed25519 key. Audit checkpoints "
            "are signed with Ed25519: `openssl genpkey -algorithm ed25519 -out KEY.pem`."
        )
    raise AuditKeyError(
        f"{path} is not an unencrypted Ed25519 private key (PEM PKCS#8, OpenSSH or DER). "
        "Create one with `openssl genpkey -algorithm ed25519 -out KEY.pem`."
    )


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists (atomic, no partial file is ever seen)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def load_or_create_signer(keys_dir: Path, key_path: Path | None = None) -> Signer:
    """The signing key: ``key_path`` (the user's own), else the project key (made if absent)."""
    if key_path is not None:
        if not key_path.is_file():
            raise AuditKeyError(
                f"The audit signing key {key_path} (CONTROLROOM_AUDIT_KEY) does not exist."
            )
        return Signer(_load_private(key_path), key_path)
    path = keys_dir / KEY_FILE
    if not path.exists():
        private_dir(keys_dir)  # 0700 whatever the umask; both key files 0600
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if _write_new(path, pem, 0o600):
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            write_private(keys_dir / PUBLIC_KEY_FILE, public)
    return Signer(_load_private(path), path)


def load_public_key(path: Path) -> bytes:
    """Raw public bytes from a PEM / OpenSSH public key, or a private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"Cannot read the audit public key {path}: {exc}.") from None
    loaders = (
        serialization.load_pem_public_key,
        serialization.load_ssh_public_key,
        serialization.load_der_public_key,
    )
    for load in loaders:
        with contextlib.suppress(ValueError, TypeError, UnsupportedAlgorithm):
            key = load(data)
            if isinstance(key, Ed25519PublicKey):
                return raw_public(key)
    if b"PRIVATE KEY" in data:
        return raw_public(_load_private(path).public_key())
    raise AuditKeyError(f"{path} is not an Ed25519 public key (PEM or OpenSSH).")


def expected_public_key(
    keys_dir: Path, key_path: Path | None = None, public_path: Path | None = None
) -> bytes:
    """The key a verifier expects: the pinned public key, else the signing key's."""
    if public_path is not None:
        return load_public_key(public_path)
    if key_path is not None:
        return load_public_key(key_path)
    for name in (PUBLIC_KEY_FILE, KEY_FILE):
        if (keys_dir / name).is_file():
            return load_public_key(keys_dir / name)
    raise AuditKeyError(
        f"No audit key in {keys_dir}: nothing was ever signed in this project folder. Pass "
        "the expected public key with --key (or CONTROLROOM_AUDIT_PUBLIC_KEY)."
    )
