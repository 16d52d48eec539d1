"""The dialer against real servers in the private namespace, checked from the kernel's side."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Protocol

import pytest
import trustme

from http_fastpath import DialError, DialTimeout, FastpathOptions, TFOStatus
from http_fastpath._core.dialer import dial
from http_fastpath._core.sockets import FastpathSocket
from http_fastpath._core.tls import TLSSocket
from http_fastpath.netlab import Server, next_loopback

from .._servers import https

pytestmark = pytest.mark.netns


class _Conn(Protocol):
    def sendall(self, data: bytes) -> None: ...
    def recv(self, n: int) -> bytes: ...


def _exchange(conn: _Conn, host: str, method: str = "GET", body: bytes = b"") -> bytes:
    head = f"{method} /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "server closed early"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    length = int(header.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += conn.recv(65536)
    assert header.startswith(b"HTTP/1.1 200")
    return rest


def _dial(server: Server, options: FastpathOptions, timeout: float = 5.0) -> FastpathSocket:
    return dial(server.host, server.port, options=options, timeout=timeout)


def test_cleartext_tfo_ten_fresh_connections() -> None:
    options = FastpathOptions(tfo=True, mptcp=False)
    infos = []
    with Server() as server:
        for _ in range(10):
            with _dial(server, options) as sock:
                assert sock.is_pending
                assert _exchange(sock, server.host) == b""
                infos.append(sock.connection_info())
        records = server.records
    assert [r.syn_data for r in records] == [False] + [True] * 9
    assert infos[0].tfo is TFOStatus.COOKIE_REQUESTED
    assert all(i.tfo is TFOStatus.SYN_DATA_ACKED for i in infos[1:])
    assert all(i.syn_data_bytes > 0 and i.tfo_used for i in infos[1:])
    assert all(i.transport == "tcp" and i.mptcp is None for i in infos)
    assert infos[1].peer_address == (server.host, server.port)
    assert infos[1].rtt_ms is not None


def test_tls13_tfo_ten_fresh_connections(ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    options = FastpathOptions(tfo=True, mptcp=False)
    client_tls.minimum_version = ssl.TLSVersion.TLSv1_3
    infos = []
    with https(ca) as server:
        for _ in range(10):
            sock = _dial(server, options)
            tls = TLSSocket(sock, client_tls, server_hostname=server.host)
            tls.do_handshake()
            assert tls.ssl_object.version() == "TLSv1.3"
            assert _exchange(tls, server.host, "POST", b"payload") == b"payload"
            infos.append(sock.connection_info())
            tls.close()
        records = server.records
    assert [r.syn_data for r in records] == [False] + [True] * 9
    assert all(i.tfo_used and i.early_data_safe for i in infos[1:])


@pytest.mark.parametrize("bad", ["hostname", "ca"])
def test_tls_verification_is_enforced(ca: trustme.CA, bad: str) -> None:
    ctx = ssl.create_default_context()
    if bad == "ca":
        trustme.CA().configure_trust(ctx)
    else:
        ca.configure_trust(ctx)
    with https(ca) as server:
        for _ in range(2):  # the second connection sends its ClientHello in the SYN
            sock = _dial(server, FastpathOptions(mptcp=False))
            tls = TLSSocket(
                sock, ctx, server_hostname="wrong.test" if bad == "hostname" else server.host
            )
            with pytest.raises(ssl.SSLCertVerificationError):
                tls.do_handshake()
            tls.close()


def test_mptcp_to_mptcp_listener_and_fallback_to_tcp() -> None:
    options = FastpathOptions(tfo=False, mptcp=True)
    with Server(mptcp=True) as mp_server, Server(mptcp=False) as tcp_server:
        with _dial(mp_server, options) as sock:
            _exchange(sock, mp_server.host)
            info = sock.connection_info()
        assert (info.transport, info.socket_protocol, info.mptcp) == ("mptcp", "mptcp", True)
        assert info.mptcp_subflows == 1
        assert mp_server.records[0].is_mptcp is True
        assert info.tfo is TFOStatus.DISABLED

        with _dial(tcp_server, options) as sock:
            _exchange(sock, tcp_server.host)
            info = sock.connection_info()
        # on the wire it is TCP; the socket was MPTCP; a server without MPTCP is no fallback
        assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "mptcp", False)
        assert info.fallbacks == ()


def test_mptcp_and_tfo_together() -> None:
    options = FastpathOptions(tfo=True, mptcp=True)
    with Server(mptcp=True) as server:
        infos = []
        for _ in range(3):
            with _dial(server, options) as sock:
                _exchange(sock, server.host)
                infos.append(sock.connection_info())
        records = server.records
    # Loopback (no path delay) is exempt from the MPTCP SYN-data guard; over a real path
    # (tests/lab/test_reliability_lab.py row 8) MPTCP-to-MPTCP connections send no SYN data.
    assert [r.syn_data for r in records] == [False, True, True]
    assert all(r.is_mptcp for r in records)
    assert infos[2].mptcp is True and infos[2].tfo_used


def test_a_server_answering_mptcp_in_plain_tcp_gets_plain_tcp_sockets_with_tfo() -> None:
    options = FastpathOptions(tfo=True, mptcp=True)
    with Server(mptcp=False) as server:
        infos = []
        for _ in range(3):
            with _dial(server, options) as sock:
                _exchange(sock, server.host)
                infos.append(sock.connection_info())
        records = server.records
    # The 1st connection (MPTCP socket) learns that the server answers in plain TCP and
    # gets a cookie; the next ones use plain TCP sockets with data in the SYN.
    assert [r.syn_data for r in records] == [False, True, True]
    assert not any(r.is_mptcp for r in records)
    assert (infos[0].transport, infos[0].socket_protocol, infos[0].mptcp) == ("tcp", "mptcp", False)
    for info in infos[1:]:
        assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "tcp", False)
        assert info.tfo_used and info.fallbacks == ()


def test_tfo_sysctl_off_falls_back(sysctl: object, caplog: pytest.LogCaptureFixture) -> None:
    sysctl("net.ipv4.tcp_fastopen", "0")  # type: ignore[operator]
    caplog.set_level("INFO", logger="http_fastpath.dial")
    with Server() as server:
        for _ in range(3):
            with _dial(server, FastpathOptions(mptcp=False)) as sock:
                _exchange(sock, server.host)
                info = sock.connection_info()
            assert info.tfo is TFOStatus.UNAVAILABLE
            assert any("tcp_fastopen" in f for f in info.fallbacks)
        assert not any(r.syn_data for r in server.records)
    lines = [r.getMessage() for r in caplog.records if "TCP_FASTOPEN_CONNECT" in r.getMessage()]
    assert len(lines) == 1  # one clear line, not one per connection


def test_mptcp_disabled_falls_back(sysctl: object) -> None:
    sysctl("net.mptcp.enabled", "0")  # type: ignore[operator]
    with Server() as server:  # an MPTCP listener cannot even be created now
        with _dial(server, FastpathOptions(tfo=False, mptcp=True)) as sock:
            _exchange(sock, server.host)
            info = sock.connection_info()
    assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "tcp", False)
    assert any("net.mptcp.enabled=0" in f for f in info.fallbacks)


def test_cookie_cached_dead_server_is_a_connect_error() -> None:
    with Server() as server:
        for _ in range(2):
            with _dial(server, FastpathOptions(mptcp=False)) as sock:
                _exchange(sock, server.host)
        host, port = server.host, server.port
        assert server.records[1].syn_data  # the cookie is cached
    sock = dial(host, port, options=FastpathOptions(mptcp=False), timeout=5)
    with pytest.raises(DialError) as info:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert info.value.errno == 111  # ECONNREFUSED, as a blocking connect() reports it
    assert sock.fileno() == -1  # closed, nothing leaked


def test_silent_server_times_out_as_connect_timeout(full_backlog: tuple[str, int]) -> None:
    # A listener whose accept queue is full drops SYNs: the handshake never completes.
    sock = dial(*full_backlog, options=FastpathOptions(mptcp=False), timeout=0.3)
    with pytest.raises(DialTimeout):
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")


def test_non_idempotent_cleartext_never_rides_in_the_syn() -> None:
    with Server() as server:
        for method in ("GET", "GET", "POST", "PATCH", "GET"):
            with _dial(server, FastpathOptions(mptcp=False)) as sock:
                _exchange(sock, server.host, method, b"x")
                info = sock.connection_info()
            if method in ("POST", "PATCH"):
                assert info.tfo is TFOStatus.NOT_ATTEMPTED and info.early_data_safe is False
        records = server.records
    assert [r.syn_data for r in records] == [False, True, False, False, True]
    assert [r.requests for r in records][2:4] == [["POST"], ["PATCH"]]


def test_policy_always_sends_post_early() -> None:
    options = FastpathOptions(mptcp=False, tfo_policy="always")
    with Server() as server:
        for _ in range(2):
            with _dial(server, options) as sock:
                _exchange(sock, server.host, "POST", b"x")
        assert [r.syn_data for r in server.records] == [False, True]


def test_next_address_after_a_dead_one() -> None:
    from http_fastpath._core.dialer import open_pending

    with Server() as server:
        dead = next_loopback()
        addresses = [
            (socket.AF_INET, (dead, server.port)),
            (socket.AF_INET, (server.host, server.port)),
        ]
        for _ in range(2):
            sock = open_pending(addresses, options=FastpathOptions(mptcp=False), timeout=5)
            with sock:
                _exchange(sock, server.host)
                assert sock.connection_info().peer_address == (server.host, server.port)
        assert [r.syn_data for r in server.records] == [False, True]


def test_eager_dial_without_tfo_is_connected() -> None:
    with Server() as server:
        with _dial(server, FastpathOptions(tfo=False, mptcp=False)) as sock:
            assert not sock.is_pending
            assert sock.getpeername() == (server.host, server.port)
            _exchange(sock, server.host)
    with pytest.raises(DialError):
        dial(server.host, server.port, options=FastpathOptions(tfo=False, mptcp=False))


def test_no_connect_timeout_is_bounded_by_the_kernel_as_stock(
    full_backlog: tuple[str, int],
) -> None:
    """``timeout=None``: the wait ends when the kernel gives up the handshake, as stock's
    (``tcp_syn_retries`` is 1: it gives up after ~3 s)."""
    with pytest.raises(TimeoutError) as stock:
        socket.create_connection(full_backlog, timeout=None).close()
    sock = dial(*full_backlog, options=FastpathOptions(mptcp=False), timeout=None)
    with pytest.raises(DialTimeout):  # a TimeoutError too, as stock's
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert stock.value.errno == 110  # ETIMEDOUT: the kernel ended stock's connect
    assert sock.fileno() == -1


class _BannerServer:
    """A server-first protocol (SMTP-like): on accept it says ``220 ready``, then answers
    each line with ``echo:<line>``. Serves one connection per ``accept`` call."""

    def __init__(self) -> None:
        self.host = next_loopback()
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10.0)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10.0)
            conn.sendall(b"220 ready\r\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1024)
                if not chunk:
                    return
                data += chunk
            conn.sendall(b"echo:" + data)

    def close(self) -> None:
        self.thread.join(10.0)
        self.listener.close()


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(1024)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize("first", ["recv", "recv_into", "send", "sendall", "sendmsg"])
def test_any_first_call_completes_a_pending_socket(first: str) -> None:
    """Whatever the first call on a pending socket, it connects it: a read (a protocol
    where the server speaks first) without data, a write with the data (in the SYN when
    TCP Fast Open allows)."""
    server = _BannerServer()
    try:
        sock = dial(server.host, server.port, options=FastpathOptions(mptcp=False), timeout=5.0)
        with sock:
            assert sock.is_pending
            line = b"hello\n"
            if first == "recv":
                assert _read_until(sock, b"\r\n") == b"220 ready\r\n"
            elif first == "recv_into":
                buffer = bytearray(64)
                n = sock.recv_into(buffer)
                assert bytes(buffer[:n]) == b"220 ready\r\n"[:n] and n > 0
                if n < len(b"220 ready\r\n"):
                    _read_until(sock, b"\r\n")
            elif first == "send":
                assert sock.send(line) == len(line)
            elif first == "sendall":
                sock.sendall(line)
            else:
                assert sock.sendmsg([line]) == len(line)
            assert not sock.is_pending
            assert sock.getpeername() == (server.host, server.port)
            if first.startswith("recv"):
                sock.sendall(line)
                assert _read_until(sock, b"\n") == b"echo:" + line
            else:  # (the banner and the answer may come in one read)
                assert _read_until(sock, b"echo:" + line) == b"220 ready\r\necho:" + line
            info = sock.connection_info()
            assert info.peer_address == (server.host, server.port)
            assert info.syn_data_bytes == 0  # the first connection to it only asks a cookie
    finally:
        server.close()


def test_dup_and_detach_plain() -> None:
    """``dup()`` of a pending socket is a plain copy of the same socket (not pending
    itself); ``detach_plain`` refuses a pending socket and moves a connected one's file
    descriptor into an exact ``socket.socket`` (trio wants that type)."""
    from http_fastpath._core.sockets import detach_plain

    server = _BannerServer()
    try:
        sock = dial(server.host, server.port, options=FastpathOptions(mptcp=False), timeout=5.0)
        copy = sock.dup()
        try:
            assert sock.is_pending and not copy.is_pending
            with pytest.raises(ValueError, match="not connected yet"):
                detach_plain(sock)
            assert _read_until(sock, b"\r\n") == b"220 ready\r\n"  # connects the socket
            assert copy.getpeername() == (server.host, server.port)  # the same socket
            plain = detach_plain(sock)
            with plain:
                assert type(plain) is socket.socket and sock.fileno() == -1
                assert plain.gettimeout() == 5.0
                plain.sendall(b"hi\n")
                assert _read_until(plain, b"\n") == b"echo:hi\n"
        finally:
            copy.close()
            sock.close()
    finally:
        server.close()
