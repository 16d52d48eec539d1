"""EXPERIMENTAL HTTP/3: session resumption and 0-RTT on the userspace backend.

A real aioquic HTTP/3 server on loopback (``tests/_h3server.py``) issues session tickets.
What happened is proven from the server's side: its TLS stack's ``session_resumed`` and
``early_data_accepted`` per connection, and the packet type (0-RTT or 1-RTT) that carried
each request. The second connection is made the way it happens in real life: the server
closes the first one (as on an idle timeout) and the next request reconnects.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import requests
import trustme

from http_fastpath import HTTP3Adapter, OptionError, connection_info
from http_fastpath._core.sockets import new_socket
from http_fastpath.http3._drivers import SyncH3Connection, SyncH3Pool
from http_fastpath.http3._h3._resumption import TicketStore

from .._h3server import H3TestServer
from .._stack import http3_transports, httpx

HTTP3Transport, AsyncHTTP3Transport = http3_transports()


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1", "localhost") as server:
        yield server


@pytest.fixture
def h3_no_early(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1", "localhost", early_data="reject") as server:
        yield server


def _client(ca_file: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace", **kwargs))


def _handshake(srv: H3TestServer, n: int) -> tuple[bool, bool]:
    """The server's view of its n-th handshake (1-based). A response to a 0-RTT request
    can reach the client before the server has the client's Finished: wait for it."""
    assert srv.wait_for(lambda: len(srv.handshakes) >= n)
    return srv.handshakes[n - 1]


def _warm(client: httpx.Client, srv: H3TestServer) -> None:
    """A first, full handshake whose ticket the client keeps; then the server closes it."""
    r = client.get(srv.url("/"))
    info = connection_info(r)
    assert info is not None and (info.resumed, info.early_data) == (False, None)
    assert _handshake(srv, 1) == (False, False) and srv.epochs == ["1rtt"]
    assert srv.wait_for(lambda: srv.tickets_issued == 1)
    srv.close_connections()


# -- httpx, sync -----------------------------------------------------------------------------


def test_second_connection_resumes_and_get_rides_0rtt(h3: H3TestServer, ca_file: str) -> None:
    with _client(ca_file) as client:
        _warm(client, h3)
        r = client.get(h3.url("/"))
        assert r.status_code == 200 and r.text == "hello over h3"
        info = connection_info(r)
        assert info is not None
        assert (info.resumed, info.early_data) == (True, "accepted")
        # the server's side: a resumed session that took early data, the GET in 0-RTT
        assert h3.connections == 2
        assert _handshake(h3, 2) == (True, True)
        assert h3.epochs == ["1rtt", "0rtt"]
        # the next request on the resumed connection is a plain 1-RTT one
        r = client.get(h3.url("/"))
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (True, None)
        assert h3.epochs[-1] == "1rtt" and h3.connections == 2


def test_post_is_never_sent_early(h3: H3TestServer, ca_file: str) -> None:
    with _client(ca_file) as client:
        _warm(client, h3)
        r = client.post(h3.url("/echo"), content=b"pay once")
        assert r.status_code == 200 and r.content == b"pay once"
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (True, None)
        assert h3.epochs[-1] == "1rtt"
        assert [req[1] for req in h3.requests].count("/echo") == 1


def test_get_with_a_body_and_put_are_not_sent_early(h3: H3TestServer, ca_file: str) -> None:
    with _client(ca_file) as client:
        _warm(client, h3)
        r = client.request("GET", h3.url("/echo"), content=b"x")
        assert r.content == b"x" and connection_info(r).early_data is None  # type: ignore[union-attr]
        h3.close_connections()
        r = client.put(h3.url("/echo"))
        assert connection_info(r).early_data is None  # type: ignore[union-attr]
        assert h3.epochs == ["1rtt", "1rtt", "1rtt"]
        assert _handshake(h3, 3)[0] and _handshake(h3, 2)[0]  # both reconnections resumed


def test_server_rejecting_0rtt_still_answers_once(h3_no_early: H3TestServer, ca_file: str) -> None:
    srv = h3_no_early
    with _client(ca_file) as client:
        _warm(client, srv)
        r = client.get(srv.url("/bytes?n=5000"))
        assert r.status_code == 200 and len(r.content) == 5000
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (True, "rejected")
        assert _handshake(srv, 2) == (True, False)  # resumed, early data refused
        assert srv.epochs[-1] == "1rtt"  # the GET went again at 1-RTT...
        assert [req[1] for req in srv.requests].count("/bytes?n=5000") == 1  # ...once


def test_server_that_forgot_the_ticket_gets_a_full_handshake(
    h3: H3TestServer, ca_file: str
) -> None:
    with _client(ca_file) as client:
        _warm(client, h3)
        h3.forget_tickets()
        r = client.get(h3.url("/"))
        assert r.status_code == 200
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (False, "rejected")
        assert _handshake(h3, 2) == (False, False) and h3.epochs[-1] == "1rtt"
        assert len(h3.requests) == 2


def test_too_early_is_sent_again_at_1rtt(h3: H3TestServer, ca_file: str) -> None:
    with _client(ca_file) as client:
        _warm(client, h3)
        r = client.get(h3.url("/too-early"))
        assert (r.status_code, r.text) == (200, "not too early")
        assert connection_info(r).early_data is None  # type: ignore[union-attr]
        assert [req[1] for req in h3.requests][1:] == ["/too-early", "/too-early"]
        assert h3.epochs[1:] == ["0rtt", "1rtt"]


def test_early_data_false_resumes_without_0rtt(h3: H3TestServer, ca_file: str) -> None:
    with _client(ca_file, early_data=False) as client:
        _warm(client, h3)
        r = client.get(h3.url("/"))
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (True, None)
        assert h3.epochs[-1] == "1rtt"
        assert _handshake(h3, 2) == (True, False)  # 0-RTT not even offered
    with pytest.raises(OptionError):
        HTTP3Transport(early_data="yes")  # type: ignore[arg-type]  # wrong on purpose


def test_server_without_tickets_is_never_resumed(ca: trustme.CA, ca_file: str) -> None:
    with H3TestServer(ca, "127.0.0.1", tickets=False) as srv, _client(ca_file) as client:
        client.get(srv.url("/"))
        srv.close_connections()
        r = client.get(srv.url("/"))
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (False, None)
        assert _handshake(srv, 2) == (False, False) and len(srv.handshakes) == 2


def test_early_request_to_a_silent_server_is_a_connect_timeout(
    ca: trustme.CA, ca_file: str
) -> None:
    """The GET goes in 0-RTT, so the connect deadline must still bound the handshake."""
    with _client(ca_file) as client:
        with H3TestServer(ca, "127.0.0.1") as h3:
            _warm(client, h3)
            port = h3.port
        silent = new_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            silent.bind(("127.0.0.1", port))
            start = time.monotonic()
            with pytest.raises(httpx.ConnectTimeout):
                client.get(f"https://127.0.0.1:{port}/", timeout=httpx.Timeout(5.0, connect=0.5))
            assert time.monotonic() - start < 3.0
            assert silent.recv(2048)  # the 0-RTT attempt reached the port
        finally:
            silent.close()


# -- tickets are a credential: keyed by trust and destination ---------------------------------


def test_tickets_do_not_cross_trust_settings(h3: H3TestServer, ca_file: str) -> None:
    pool = SyncH3Pool("userspace", trust_env=False)
    try:
        conn = pool.get("127.0.0.1", h3.port, ca_file, 5.0)
        state = conn.request(b"GET", b"127.0.0.1", b"/", [], b"", 5.0)
        assert state.status == 200
        assert h3.wait_for(lambda: conn.refresh() and len(pool.tickets) == 1)
        h3.close_connections()
        # verify=False: must not resume the verified session (nor the other way round)
        conn = pool.get("127.0.0.1", h3.port, False, 5.0)
        conn.request(b"GET", b"127.0.0.1", b"/", [], b"", 5.0)
        assert conn.info.resumed is False and _handshake(h3, 2) == (False, False)
        assert len(pool.tickets) == 2  # one per trust setting, unused
    finally:
        pool.close()


def test_alternative_destination_keeps_the_origin_identity(h3: H3TestServer, ca_file: str) -> None:
    """``connect_to`` (an Alt-Svc alternative) only changes where the UDP packets go."""
    closed = new_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    closed.bind(("127.0.0.1", 0))
    origin_port = closed.getsockname()[1]
    closed.close()
    tickets = TicketStore()
    pool = SyncH3Pool("userspace", trust_env=False, tickets=tickets)
    try:
        authority = f"localhost:{origin_port}".encode()
        for _ in range(2):
            conn = pool.get("localhost", origin_port, ca_file, 5.0, ("127.0.0.1", h3.port))
            state = conn.request(b"GET", authority, b"/", [], b"", 5.0)
            assert state.status == 200
            # nothing reads the socket between requests: refresh() takes the ticket in
            assert h3.wait_for(functools.partial(_has_ticket, conn, tickets))
            h3.close_connections()
        assert dict(h3.requests[-1][2])[b":authority"] == authority
        assert _handshake(h3, 2) == (True, True) and h3.handshakes[0] == (False, False)
        assert h3.epochs == ["1rtt", "0rtt"]
        # a different alternative does not share the ticket
        conn = pool.get("localhost", origin_port, ca_file, 5.0, ("localhost", h3.port))
        conn.request(b"GET", authority, b"/", [], b"", 5.0)
        assert conn.info.resumed is False
    finally:
        pool.close()


def _has_ticket(conn: SyncH3Connection, tickets: TicketStore) -> bool:
    return conn.refresh() and len(tickets) == 1


# -- async: asyncio and trio -----------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_async_resumption_and_0rtt(h3: H3TestServer, ca_file: str, anyio_backend: str) -> None:
    async def main() -> None:
        transport = AsyncHTTP3Transport(verify=ca_file, backend="userspace")
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.get(h3.url("/"))
            assert connection_info(r).resumed is False  # type: ignore[union-attr]
            assert h3.wait_for(lambda: h3.tickets_issued == 1)
            h3.close_connections()
            r = await client.get(h3.url("/"))
            info = connection_info(r)
            assert info is not None and (info.resumed, info.early_data) == (True, "accepted")
            assert _handshake(h3, 2) == (True, True) and h3.epochs == ["1rtt", "0rtt"]
            h3.close_connections()
            # concurrent: the GETs ride in 0-RTT, the POST waits for the handshake
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(client.get, h3.url(f"/bytes?n={i + 1}"))
                tg.start_soon(_post, client, h3.url("/echo"))

    anyio.run(main, backend=anyio_backend)
    third = list(zip(h3.requests, h3.epochs, strict=True))[2:]  # the third connection's
    epochs = {path: epoch for (_, path, _, _), epoch in third}
    # A GET sent before the handshake completed rides in 0-RTT, one sent after it at
    # 1-RTT (which depends on the scheduler: trio shuffles); the POST never goes early.
    assert epochs["/echo"] == "1rtt" and h3.connections == 3
    assert all(path.startswith("/bytes") for path, e in epochs.items() if e == "0rtt")


async def _post(client: httpx.AsyncClient, url: str) -> None:
    r = await client.post(url, content=b"once")
    assert r.content == b"once"


# -- requests --------------------------------------------------------------------------------


def test_requests_resumption_and_0rtt(h3: H3TestServer, ca_file: str) -> None:
    with requests.Session() as session:
        session.mount("https://", HTTP3Adapter(backend="userspace"))
        session.verify = ca_file
        r = session.get(h3.url("/"))
        assert connection_info(r).resumed is False  # type: ignore[union-attr]
        assert h3.wait_for(lambda: h3.tickets_issued == 1)
        h3.close_connections()
        r = session.get(h3.url("/"))
        info = connection_info(r)
        assert info is not None and (info.resumed, info.early_data) == (True, "accepted")
        assert h3.epochs == ["1rtt", "0rtt"]
        h3.close_connections()
        r = session.post(h3.url("/echo"), data=b"once")
        assert r.content == b"once" and h3.epochs[-1] == "1rtt"
        assert connection_info(r).early_data is None  # type: ignore[union-attr]


def test_requests_adapter_early_data_false_survives_pickling() -> None:
    import pickle

    adapter = pickle.loads(pickle.dumps(HTTP3Adapter(backend="userspace", early_data=False)))
    assert adapter._h3_pool.early_data is False
