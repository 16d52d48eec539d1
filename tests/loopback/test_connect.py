"""The public one-connection API: ``connect()`` and ``milestones()``, checked from the
server kernel's side (``Server.records``)."""

from __future__ import annotations

import socket
import ssl

import pytest
import trustme

import http_fastpath
from http_fastpath import DialError, FastpathOptions, TFOStatus, connect, milestones
from http_fastpath.netlab import Server

from .._servers import https

pytestmark = pytest.mark.netns

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def _status_line(conn: http_fastpath.FastpathConnection) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "server closed early"
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_the_request_rides_in_the_syn_once_a_cookie_is_cached() -> None:
    with Server() as server:
        infos = []
        for _ in range(2):
            with connect(server.host, server.port, timeout=5) as conn:
                assert conn.ssl_object is None
                conn.sendall(REQUEST)
                assert _status_line(conn) == b"HTTP/1.1 200 OK"
                infos.append(conn.connection_info())
        records = server.records
    assert [i.tfo for i in infos] == [TFOStatus.COOKIE_REQUESTED, TFOStatus.SYN_DATA_ACKED]
    assert infos[1].syn_data_bytes == len(REQUEST)
    assert [r.syn_data for r in records] == [False, True]


def test_tls_the_client_hello_rides_in_the_syn(ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    client_tls.set_alpn_protocols(["h2", "http/1.1"])
    with https(ca, "localhost") as server:
        for _ in range(2):
            conn = connect(
                server.host,
                server.port,
                timeout=5,
                ssl_context=client_tls,
                server_hostname="localhost",
            )
            with conn:
                tls = conn.ssl_object
                assert tls is not None and tls.version() is not None  # handshake done
                conn.sendall(REQUEST)
                assert _status_line(conn) == b"HTTP/1.1 200 OK"
                info = conn.connection_info()
        records = server.records
    assert info.tfo is TFOStatus.SYN_DATA_ACKED
    assert [r.syn_data for r in records] == [False, True]


def test_tls_failure_closes_the_socket(ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    with https(ca, "localhost") as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(server.host, server.port, timeout=5, ssl_context=client_tls)  # no SAN


def test_mptcp_and_options() -> None:
    with Server(mptcp=True) as server:
        options = FastpathOptions(tfo=False)
        with connect(server.host, server.port, options=options, timeout=5) as conn:
            conn.sendall(REQUEST)
            _status_line(conn)
            info = conn.connection_info()
        records = server.records
    assert info.tfo is TFOStatus.DISABLED
    assert info.transport == "mptcp" and records[0].is_mptcp


def test_errors_are_the_dialers() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(DialError):
        conn = connect("127.0.0.1", port, options=FastpathOptions(tfo=False), timeout=5)
        conn.close()


def test_milestones_of_one_connection(ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    with https(ca, "localhost") as server, milestones() as marks:
        conn = connect(
            server.host, server.port, timeout=5, ssl_context=client_tls, server_hostname="localhost"
        )
        conn.close()
    assert list(marks) == ["dns_start", "dns_done", "connect_done", "tls_done"]
    assert list(marks.values()) == sorted(marks.values())
