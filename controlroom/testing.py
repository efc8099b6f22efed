"""Test doubles for your own tests of controlroom workflows.

* :class:`ScriptedChatModel` (with :class:`ScriptedReply`, :class:`ScriptedToolCall`
  and :class:`ScriptedUsage`) stands in for a real chat model and plays a fixed script.
* :class:`ExtractiveChatModel` answers grounded questions by quoting the first passage it
  was given (and citing it), so a test can check what a user's answer can contain.
* :func:`block_network` makes any attempt to reach a non-loopback address fail at once
  with :class:`NetworkBlockedError`, so a test cannot quietly call a real provider.

This module depends on neither pytest nor Textual. Use it from a fixture, e.g.::

    @pytest.fixture(autouse=True)
    def _no_network() -> Iterator[None]:
        with block_network():
            yield
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

from controlroom.agents.extractive import ExtractiveChatModel
from controlroom.agents.scripted import (
    ScriptedChatModel,
    ScriptedReply,
    ScriptedToolCall,
    ScriptedUsage,
)

__all__ = [
    "ExtractiveChatModel",
    "NetworkBlockedError",
    "ScriptedChatModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "ScriptedUsage",
    "block_network",
]

_LOCAL_NAMES = frozenset({"localhost", "localhost.", "localhost.localdomain"})
_MISSING = object()


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address while :func:`block_network` was on."""

    def __init__(self, host: object, port: object = None) -> None:
        self.host = host
        self.port = port
        target = f"{host!r}" if port is None else f"{host!r} port {port!r}"
        super().__init__(
            f"Blocked a network connection to {target}: tests must not reach the internet. "
            "Use a loopback address (127.0.0.1, ::1 or localhost) for servers the test "
            "starts itself, and controlroom.testing.ScriptedChatModel instead of a real "
            "model provider."
        )


def _is_loopback(host: object) -> bool:
    """Whether ``host`` (a name or an address literal) is the local machine."""
    if host is None:
        # getaddrinfo(None, ...) resolves to the loopback (or wildcard) address.
        return True
    if isinstance(host, bytes | bytearray):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return False
    name = host.strip().lower()
    if name in _LOCAL_NAMES:
        return True
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.split("%", 1)[0]  # IPv6 zone index, as in "::1%lo"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _check_address(family: int, address: Any) -> None:
    if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
        return
    if isinstance(address, tuple) and address:
        host, port = address[0], address[1] if len(address) > 1 else None
    else:
        host, port = address, None
    if family in (socket.AF_INET, socket.AF_INET6) and _is_loopback(host):
        return
    raise NetworkBlockedError(host, port)


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Refuse connections to anything but loopback addresses and Unix sockets.

    While the context is active, ``socket.socket.connect``, ``socket.socket.connect_ex``,
    ``socket.create_connection`` and ``socket.getaddrinfo`` raise
    :class:`NetworkBlockedError` for any host other than 127.0.0.0/8, ::1 or
    ``localhost``; the check happens before any packet is sent. The originals are put
    back on exit. It also works as a decorator.
    """
    socket_class = socket.socket
    saved_methods = {
        name: socket_class.__dict__.get(name, _MISSING) for name in ("connect", "connect_ex")
    }
    original_connect = socket_class.connect
    original_connect_ex = socket_class.connect_ex
    original_create_connection = socket.create_connection
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: Any, address: Any) -> None:
        _check_address(self.family, address)
        original_connect(self, address)

    def connect_ex(self: Any, address: Any) -> int:
        _check_address(self.family, address)
        return original_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address[0], address[1]
        if not _is_loopback(host):
            raise NetworkBlockedError(host, port)
        return original_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise NetworkBlockedError(host, port)
        return original_getaddrinfo(host, port, *args, **kwargs)

    socket_class.connect = connect  # type: ignore[method-assign]
    socket_class.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.create_connection = create_connection
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original_getaddrinfo
        socket.create_connection = original_create_connection
        for name, saved in saved_methods.items():
            if saved is _MISSING:
                # The method was inherited from _socket.socket; drop our override.
                with contextlib.suppress(AttributeError):
                    delattr(socket_class, name)
            else:
                setattr(socket_class, name, saved)
