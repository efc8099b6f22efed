"""Redaction modes, and secrets: from the environment, by key name, in tool configuration."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from controlroom import tool
from controlroom.audit.canonical import value_digest
from controlroom.audit.redact import (
    MASK,
    Redactor,
    environment_secrets,
    is_secret_name,
    secrets_in,
    secrets_of_tool,
)

API_TOKEN = "module-level-token-123"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("client_secret", True),
        ("access_token", True),
        ("password", True),
        ("Authorization", True),
        ("PRIVATE_KEY", True),
        ("max_tokens", False),
        ("key", False),
        ("primary_key_column", False),
        ("invoice_id", False),
        ("tokenizer", False),
    ],
)
def test_secret_names_are_recognised_word_by_word(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_environment_secrets_are_the_values_of_secret_named_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdef", "MY_SECRET": "s3cr3t!", "HOME": "/root", "X_TOKEN": ""}
    assert environment_secrets(env) == {"sk-abcdef", "s3cr3t!"}


def test_known_secrets_are_scrubbed_from_every_string_and_key() -> None:
    r = Redactor.from_environment(environ={"DB_PASSWORD": "hunter2-horse"}, extra=["extra-secret"])
    value = {"note": "pw hunter2-horse; also extra-secret", "hunter2-horse": ["extra-secret"]}
    assert r.scrub(value) == {"note": "pw [secret]; also [secret]", "[secret]": ["[secret]"]}


def test_short_and_boolean_values_are_not_scrubbed_from_text() -> None:
    r = Redactor.from_environment(environ={"A_TOKEN": "1", "B_KEY": "true", "C_SECRET": "abc"})
    assert r.scrub_text("1 true abc") == "1 true abc"


def test_values_under_secret_named_keys_are_masked_and_learned() -> None:
    r = Redactor()
    assert r.scrub({"user": "bob", "session_token": "tok-998877"}) == {
        "user": "bob",
        "session_token": "[secret]",
    }
    assert r.scrub_text("echo tok-998877") == "echo [secret]"  # learned for the rest of the run


def test_pydantic_secret_values_never_show() -> None:
    class Config(BaseModel):
        password: SecretStr

    assert Redactor().scrub({"cfg": Config(password=SecretStr("p4ssw0rd!"))}) == {
        "cfg": {"password": "[secret]"}
    }


@pytest.mark.parametrize("mode", ["full", "hash", "mask"])
def test_modes_for_text_and_data(mode: Any) -> None:
    r = Redactor(mode, ["s3cret-value"])
    args = {"invoice": "INV-1", "amount": 12.5, "note": "s3cret-value"}
    text, data = r.text("Pay INV-1 with s3cret-value"), r.data(args)
    if mode == "full":
        assert text == "Pay INV-1 with [secret]"
        assert data == {"invoice": "INV-1", "amount": 12.5, "note": "[secret]"}
    elif mode == "hash":
        assert text["redacted"] == "hash" and text["sha256"].startswith("sha256:")
        assert data == {"redacted": "hash", "sha256": value_digest(r.scrub(args))}
    else:
        assert text == {"redacted": "mask", "chars": len("Pay INV-1 with [secret]")}
        assert data == {"invoice": MASK, "amount": MASK, "note": MASK}
    # Hashes are taken after scrubbing: never over a secret, and the same in every mode.
    assert r.digest(args) == value_digest({"invoice": "INV-1", "amount": 12.5, "note": "[secret]"})


@dataclass
class Endpoint:
    url: str
    bearer_token: str


class Client:
    def __init__(self) -> None:
        self.password = "bound-object-pass"

    def send(self, text: str) -> str:
        return text


def test_secrets_are_found_in_a_tools_configuration() -> None:
    class Settings(BaseModel):
        api_secret: SecretStr
        endpoint: Endpoint

    settings = Settings(
        api_secret=SecretStr("model-secret-1"),
        endpoint=Endpoint("https://x", "dataclass-token-2"),
    )
    smtp_password = "closure-pass-3"
    client = Client()

    def _send(text: str, signing_key: str) -> str:
        return text + signing_key

    send = functools.partial(_send, signing_key="partial-key-4")

    @tool
    def notify(text: str) -> str:
        """Notify."""
        client.send(text)
        return send(text) + smtp_password + str(settings) + API_TOKEN

    assert secrets_of_tool(notify) == {
        "model-secret-1",
        "dataclass-token-2",
        "closure-pass-3",
        "partial-key-4",
        "bound-object-pass",
        "module-level-token-123",
    }
    assert secrets_in({"nested": [{"api_key": "k-123456"}]}) == {"k-123456"}
