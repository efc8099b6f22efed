"""Who a run acts for.

A :class:`Principal` is chosen by the caller (CLI ``--user``, SDK argument, TUI picker),
never by the model. Principals come from a directory file (YAML) that lists the users of
a deployment::

    users:
      - id: alice
        name: Alice Martin
        roles: [employee, finance-clerk]
        attributes:
          department: finance
          clearance: [internal, finance]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controlroom.errors import DirectoryError, UnknownUserError

AttributeValue = str | int | bool | list[str]


class Principal(BaseModel):
    """An end user that a run acts for: id, display name, roles and attributes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = ""
    roles: tuple[str, ...] = ()
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def has_role(self, role: str) -> bool:
        return role in self.roles


class _DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[Principal]


class Directory(Mapping[str, Principal]):
    """The users of a deployment, keyed by id."""

    def __init__(self, users: list[Principal], source: Path | None = None) -> None:
        self.source = source
        self._users: dict[str, Principal] = {}
        for user in users:
            if user.id in self._users:
                where = f" in {source}" if source else ""
                raise DirectoryError(
                    f"User id '{user.id}' is listed twice{where}; ids must be unique."
                )
            self._users[user.id] = user

    @classmethod
    def load(cls, path: Path) -> Directory:
        """Read a directory file; a missing or malformed file is a :class:`DirectoryError`."""
        if not path.is_file():
            raise DirectoryError(
                f"No user directory at {path}. Run `controlroom init` to create a project "
                "folder with a sample directory, or point CONTROLROOM_DIRECTORY at your own "
                "directory file (YAML with a `users:` list)."
            )
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DirectoryError(f"{path} is not valid YAML: {exc}") from None
        try:
            parsed = _DirectoryFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise DirectoryError(
                f"{path}: at `{loc}`: {first['msg']}. Each user needs an `id` and may have "
                "`name`, `roles` (list) and `attributes` (mapping)."
            ) from None
        return cls(parsed.users, source=path)

    def get_principal(self, user_id: str) -> Principal:
        """The principal with this id, or an :class:`UnknownUserError` that lists close ids."""
        found = self._users.get(user_id)
        if found is not None:
            return found
        close = difflib.get_close_matches(user_id, list(self._users), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        where = f" {self.source}" if self.source else " the user directory"
        known = ", ".join(sorted(self._users)[:10]) or "(none)"
        raise UnknownUserError(
            f"There is no user '{user_id}' in{where}.{hint} Known users: {known}. "
            "Pass an id from the directory with --user, or add the user to the directory file."
        )

    def __getitem__(self, user_id: str) -> Principal:
        return self._users[user_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._users)

    def __len__(self) -> int:
        return len(self._users)
