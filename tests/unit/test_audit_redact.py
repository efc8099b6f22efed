"""Redaction modes, and secrets: from the environment, by key name, in tool configuration."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
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
        ("APIKey", True),
        ("x-api-key", True),
        ("client_secret", True),
        ("access_token", True),
        ("auth_token", True),
        ("db_password", True),
        ("secret_key", True),
        ("private_key", True),
        ("privateKeyPem", True),
        ("password", True),
        ("password2", True),
        ("api_key_2", True),
        ("token", True),
        ("token_value", True),
        ("refreshToken", True),
        ("PGPASSWORD", True),
        ("Authorization", True),
        ("HTTPAuthorization", True),
        ("PRIVATE_KEY", True),
        ("session_cookie", True),
        ("credentials", True),
        # names about a secret, or about something else: their values are not secrets
        ("token_type", False),
        ("token_scope", False),
        ("token_url", False),
        ("token_endpoint", False),
        ("password_policy", False),
        ("secret_name", False),
        ("secret_ref", False),
        ("api_key_id", False),
        ("cookie_name", False),
        ("auth_url", False),
        ("max_tokens", False),
        ("key", False),
        ("value", False),
        ("primary_key_column", False),
        ("sort_key", False),
        ("invoice_id", False),
        ("tokenizer", False),
        ("booking_id", False),
    ],
)
def test_secret_names_are_recognised_by_their_last_word(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


_WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9).filter(
    lambda w: not is_secret_name(w) and w not in {"key", "keys"}
)
_SECRET_WORD = st.sampled_from(["secret", "token", "password", "passphrase", "credentials"])


@given(st.lists(_WORD, max_size=3), _SECRET_WORD, st.sampled_from(["_", "-", ""]))
def test_a_name_ending_in_a_secret_word_is_secret(prefix: list[str], word: str, sep: str) -> None:
    name = (
        sep.join([*prefix, word])
        if sep
        else "".join([*prefix[:1], *(w.capitalize() for w in [*prefix[1:], word])])
    )
    assert is_secret_name(name)


@given(_SECRET_WORD, st.lists(_WORD, min_size=1, max_size=3))
def test_a_name_about_a_secret_is_not_secret(word: str, rest: list[str]) -> None:
    assume(rest[-1] not in {"value", "val", "str", "string", "raw", "plain", "plaintext"})
    assume(rest[-1] not in {"b64", "base64", "hex", "pem"})
    assert not is_secret_name("_".join([word, *rest]))


def test_environment_secrets_are_the_values_of_secret_named_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdef", "MY_SECRET": "s3cr3t!", "HOME": "/root", "X_TOKEN": ""}
    assert environment_secrets(env) == {"sk-abcdef", "s3cr3t!"}


def test_known_secrets_are_scrubbed_from_every_string_value_never_from_keys() -> None:
    # Keys were rewritten too before issue 14 (defect 5): a key is a name, not the run's data.
    r = Redactor.from_environment(environ={"DB_PASSWORD": "hunter2-horse"}, extra=["extra-secret"])
    value = {"note": "pw hunter2-horse; also extra-secret", "hunter2-horse": ["extra-secret"]}
    assert r.scrub(value) == {"note": "pw [secret]; also [secret]", "hunter2-horse": ["[secret]"]}


def test_a_secret_is_removed_wherever_it_is_glued_into_a_value() -> None:
    r = Redactor(secrets=["hunter2-horse", "sk9Xq7Lm2"])
    for text in (
        "postgres://svc:hunter2-horse@db:5432/app",
        "https://api.example/v1?key=sk9Xq7Lm2&page=2",
        "Authorization: Bearersk9Xq7Lm2",
        "id_sk9Xq7Lm2_v2",
        "hellohunter2-horse",
    ):
        assert "hunter2-horse" not in r.scrub_text(text)
        assert "sk9Xq7Lm2" not in r.scrub_text(text)
    assert r.scrub_text("id_sk9Xq7Lm2_v2") == "id_[secret]_v2"


def test_verbatim_fields_and_keys_are_never_rewritten() -> None:
    r = Redactor(secrets=["booking"])
    record = {
        "gen_ai.tool.name": "cancel_booking",
        "gen_ai.tool.call.arguments": {"booking_id": "booking-77"},
        "parts": [{"type": "tool_call", "name": "cancel_booking", "content": "rebooking"}],
        "note": "cancel_booking",
    }
    verbatim = {"gen_ai.tool.name": True, "parts": {"type": True, "name": True}}
    assert r.scrub_strings(record, verbatim) == {
        "gen_ai.tool.name": "cancel_booking",
        "gen_ai.tool.call.arguments": {"booking_id": "[secret]-77"},
        "parts": [{"type": "tool_call", "name": "cancel_booking", "content": "re[secret]"}],
        "note": "cancel_[secret]",  # free text: a real secret goes wherever it is
    }


def test_the_credential_of_a_schemed_secret_is_learned_too() -> None:
    r = Redactor()
    assert r.scrub({"Authorization": "Bearer tok-5544332211"}) == {"Authorization": "[secret]"}
    assert r.scrub_text("sent tok-5544332211 again") == "sent [secret] again"
    assert secrets_in({"auth_header": {"authorization": "Basic dXNlcjpwdw=="}}) == {
        "Basic dXNlcjpwdw==",
        "dXNlcjpwdw==",
    }


def test_scrubbing_twice_changes_nothing() -> None:
    r = Redactor(secrets=["secret", "s3cr3t-value"])
    once = r.scrub_text("a s3cr3t-value and a secret")
    assert once == "a [secret] and a secret"
    assert r.scrub_text(once) == once


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


class BookingApi:
    def __init__(self) -> None:
        self.token_type = "Bearer"
        self.token_scope = "booking"
        self.token_url = "https://auth.example/oauth/token"
        self.password_policy = "strong-only"
        self.secret_name = "prod/booking"
        self.max_tokens = "4096"
        self.api_key = "bk-live-7Qp2Zr9Xw4Lm"

    def cancel_booking(self, booking_id: str) -> str:
        return booking_id


def test_names_about_secrets_in_a_tools_configuration_teach_nothing() -> None:
    # Issue 14, defect 5: token_type/token_scope made "Bearer" and "booking" secrets.
    assert secrets_of_tool(tool(BookingApi().cancel_booking)) == {"bk-live-7Qp2Zr9Xw4Lm"}


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
