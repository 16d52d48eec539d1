"""FastpathPoolManager / FastpathProxyManager for urllib3 users, against real servers."""

from __future__ import annotations

import hashlib
import os
import ssl
from typing import Any

import pytest
import trustme
import urllib3
from urllib3.exceptions import MaxRetryError, SSLError
from urllib3.util import ssl_ as u3_ssl

from http_fastpath import (
    FastpathOptions,
    FastpathPoolManager,
    FastpathProxyManager,
    TFOStatus,
    connection_info,
)
from http_fastpath._integrations import urllib3 as fp_urllib3
from http_fastpath._integrations import urllib3_tls
from http_fastpath.netlab import Proxy, Server, next_loopback

from .._observe import fd_count

pytestmark = pytest.mark.netns


def _fresh_gets(pm: urllib3.PoolManager, url: str, n: int) -> list[Any]:
    out = []
    for _ in range(n):
        resp = pm.request("GET", url)
        assert resp.status == 200
        out.append(resp)
        pm.clear()  # next request: a fresh connection
    return out


def test_pool_manager_https_syn_data_and_proof(https_server: Server, ca_file: str) -> None:
    pm = FastpathPoolManager(ca_certs=ca_file, mptcp=False)
    resps = _fresh_gets(pm, https_server.url + "/bytes?n=7", 5)
    assert all(r.data == b"x" * 7 for r in resps)
    infos = [connection_info(r) for r in resps]
    assert [i.tfo_used for i in infos if i] == [r.syn_data for r in https_server.records]
    assert [r.syn_data for r in https_server.records] == [False, True, True, True, True]


def test_https_connections_end_in_the_same_stock_methods() -> None:
    """Our overrides call HTTPConnection's send/getresponse/close directly (no super()):
    right only while urllib3's HTTPSConnection defines none of them (checked on every
    urllib3 the matrix runs)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection

    for name in ("send", "getresponse", "close"):
        assert getattr(HTTPSConnection, name) is getattr(HTTPConnection, name), name
        ours = getattr(fp_urllib3.FastpathHTTPSConnection, name)
        assert ours is getattr(fp_urllib3.FastpathHTTPConnection, name), name


def test_managers_install_pools_without_touching_urllib3() -> None:
    module_dict = urllib3.poolmanager.pool_classes_by_scheme
    before = dict(module_dict)
    pm = FastpathPoolManager(options=FastpathOptions(mptcp=False))
    stock = urllib3.PoolManager()
    assert pm.pool_classes_by_scheme is not module_dict
    assert stock.pool_classes_by_scheme is module_dict and module_dict == before
    pool = pm.connection_from_url("http://127.0.0.1:9/")
    assert isinstance(pool, fp_urllib3.FastpathHTTPConnectionPool)
    assert pool.conn_kw["fastpath_options"] == FastpathOptions(mptcp=False)
    assert "fastpath_options" not in pm.connection_pool_kw  # never part of the pool key
    assert type(stock.connection_from_url("http://127.0.0.1:9/")) is urllib3.HTTPConnectionPool


def test_proxy_manager_forward_and_tunnel(https_server: Server, ca_file: str) -> None:
    with Server() as plain, Proxy() as proxy:
        for _ in range(2):
            pm = FastpathProxyManager(proxy.url, ca_certs=ca_file, mptcp=False)
            assert pm.request("GET", plain.url + "/bytes?n=2").data == b"xx"
            resp = pm.request("GET", https_server.url + "/bytes?n=3")
            assert resp.data == b"xxx"
            info = connection_info(resp)
            assert info is not None and info.peer_address == (proxy.host, proxy.port)
            pm.clear()
        records = proxy.records
    assert [r.syn_data for r in records] == [False, True, True, True]
    assert records[1].requests == [f"CONNECT {https_server.host}:{https_server.port}"]


@pytest.mark.parametrize("manager", [urllib3.PoolManager, FastpathPoolManager])
def test_fingerprint_and_hostname_checks_as_stock(
    manager: Any, ca: trustme.CA, ca_file: str
) -> None:
    host = next_loopback()
    leaf = ca.issue_cert(host)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    good = hashlib.sha256(der).hexdigest()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    with Server(tls=ctx, host=host) as server:
        for _ in range(2):  # the second connection carries its ClientHello in the SYN
            pm = manager(ca_certs=ca_file, assert_fingerprint=good, retries=False)
            assert pm.request("GET", server.url).status == 200
            bad = manager(ca_certs=ca_file, assert_fingerprint="00" * 32, retries=False)
            with pytest.raises(SSLError, match="[Ff]ingerprint"):
                bad.request("GET", server.url)
            wrong = manager(ca_certs=ca_file, assert_hostname="other.test", retries=False)
            with pytest.raises(SSLError, match="other.test"):
                wrong.request("GET", server.url)
            for m in (pm, bad, wrong):
                m.clear()


def test_h2_alpn_completes_the_connect_first(
    https_server: Server, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # urllib3's experimental HTTP/2 needs SSLContext.wrap_socket: no pending socket there.
    monkeypatch.setattr(u3_ssl, "ALPN_PROTOCOLS", ["h2", "http/1.1"])
    pm = FastpathPoolManager(ca_certs=ca_file, mptcp=False)
    infos = [connection_info(r) for r in _fresh_gets(pm, https_server.url, 3)]
    assert all(i is not None and i.tfo is TFOStatus.NOT_ATTEMPTED for i in infos)
    assert not any(r.syn_data for r in https_server.records)


def test_falls_back_to_stock_tls_if_urllib3_changes(
    https_server: Server, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib3_tls, "_WRAP_AND_VERIFY", None)
    assert not urllib3_tls.fast_tls_supported(None)
    pm = FastpathPoolManager(ca_certs=ca_file)
    assert all(r.data == b"hello GET" for r in _fresh_gets(pm, https_server.url, 2))


def test_tls_failures_leak_no_fd(https_server: Server) -> None:
    pm = FastpathPoolManager(retries=False)  # system CAs: the trustme cert is refused
    before = fd_count()
    for _ in range(10):
        with pytest.raises(SSLError):
            pm.request("GET", https_server.url)
    assert fd_count() <= before + 1


def test_refused_raises_max_retry_error_like_stock() -> None:
    with Server() as gone:
        host, port = gone.host, gone.port
    for manager in (urllib3.PoolManager(), FastpathPoolManager()):
        with pytest.raises(MaxRetryError) as err:
            manager.request("GET", f"http://{host}:{port}/", retries=1)
        assert type(err.value.reason).__name__ == "NewConnectionError"


def test_https_keepalive_reuses_one_lean_transport(https_server: Server, ca_file: str) -> None:
    pool = FastpathPoolManager(ca_certs=ca_file).connection_from_url(https_server.url)
    for n in (5, 70000, 3):
        assert pool.request("GET", f"/bytes?n={n}").data == b"x" * n
    conn = pool._get_conn()
    assert isinstance(conn, urllib3.connection.HTTPSConnection)
    assert isinstance(conn.sock, urllib3_tls._LeanSSLTransport)
    pool._put_conn(conn)
    assert len(https_server.records) == 1 and https_server.records[0].requests == ["GET"] * 3


@pytest.mark.parametrize("read_size", [urllib3_tls.READ_SIZE, 1000])
def test_lean_transport_large_bodies_both_ways(
    https_server: Server, ca_file: str, monkeypatch: pytest.MonkeyPatch, read_size: int
) -> None:
    """1 MiB each way over one kept-alive connection, read READ_SIZE bytes at a time and
    1000 at a time (every 16 KiB record cut into pieces: the read waits for the rest)."""
    monkeypatch.setattr(urllib3_tls, "READ_SIZE", read_size)
    pool = FastpathPoolManager(ca_certs=ca_file).connection_from_url(https_server.url)
    body = os.urandom(1 << 20)
    assert pool.request("POST", "/echo", body=body).data == body
    assert pool.request("GET", f"/bytes?n={1 << 20}").data == b"x" * (1 << 20)
    assert pool.request("GET", "/bytes?n=5").data == b"x" * 5
    conn = pool._get_conn()
    assert isinstance(conn, urllib3.connection.HTTPSConnection)
    assert isinstance(conn.sock, urllib3_tls._LeanSSLTransport)
    view = conn.sock._read_view
    assert view is not None and len(view) == read_size
    pool._put_conn(conn)
    assert len(https_server.records) == 1  # one connection, kept alive throughout
