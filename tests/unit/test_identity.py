from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlroom import Directory, DirectoryError, Principal, UnknownUserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "directory.yaml"
    path.write_text(text)
    return path


def test_load_and_lookup(tmp_path: Path) -> None:
    directory = Directory.load(
        write(
            tmp_path,
            "users:\n  - id: alice\n    name: Alice\n    roles: [clerk]\n    attributes: {department: finance, clearance: [internal]}\n",
        )
    )
    alice = directory.get_principal("alice")
    assert alice == Principal(
        id="alice",
        name="Alice",
        roles=("clerk",),
        attributes={"department": "finance", "clearance": ["internal"]},
    )
    assert alice.has_role("clerk") and alice.display_name == "Alice"


def test_unknown_user_suggests_close_ids(tmp_path: Path) -> None:
    directory = Directory.load(write(tmp_path, "users: [{id: alice}, {id: bob}]\n"))
    with pytest.raises(UnknownUserError, match="Did you mean 'alice'"):
        directory.get_principal("alicia")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("users: [{id: a}, {id: a}]", "listed twice"),
        ("users: [{name: no-id}]", "users.0.id"),
        ("users: [{id: a, role: x}]", "users.0.role"),
        ("users: [", "not valid YAML"),
        ("people: []", "users"),
    ],
)
def test_malformed_directories(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(DirectoryError, match=fragment.replace(".", r"\.")):
        Directory.load(write(tmp_path, text))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="controlroom init"):
        Directory.load(tmp_path / "nope.yaml")


@given(st.text(min_size=1, max_size=30))
def test_lookup_never_returns_someone_else(user_id: str) -> None:
    directory = Directory([Principal(id="alice"), Principal(id="bob")])
    try:
        found = directory.get_principal(user_id)
    except UnknownUserError:
        assert user_id not in ("alice", "bob")
    else:
        assert found.id == user_id
