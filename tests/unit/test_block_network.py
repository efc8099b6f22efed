from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path

import pytest

from controlroom.testing import NetworkBlockedError, block_network

PUBLIC_V4 = ("203.0.113.1", 80)  # TEST-NET-3: never routed, and never contacted here


def test_public_address_is_refused_before_any_packet() -> None:
    with block_network(), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkBlockedError) as info:
            sock.connect(PUBLIC_V4)
        with pytest.raises(NetworkBlockedError):
            sock.connect_ex(PUBLIC_V4)
        # The socket never left its unconnected state.
        with pytest.raises(OSError):  # noqa: PT011
            sock.getpeername()
    message = str(info.value)
    assert "203.0.113.1" in message
    assert "must not reach the internet" in message
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("host", ["example.com", "203.0.113.1", "2001:db8::1", "10.0.0.1"])
def test_resolving_and_create_connection_are_refused(host: str) -> None:
    with block_network():
        with pytest.raises(NetworkBlockedError, match="must not reach the internet"):
            socket.getaddrinfo(host, 443)
        with pytest.raises(NetworkBlockedError):
            socket.create_connection((host, 443), timeout=0.1)


def test_ipv6_public_address_is_refused() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    with (
        block_network(),
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkBlockedError),
    ):
        sock.connect(("2001:db8::1", 80, 0, 0))


def _serve_once(server: socket.socket) -> threading.Thread:
    def run() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_loopback_connections_work() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        with block_network():
            thread = _serve_once(server)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                assert client.recv(5) == b"hello"
            thread.join(5)

            thread = _serve_once(server)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                assert client.connect_ex(("127.0.0.1", port)) == 0
                assert client.recv(5) == b"hello"
            thread.join(5)

            thread = _serve_once(server)
            with socket.create_connection(("localhost", port), timeout=5) as client:
                assert client.recv(5) == b"hello"
            thread.join(5)

            assert socket.getaddrinfo("localhost", port)
            if socket.has_ipv6:
                assert socket.getaddrinfo("::1", port)
            assert socket.getaddrinfo(None, port)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_sockets_work() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = str(Path(folder) / "s")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            with block_network():
                thread = _serve_once(server)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                    client.settimeout(5)
                    client.connect(path)
                    assert client.recv(5) == b"hello"
                thread.join(5)


def test_originals_are_restored_on_exit() -> None:
    before = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
        socket.getaddrinfo,
    )
    # conftest already blocks the network for every test: this block nests inside it.
    own_before = dict(socket.socket.__dict__)
    with block_network():
        assert socket.socket.connect is not before[0]
        assert socket.getaddrinfo is not before[3]
    after = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
        socket.getaddrinfo,
    )
    assert after == before
    assert socket.socket.__dict__.get("connect") is own_before.get("connect")
    assert socket.socket.__dict__.get("connect_ex") is own_before.get("connect_ex")


def test_restored_even_when_the_body_raises() -> None:
    original = socket.getaddrinfo
    with pytest.raises(KeyError), block_network():
        raise KeyError("boom")
    assert socket.getaddrinfo is original


def test_nesting_and_decorator_use() -> None:
    original = socket.getaddrinfo

    @block_network()
    def guarded() -> None:
        with block_network():
            pass
        # Still blocked after the inner block ends.
        with pytest.raises(NetworkBlockedError):
            socket.getaddrinfo("example.com", 80)

    guarded()
    assert socket.getaddrinfo is original
