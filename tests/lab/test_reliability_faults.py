"""Reliability matrix, loopback rows: each fault through every client, stock and fastpath.

Rows (see docs/reliability.md): 1 kernel TFO client bit off, 2 MPTCP disabled, 3 server
without TFO, 4 server without MPTCP, 7 dead server with a cached cookie (retries counted
from ``Tcp: ActiveOpens``), 10 server closing idle keep-alive connections, 12 a name with
one dead and one live address. Lab rows (5, 6, 8, 9, 11) are in test_reliability_lab.py.
Every test runs stock requests/httpx next to ours and asserts the same outcome.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trustme
from urllib3.exceptions import NewConnectionError

from http_fastpath import TFOStatus
from http_fastpath._core.sockets import new_socket
from http_fastpath.netlab import Server, full_backlog, next_loopback

from .._clients import BOTH, KINDS, Outcome, ok, run
from .._observe import active_opens, connect_attempts
from .._servers import for_scheme, server_tls
from .._stack import httpx

pytestmark = pytest.mark.netns


def _fresh_clients(kind: str, impl: str, url: str, n: int, **kw: Any) -> list[Outcome]:
    """``n`` GET+POST pairs, each pair on a fresh client (a fresh connection)."""
    out: list[Outcome] = []
    for _ in range(n):
        out += ok(run(kind, impl, [("GET", url + "/"), ("POST", url + "/echo", b"data")], **kw))
    return out


SCHEMES = pytest.mark.parametrize("scheme", ["http", "https"])


# -- 1, 2: kernel switches ---------------------------------------------------------------------


@BOTH
@SCHEMES
@pytest.mark.parametrize("value", ["2", "0"], ids=["server-bit-only", "all-off"])
def test_1_kernel_tfo_client_bit_off(
    kind: str, impl: str, scheme: str, value: str, sysctl: Any, ca: trustme.CA, ca_file: str
) -> None:
    # "2": the server bit only; "0": TCP Fast Open off at both ends. The client may not use it.
    sysctl("net.ipv4.tcp_fastopen", value)
    with for_scheme(scheme, ca) as server:
        outcomes = _fresh_clients(kind, impl, server.url, 2, verify=ca_file)
        records = server.records
    assert [o.body for o in outcomes] == [b"hello GET", b"data"] * 2
    assert not any(r.syn_data for r in records)
    if impl == "fast":
        assert all(o.info is not None and o.info.tfo is TFOStatus.UNAVAILABLE for o in outcomes)
        assert all(any("TCP_FASTOPEN_CONNECT" in f for f in o.info.fallbacks) for o in outcomes)  # type: ignore[union-attr]


@BOTH
@SCHEMES
def test_2_mptcp_disabled(
    kind: str, impl: str, scheme: str, sysctl: Any, ca: trustme.CA, ca_file: str
) -> None:
    sysctl("net.mptcp.enabled", "0")
    with for_scheme(scheme, ca) as server:
        outcomes = _fresh_clients(kind, impl, server.url, 2, verify=ca_file)
        records = server.records
    assert [o.body for o in outcomes] == [b"hello GET", b"data"] * 2
    assert not any(r.is_mptcp for r in records)
    if impl == "fast":
        for o in outcomes:
            assert o.info is not None
            assert (o.info.transport, o.info.socket_protocol, o.info.mptcp) == ("tcp", "tcp", False)
            assert any("net.mptcp.enabled=0" in f for f in o.info.fallbacks)
        # TFO still works without MPTCP: the second connection's GET rode in the SYN.
        assert [r.syn_data for r in records] == [False, True]


# -- 3, 4: the server lacks a feature ---------------------------------------------------------


@BOTH
@SCHEMES
def test_3_server_without_tfo(
    kind: str, impl: str, scheme: str, ca: trustme.CA, ca_file: str
) -> None:
    with for_scheme(scheme, ca, tfo=False) as server:
        outcomes = _fresh_clients(kind, impl, server.url, 3, verify=ca_file)
        records = server.records
    assert [o.body for o in outcomes] == [b"hello GET", b"data"] * 3
    assert len(records) == 3 and not any(r.syn_data for r in records)
    if impl == "fast":  # never a cookie, so every connection only asks for one
        assert {o.info.tfo for o in outcomes if o.info} == {TFOStatus.COOKIE_REQUESTED}
        assert all(o.info and o.info.syn_data_bytes == 0 for o in outcomes)


@BOTH
@SCHEMES
def test_4_server_without_mptcp(
    kind: str, impl: str, scheme: str, ca: trustme.CA, ca_file: str
) -> None:
    with for_scheme(scheme, ca, mptcp=False) as server:
        outcomes = _fresh_clients(kind, impl, server.url, 2, verify=ca_file)
        records = server.records
    assert [o.body for o in outcomes] == [b"hello GET", b"data"] * 2
    assert not any(r.is_mptcp for r in records)
    if impl == "fast":
        for o in outcomes[:2]:  # the first client's connection learns the answer
            assert o.info is not None and o.info.mptcp is False
            assert (o.info.transport, o.info.socket_protocol) == ("tcp", "mptcp")
        for o in outcomes[2:]:  # the next one uses a plain TCP socket, with TFO
            assert o.info is not None and o.info.mptcp is False
            assert (o.info.transport, o.info.socket_protocol) == ("tcp", "tcp")
            assert not any("mptcp" in f for f in o.info.fallbacks)
        assert records[1].syn_data


# -- 7: dead server with a cached cookie ----------------------------------------------------


def _dead_address_with_cookie() -> tuple[str, int]:
    with Server() as server:
        for _ in range(2):
            ok(run("httpx", "fast", [("GET", server.url + "/")], options={"mptcp": False}))
        assert server.records[1].syn_data  # the TFO cookie is cached for this address
        return server.host, server.port


def _connect_error_types(kind: str) -> tuple[type[BaseException], ...]:
    return (requests.exceptions.ConnectionError,) if kind == "requests" else (httpx.ConnectError,)


@BOTH
@SCHEMES
def test_7_dead_server_with_cached_cookie_retries_honoured(
    kind: str, impl: str, scheme: str
) -> None:
    host, port = _dead_address_with_cookie()
    url = f"{scheme}://{host}:{port}/"
    attempts = []
    errors = []
    for _ in range(2):
        before = active_opens()
        # TFO only: the cached cookie puts the first flight in the SYN (MPTCP sockets do not
        # send SYN data to a server not known to answer in plain TCP).
        (outcome,) = run(
            kind, impl, [("GET", url)], retries=2, verify=False, options={"mptcp": False}
        )
        attempts.append(active_opens() - before)
        errors.append(outcome.error)
    for error in errors:
        assert isinstance(error, _connect_error_types(kind)), repr(error)
        assert not isinstance(error, (requests.exceptions.ConnectTimeout, httpx.ConnectTimeout))
    if kind == "requests":
        assert "Max retries exceeded" in str(errors[0])
        for error in errors:  # refused, as stock words it: not a timeout, not a TLS error
            assert error is not None
            assert isinstance(error.args[0].reason, NewConnectionError), repr(error)
    # One attempt + two retries; ours adds one plain SYN to the first (connect_attempts).
    fast = impl == "fast"
    assert attempts == [connect_attempts(2, fast=fast), connect_attempts(2, fast=fast, first=False)]


@BOTH
def test_7_refused_port_next_to_a_live_port_keeps_tfo(kind: str, impl: str) -> None:
    """A dead port is a dead server, not a middlebox: no pause for the live port next to it."""
    with Server() as live:
        for _ in range(2):  # the TFO cookie for this address is cached
            ok(run("httpx", "fast", [("GET", live.url + "/")], options={"mptcp": False}))
        with Server(host=live.host) as gone:
            dead = gone.url + "/"
        attempts = []
        for _ in range(2):
            before = active_opens()
            (outcome,) = run(kind, impl, [("GET", dead)], retries=2, options={"mptcp": False})
            attempts.append(active_opens() - before)
            assert isinstance(outcome.error, _connect_error_types(kind)), repr(outcome.error)
        (after,) = ok(run(kind, impl, [("GET", live.url + "/")], options={"mptcp": False}))
        records = live.records
    # Stock: 3 SYNs per request (one attempt, two retries). Ours: the first reset answering
    # a SYN with data is retried once with a plain SYN (it could be a middlebox); the plain
    # SYN is refused too, so the port is dead: later attempts send no data, as many SYNs as
    # stock, and TCP Fast Open is not paused anywhere.
    fast = impl == "fast"
    assert attempts == [connect_attempts(2, fast=fast), connect_attempts(2, fast=fast, first=False)]
    if impl == "fast":
        assert after.info is not None and after.info.tfo is TFOStatus.SYN_DATA_ACKED
        assert records[-1].syn_data
        assert not any("paused" in f for f in after.info.fallbacks)


# -- 10: the server closes idle keep-alive connections ---------------------------------------


class ClosingServer:
    """Answers each request with a keep-alive response, then closes the connection at once.

    ``rst=True`` closes with a reset (``SO_LINGER`` 0) instead of a FIN. The client's pooled
    connection dies while it idles, which the client must notice before reusing it.
    """

    def __init__(self, host: str, tls: ssl.SSLContext | None = None, rst: bool = False) -> None:
        self.host = host
        self.tls = tls
        self.rst = rst
        self.listener = new_socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.listener.setsockopt(socket.IPPROTO_TCP, 23, 16)  # TCP_FASTOPEN
        self.listener.bind((host, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(5)
            stream: Any = conn
            with contextlib.suppress(OSError, ssl.SSLError):
                if self.tls is not None:
                    stream = self.tls.wrap_socket(conn, server_side=True)
                self._answer(conn, stream)
            stream.close()
            conn.close()

    def _answer(self, conn: socket.socket, stream: Any) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = stream.recv(65536)
            if not chunk:
                return
            data += chunk
        stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        if self.rst:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    def __enter__(self) -> ClosingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.thread.join(5)


@BOTH
@SCHEMES
@pytest.mark.parametrize("close", ["fin", "rst"])
def test_10_server_closes_idle_keepalive_connections(
    kind: str, impl: str, scheme: str, close: str, ca: trustme.CA, ca_file: str
) -> None:
    host = next_loopback()
    tls = server_tls(ca, host) if scheme == "https" else None
    with ClosingServer(host, tls=tls, rst=close == "rst") as server:
        calls = [("GET", server.url + "/")] * 4
        outcomes = run(kind, impl, calls, verify=ca_file, pause=0.05)
        accepted = server.accepted
    assert [o.body for o in ok(outcomes)] == [b"hello"] * 4
    assert accepted == 4  # each request noticed its pooled connection was dead: a new one


# -- 12: a name with one dead and one live address --------------------------------------------

DUAL_NAME = "dual.fastpath.test"


@contextlib.contextmanager
def dual_name(monkeypatch: pytest.MonkeyPatch, live: str, port: int) -> Iterator[None]:
    """TEST-ONLY RESOLUTION PATCH: ``DUAL_NAME`` resolves to ``::1`` (dead) then ``live``.

    There is no DNS server here and /etc/hosts is the host's file, so ``socket.getaddrinfo``
    (which stock urllib3, httpcore, anyio and our dialer all call) answers for this one
    made-up name; every other name resolves normally.
    """
    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (DUAL_NAME, DUAL_NAME.encode()):
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (live, port)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield


#: (kind, impl, tfo): the tfo switch only applies to ours, so stock runs once per kind
ROW_12 = [
    pytest.param(kind, impl, tfo, id=f"{kind}-{impl}" + ("" if impl == "stock" else f"-{word}"))
    for kind in KINDS
    for impl, tfo, word in [("stock", True, ""), ("fast", True, "tfo"), ("fast", False, "no-tfo")]
]


@pytest.mark.parametrize(("kind", "impl", "tfo"), ROW_12)
@pytest.mark.parametrize("dead", ["refused", "silent"])
def test_12_name_with_a_dead_and_a_live_address(
    kind: str, impl: str, dead: str, tfo: bool, monkeypatch: pytest.MonkeyPatch, sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_syn_retries", "1")
    timeout = 1.0
    with Server() as server, dual_name(monkeypatch, server.host, server.port):
        url = f"http://{DUAL_NAME}:{server.port}/"
        elapsed = []
        outcomes: list[Outcome] = []
        with full_backlog("::1", server.port) if dead == "silent" else contextlib.nullcontext():
            for _ in range(2):  # the second connection has a TFO cookie for the live address
                start = time.monotonic()
                outcomes += ok(
                    run(kind, impl, [("GET", url)], options={"tfo": tfo}, connect_timeout=timeout)
                    if impl == "fast"
                    else run(kind, impl, [("GET", url)], connect_timeout=timeout)
                )
                elapsed.append(time.monotonic() - start)
        records = server.records
    print(f"\n12 {kind}-{impl} dead={dead} tfo={tfo}: " + ", ".join(f"{e:.3f}s" for e in elapsed))
    assert [o.body for o in outcomes] == [b"hello GET"] * 2
    assert len(records) == 2
    if impl == "fast":
        for o in outcomes:
            assert o.info is not None and o.info.peer_address == (server.host, server.port)
        assert records[1].syn_data is tfo  # the live address got the request in the SYN
