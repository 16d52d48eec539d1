"""The lean connect path (issue #20): same behaviour, less work per connection.

Real servers in the private namespace; what the kernel saw is checked from the server's
side where it matters. No timing is asserted here (the benchmarks measure).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import socket
from typing import Any

import pytest
import requests

from http_fastpath import (
    ConnectionInfo,
    FastpathAdapter,
    FastpathOptions,
    TFOStatus,
    connection_info,
    stats,
)
from http_fastpath._core import addresses as _addresses
from http_fastpath._core import dialer as _dialer
from http_fastpath._core import info as _info
from http_fastpath._core import linux as _linux
from http_fastpath._core import proof as _proof
from http_fastpath._core.memory import MEMORY
from http_fastpath._core.proof import INFO_EXTENSION
from http_fastpath._core.record import DialRecord
from http_fastpath._core.sockets import FastpathSocket
from http_fastpath._integrations import urllib3_connection as _u3c
from http_fastpath.netlab import Server

from .._stack import FastpathTransport, httpx

pytestmark = pytest.mark.netns

ON = FastpathOptions()


def _get(sock: socket.socket, host: str) -> bytes:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# -- the proof: read when looked at, once ----------------------------------------------------


def test_deferred_info_is_a_connection_info_in_every_way() -> None:
    reads: list[int] = []

    def read() -> ConnectionInfo:
        reads.append(1)
        return ConnectionInfo(transport="tcp", tfo=TFOStatus.SYN_DATA_ACKED, rtt_ms=0.1)

    info = _info.deferred_info(read)
    assert isinstance(info, ConnectionInfo) and not _info.is_read(info) and reads == []
    plain = ConnectionInfo(transport="tcp", tfo=TFOStatus.SYN_DATA_ACKED, rtt_ms=0.1)
    assert info.tfo_used and info == plain and plain == info and hash(info) == hash(plain)
    assert repr(info) == repr(plain) and info.as_dict() == plain.as_dict()
    assert dataclasses.asdict(info) == dataclasses.asdict(plain)
    assert type(copy.copy(info)) is ConnectionInfo
    assert pickle.loads(pickle.dumps(info)) == plain
    assert reads == [1]  # read once, whatever looked


def test_httpx_proof_is_read_when_looked_at_and_survives_the_close() -> None:
    with Server() as server:
        with httpx.Client(transport=FastpathTransport(mptcp=False)) as client:
            for _ in range(2):  # the second one with data in the SYN
                resp = client.get(f"{server.url}/", headers={"Connection": "close"})
            attached = resp.extensions[INFO_EXTENSION]
            assert isinstance(attached, ConnectionInfo) and not _info.is_read(attached)
        # the connection is closed: what the connect and the close kept is the proof
        info = connection_info(resp)
        assert info is attached and not _info.is_read(info)
    assert info.tfo is TFOStatus.SYN_DATA_ACKED and info.syn_data_bytes > 0
    assert _info.is_read(info)
    assert info.peer_address == (server.host, server.port)
    assert info.local_address is None  # not read by the seal (a syscall per connection)
    assert info.rtt_ms is not None  # the handshake's, read by the connect


def test_requests_proof_after_the_body_and_the_close() -> None:
    infos = []
    with Server() as server:
        for _ in range(2):  # a new session each time: a new connection, closed by the server
            with requests.Session() as session:
                session.mount("http://", FastpathAdapter(mptcp=False))
                resp = session.get(f"{server.url}/", headers={"Connection": "close"})
            assert resp.content == b"hello GET"
            infos.append(connection_info(resp))
    first, second = infos
    assert first is not None and second is not None and first is not second
    assert first.tfo is TFOStatus.COOKIE_REQUESTED and first.syn_data_bytes == 0
    assert second.tfo is TFOStatus.SYN_DATA_ACKED and second.tfo_used
    # (urllib3 leaves a connection the server closed to the garbage collector, as stock:
    # the socket is still open while the response lives, so the proof reads it live)
    assert second.local_address is not None and second.rtt_ms is not None


@pytest.mark.parametrize("lib", ["requests", "httpx"])
def test_a_proof_read_while_open_keeps_the_local_address(lib: str) -> None:
    """Read before the close (here: with the headers, the body still streaming), the
    proof has everything, the local address included, and keeps it after the close."""
    with Server() as server:
        url = f"{server.url}/"
        if lib == "requests":
            with requests.Session() as session:
                session.mount("http://", FastpathAdapter(mptcp=False))
                resp = session.get(url, headers={"Connection": "close"}, stream=True)
                info = connection_info(resp)
                assert info is not None
                local = info.local_address  # looked at: read from the live socket
                assert resp.content == b"hello GET"
        else:
            with httpx.Client(transport=FastpathTransport(mptcp=False)) as client:
                with client.stream("GET", url, headers={"Connection": "close"}) as stream:
                    info = connection_info(stream)
                    assert info is not None
                    local = info.local_address
                    stream.read()
        peer = server.records[-1].peer  # the server saw the connection from there
    assert local is not None and local == tuple(peer)[:2]
    assert connection_info(resp if lib == "requests" else stream) is info  # same object
    assert info.local_address == local


def test_keep_alive_responses_share_one_proof_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per kept-alive response: the connection's one ConnectionInfo, no call into the proof."""
    asked: list[int] = []
    made = _proof.new_proof

    def counting(record: DialRecord, sock: socket.socket) -> ConnectionInfo:
        asked.append(1)
        return made(record, sock)

    monkeypatch.setattr(_u3c, "new_proof", counting)
    with Server() as server:
        with requests.Session() as session:
            session.mount("http://", FastpathAdapter(mptcp=False))
            resps = [session.get(f"{server.url}/") for _ in range(4)]
            infos = [connection_info(r) for r in resps]
            first = infos[0]
            assert first is not None and all(i is first for i in infos)
            assert not _info.is_read(first)
            assert asked == [1]  # once per connection, not once per response
            assert first.peer_address == (server.host, server.port)


def test_a_closed_connection_leaves_no_garbage_cycle() -> None:
    """Proof, deferred info and record are freed by reference counting, not by the GC."""
    with Server() as server:
        with requests.Session() as session:
            session.mount("http://", FastpathAdapter(mptcp=False))
            # /close answers "Connection: close": every request on a new connection, and
            # the client knows it (no reuse racing the server's FIN)
            session.get(f"{server.url}/close")  # the cookie
            gc.collect()
            gc.disable()
            try:
                for _ in range(5):
                    resp = session.get(f"{server.url}/close")
                    assert resp.content == b"bye" and connection_info(resp) is not None
                del resp
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                cyclic = [type(o).__name__ for o in gc.garbage]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
    assert cyclic == []


def test_a_live_proof_reads_the_socket() -> None:
    with Server(mptcp=True) as server:
        with httpx.Client(transport=FastpathTransport(tfo=False)) as client:
            resp = client.get(f"{server.url}/")  # kept alive: the socket is open
            info = connection_info(resp)
            assert info is not None
            assert (info.transport, info.mptcp, info.mptcp_subflows) == ("mptcp", True, 1)
            assert info.tfo is TFOStatus.DISABLED and info.local_address is not None


# -- the dialer ---------------------------------------------------------------------------


def test_a_connected_socket_runs_the_c_methods() -> None:
    with Server() as server:
        with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
            assert sock.is_pending and type(sock).recv is not socket.socket.recv
            assert _get(sock, server.host).endswith(b"hello GET")
            assert isinstance(sock, FastpathSocket) and not sock.is_pending
            for name in ("recv", "recv_into", "send", "sendall", "sendmsg"):
                assert getattr(type(sock), name) is getattr(socket.socket, name), name


def test_the_connect_keeps_its_timeout_when_the_socket_changed_it() -> None:
    with Server() as server:
        sock = _dialer.dial(server.host, server.port, options=ON, timeout=5)
        with sock:
            sock.settimeout(2.5)  # before the first write: the connect still gets 5 s
            assert _get(sock, server.host).endswith(b"hello GET")
            assert sock.gettimeout() == 2.5


def test_counts_are_applied_before_any_read() -> None:
    before = stats().connections
    with Server() as server:
        for _ in range(5):
            with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
                _get(sock, server.host)
        key = (socket.AF_INET, server.host, server.port)
        assert MEMORY.get(key).connections == 5  # waiting counts applied first
        assert stats().connections - before == 5
        assert dict(MEMORY.items())[key].syn_data_acked == 4  # the first asked for a cookie


def test_known_plain_destinations_get_plain_tcp_sockets() -> None:
    """The MPTCP fallback is paid once: then the destination memory says plain TCP."""
    with Server(mptcp=False) as server:
        protos = []
        for _ in range(3):
            with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
                _get(sock, server.host)
                protos.append(sock.proto)
    assert protos == [_linux.IPPROTO_MPTCP, socket.IPPROTO_TCP, socket.IPPROTO_TCP]


def test_ip_literals_resolve_without_a_resolver_and_names_still_do() -> None:
    first = _addresses.resolve("127.0.0.1", 80)
    assert first == [(socket.AF_INET, ("127.0.0.1", 80))] and _addresses.resolve("127.0.0.1", 80)
    assert _addresses.resolve("[::1]", 80)[0][1][:2] == ("::1", 80)
    assert _addresses.literal_addresses("localhost", 80) is None  # a name: the resolver's
    assert _addresses.resolve("localhost", 80)


def test_async_backend_resolves_literals_inline() -> None:
    from .._httpx_util import run_async
    from .._stack import AsyncFastpathTransport

    async def main(url: str) -> Any:
        async with httpx.AsyncClient(transport=AsyncFastpathTransport()) as client:
            return (await client.get(url)).content

    with Server() as server:
        assert run_async("asyncio", main, f"{server.url}/") == b"hello GET"


def test_waiting_counts_stay_bounded_whoever_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory's and the counters' queues are each bounded, also when only one of them
    is read in between (an update empties the memory's, stats() the counters')."""
    from http_fastpath._core import record as _record
    from http_fastpath._core.stats import COUNTERS

    monkeypatch.setattr(_record, "_LATER_MAX", 3)
    before = stats().connections
    with Server() as server:
        key = (socket.AF_INET, server.host, server.port)
        for n in range(12):
            with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
                _get(sock, server.host)
            if n < 6:
                MEMORY.get(key)  # empties the memory's queue only
            else:
                stats()  # empties the counters' queue only
            assert MEMORY.pending_counts() <= 4 and COUNTERS.pending_counts() <= 4
        assert MEMORY.get(key).connections == 12
    assert stats().connections - before == 12
