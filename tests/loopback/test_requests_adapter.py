"""FastpathAdapter against real servers in the test namespace, compared with stock requests."""

from __future__ import annotations

import pickle
import socket
import ssl
import threading
import types
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning, NewConnectionError
from urllib3.util.retry import Retry

from http_fastpath import (
    FastpathAdapter,
    FastpathError,
    FastpathOptions,
    TFOStatus,
    connection_info,
)
from http_fastpath._core.dialer import dial
from http_fastpath._integrations.urllib3 import (
    FastpathHTTPSConnectionPool,
    FastpathProxyManager,
    urllib3_future_problem,
)
from http_fastpath.netlab import Proxy, Server, next_loopback

from .._observe import active_opens, connect_attempts, fd_count, settle
from .._servers import https, server_tls

pytestmark = pytest.mark.netns

Factory = Callable[..., requests.Session]


def _fast(**kw: Any) -> requests.Session:
    session = requests.Session()
    adapter = FastpathAdapter(**kw)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _stock(**kw: Any) -> requests.Session:
    session = requests.Session()
    if kw:
        adapter = HTTPAdapter(**kw)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


BOTH = pytest.mark.parametrize("make", [_stock, _fast], ids=["stock", "fastpath"])


# -- the fast path, proven from the server's kernel ------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_twenty_fresh_connections_carry_syn_data(
    scheme: str, http_server: Server, https_server: Server, ca_file: str
) -> None:
    server = https_server if scheme == "https" else http_server
    infos = []
    for _ in range(20):
        with _fast(mptcp=False) as session:
            resp = session.get(server.url + "/bytes?n=100", verify=ca_file)
            assert resp.status_code == 200 and resp.content == b"x" * 100
            info = connection_info(resp)
            assert info is not None
            infos.append(info)
    records = server.records
    assert len(records) == 20
    assert sum(r.syn_data for r in records) >= 19
    assert [i.tfo_used for i in infos] == [r.syn_data for r in records]
    assert infos[0].tfo is TFOStatus.COOKIE_REQUESTED
    assert all(i.early_data_safe for i in infos[1:])
    assert infos[-1].peer_address == (server.host, server.port)


def test_connection_info_survives_body_read_and_pool_return(http_server: Server) -> None:
    with _fast() as session:
        first = session.get(http_server.url + "/bytes?n=10")
        second = session.get(http_server.url + "/bytes?n=10")  # same pooled connection
        assert first.content and second.content
        info1, info2 = connection_info(first), connection_info(second)
    assert info1 is not None and info1 == info2
    assert len(http_server.records) == 1
    assert connection_info(requests.get(http_server.url)) is None  # stock: no proof


def test_mptcp_listener_and_plain_listener(ca: trustme.CA, ca_file: str) -> None:
    with https(ca, mptcp=True) as mp, https(ca) as plain, _fast() as session:
        resp = session.get(mp.url, verify=ca_file)
        info = connection_info(resp)
        assert resp.text == "hello GET"
        assert info is not None and info.transport == "mptcp" and info.mptcp is True
        assert mp.records[0].is_mptcp is True

        resp = session.get(plain.url, verify=ca_file)
        info = connection_info(resp)
        assert resp.text == "hello GET"
        assert info is not None and info.mptcp is False
        assert (info.transport, info.socket_protocol) == ("tcp", "mptcp")
        assert plain.records[0].is_mptcp is False


def test_tfo_policy_always_and_pickle_round_trip(http_server: Server) -> None:
    session = _fast(mptcp=False, tfo_policy="always")
    session.post(http_server.url + "/echo", data=b"a").close()
    session.close()
    clone: requests.Session = pickle.loads(pickle.dumps(session))
    adapter = clone.get_adapter(http_server.url)
    assert isinstance(adapter, FastpathAdapter)
    assert adapter.fastpath_options == FastpathOptions(mptcp=False, tfo_policy="always")
    with clone:
        resp = clone.post(http_server.url + "/echo", data=b"b")
    assert resp.content == b"b"
    assert connection_info(resp) is not None
    # "always": the POST after the cookie rides in the SYN (proves the options came back).
    assert [r.syn_data for r in http_server.records] == [False, True]


# -- proxies -----------------------------------------------------------------------------


def test_http_proxy_forward_and_connect_carry_syn_data(
    http_server: Server, https_server: Server, proxy: Proxy, ca_file: str
) -> None:
    proxies = {"http": proxy.url, "https": proxy.url}
    for _ in range(3):
        for server in (http_server, https_server):
            with _fast(mptcp=False) as session:
                resp = session.get(server.url + "/bytes?n=5", proxies=proxies, verify=ca_file)
                assert resp.content == b"xxxxx"
                info = connection_info(resp)
                assert info is not None
                assert info.peer_address == (proxy.host, proxy.port)
                adapter = session.get_adapter(server.url)
                assert isinstance(adapter, FastpathAdapter)
                assert isinstance(adapter.proxy_manager[proxy.url], FastpathProxyManager)
    records = proxy.records
    assert len(records) == 6
    assert not records[0].syn_data and all(r.syn_data for r in records[1:])
    assert records[0].requests == [f"GET {http_server.url}/bytes?n=5"]
    assert records[1].requests == [f"CONNECT {https_server.host}:{https_server.port}"]
    assert len(http_server.records) == 3 and len(https_server.records) == 3


@BOTH
def test_socks_proxy_behaves_as_stock(make: Factory, http_server: Server) -> None:
    """Without PySocks both arms end in requests' own error (ours reaches it through stock's
    ``proxy_manager_for``; the next test checks that branch itself)."""
    with make() as session, pytest.raises(requests.exceptions.InvalidSchema) as err:
        session.get(http_server.url, proxies={"http": "socks5://127.0.0.1:9"})
    assert "SOCKS" in str(err.value)


def test_socks_proxy_goes_to_stocks_manager_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``proxy_manager_for``: stock's manager for SOCKS (logged once per process), ours else."""
    from http_fastpath._core import log as fp_log

    stock_made: list[str] = []

    def stock(self: HTTPAdapter, proxy: str, **kw: Any) -> urllib3.PoolManager:
        stock_made.append(proxy)  # what requests builds here needs PySocks: stand in for it
        return urllib3.PoolManager()

    monkeypatch.setattr(HTTPAdapter, "proxy_manager_for", stock)
    monkeypatch.setattr(fp_log, "_seen", set())
    adapter = FastpathAdapter()
    with caplog.at_level("INFO", logger="http_fastpath.dial"):
        for proxy in ("socks5://127.0.0.1:9", "SOCKS5H://127.0.0.2:9"):
            assert type(adapter.proxy_manager_for(proxy)) is urllib3.PoolManager
        assert isinstance(adapter.proxy_manager_for("http://127.0.0.3:9"), FastpathProxyManager)
    assert stock_made == ["socks5://127.0.0.1:9", "SOCKS5H://127.0.0.2:9"]
    lines = [r.getMessage() for r in caplog.records if "SOCKS" in r.getMessage()]
    assert len(lines) == 1 and "stock SOCKS connections" in lines[0], lines
    adapter.close()


# -- everything requests does, as stock --------------------------------------------------


@BOTH
def test_streaming_download_and_chunked_upload(
    make: Factory, https_server: Server, ca_file: str
) -> None:
    with make() as session:
        with session.get(https_server.url + "/bytes?n=300000", stream=True, verify=ca_file) as r:
            sizes = [len(c) for c in r.iter_content(65536)]
        assert sum(sizes) == 300000 and len(sizes) > 1

        def body() -> Iterator[bytes]:
            for i in range(50):
                yield b"%03d," % i

        resp = session.post(https_server.url + "/echo", data=body(), verify=ca_file)
        assert resp.content == b"".join(b"%03d," % i for i in range(50))
        assert resp.request.headers["Transfer-Encoding"] == "chunked"


@BOTH
def test_redirect_across_hosts(
    make: Factory, http_server: Server, https_server: Server, ca_file: str
) -> None:
    target = https_server.url + "/bytes?n=3"
    with make() as session:
        resp = session.get(
            http_server.url + "/redirect?to=" + urllib.parse.quote(target, safe=""),
            verify=ca_file,
        )
    assert resp.status_code == 200 and resp.content == b"xxx"
    assert resp.url == target and [h.status_code for h in resp.history] == [302]
    assert len(http_server.records) == 1 and len(https_server.records) == 1


@BOTH
def test_verify_false_warns_like_stock(make: Factory, https_server: Server) -> None:
    with make() as session, pytest.warns(InsecureRequestWarning) as caught:
        assert session.get(https_server.url, verify=False).text == "hello GET"
    assert [w.category for w in caught] == [InsecureRequestWarning]


@BOTH
def test_verify_path_and_tls_failures(
    make: Factory, https_server: Server, ca_file: str, ca: trustme.CA
) -> None:
    with make() as session:
        for _ in range(2):  # the second connection has a cookie: ClientHello in the SYN
            assert session.get(https_server.url, verify=ca_file).text == "hello GET"
            session.close()
        with pytest.raises(requests.exceptions.SSLError):
            session.get(https_server.url, verify=True)  # trustme CA is not a system CA
        other = trustme.CA()
        path = Path(ca_file).with_name("other.pem")
        other.cert_pem.write_to_path(str(path))
        with pytest.raises(requests.exceptions.SSLError):
            session.get(https_server.url, verify=str(path))
    with https(ca, "wrong.test") as wrong, make() as session:
        with pytest.raises(requests.exceptions.SSLError, match="match|mismatch"):
            session.get(wrong.url, verify=ca_file)


@BOTH
def test_client_certificate(make: Factory, ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    host = next_loopback()
    ctx = server_tls(ca, host)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(ctx)
    client = ca.issue_cert("client@example.test")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    with Server(tls=ctx, host=host) as server, make() as session:
        for _ in range(2):
            resp = session.get(server.url, verify=ca_file, cert=(str(cert), str(key)))
            assert resp.text == "hello GET"
            session.close()


# -- errors: identical to stock, also with a cached cookie ---------------------------------


def _dead_address_with_cookie() -> tuple[str, int]:
    with Server() as server, _fast(mptcp=False) as session:
        for _ in range(2):
            session.get(server.url).close()
            session.close()
        assert server.records[1].syn_data  # the TFO cookie is cached for this address
        return server.host, server.port


@BOTH
def test_refused_is_connection_error(make: Factory) -> None:
    host, port = _dead_address_with_cookie()
    with make() as session, pytest.raises(requests.exceptions.ConnectionError) as err:
        session.get(f"http://{host}:{port}/")
    assert not isinstance(err.value, requests.exceptions.ConnectTimeout)
    assert isinstance(err.value.args[0].reason, NewConnectionError)


@BOTH
def test_retry_connect_n_counts_attempts_as_stock(make: Factory) -> None:
    host, port = _dead_address_with_cookie()
    retry = Retry(total=None, connect=3, read=0, backoff_factor=0)
    with make(max_retries=retry) as session:
        before = active_opens()
        with pytest.raises(requests.exceptions.ConnectionError) as err:
            session.get(f"http://{host}:{port}/")
        attempts = active_opens() - before
    # The first try and exactly three retries; ours adds one plain SYN (connect_attempts).
    assert attempts == connect_attempts(3, fast=make is _fast)
    assert "Max retries exceeded" in str(err.value)
    assert isinstance(err.value.args[0].reason, NewConnectionError)


@BOTH
def test_dead_proxy_is_proxy_error(make: Factory, http_server: Server) -> None:
    host, port = _dead_address_with_cookie()
    with make() as session, pytest.raises(requests.exceptions.ProxyError):
        session.get(http_server.url, proxies={"http": f"http://{host}:{port}"})


@BOTH
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_read_timeout_is_read_timeout(
    make: Factory, scheme: str, silent_listener: tuple[str, int]
) -> None:
    # https: the TLS handshake is never answered, which stock reports as a read timeout too.
    host, port = silent_listener
    with make() as session:
        for _ in range(2):  # the second one has a cookie: the first flight rides in the SYN
            with pytest.raises(requests.exceptions.ReadTimeout):
                session.get(f"{scheme}://{host}:{port}/", timeout=(0.5, 0.2), verify=False)
            session.close()


@BOTH
def test_ipv6_literal(make: Factory) -> None:
    with Server(family=socket.AF_INET6) as server, make() as session:
        assert server.url.startswith("http://[::1]:")
        for _ in range(2):
            assert session.get(server.url + "/bytes?n=3").content == b"xxx"
            session.close()


@BOTH
def test_connect_timeout_is_connect_timeout(make: Factory, sysctl: Any) -> None:
    host = next_loopback()
    sysctl("net.ipv4.tcp_syn_retries", "1")
    with socket.socket() as listener:
        listener.setsockopt(socket.IPPROTO_TCP, 23, 16)  # TCP_FASTOPEN: hand out cookies
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        # The primer gets a TFO cookie for this address and takes the only queue slot.
        primer = dial(host, port, options=FastpathOptions(mptcp=False), timeout=2)
        primer.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert primer.connection_info().tfo is TFOStatus.COOKIE_REQUESTED
        fillers: list[socket.socket] = [primer]
        for _ in range(3):  # the accept queue is full: further SYNs are dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            fillers.append(s)
        try:
            for scheme in ("http", "https"):
                with make() as session, pytest.raises(requests.exceptions.ConnectTimeout):
                    session.get(f"{scheme}://{host}:{port}/", timeout=(0.3, 1), verify=False)
        finally:
            for s in fillers:
                s.close()


# -- load, fds, kernel switches --------------------------------------------------------------


def test_threads_share_one_session_and_fds_return_to_baseline(http_server: Server) -> None:
    baseline = fd_count()
    session = _fast(pool_maxsize=8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(200):
                resp = session.get(f"{http_server.url}/bytes?n={i % 7 + 1}")
                assert resp.content == b"x" * (i % 7 + 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert sum(len(r.requests) for r in http_server.records) == 1600
    session.close()
    assert settle(fd_count, baseline, 5) <= baseline  # the server closes its ends on EOF


# -- construction ------------------------------------------------------------------------


def test_pool_keywords_reach_requests() -> None:
    # The options themselves are checked, for every constructor, in tests/unit/test_options.py.
    adapter = FastpathAdapter(pool_connections=3, pool_maxsize=4, max_retries=2)
    assert adapter.max_retries.total == 2 and adapter._pool_maxsize == 4
    assert adapter.fastpath_options == FastpathOptions()


def test_get_connection_with_tls_context_uses_fastpath_pools(ca_file: str) -> None:
    adapter = FastpathAdapter()
    request = requests.Request("GET", "https://127.0.0.1:4443/").prepare()
    pool = adapter.get_connection_with_tls_context(request, verify=ca_file)
    assert isinstance(pool, FastpathHTTPSConnectionPool)
    assert pool.ca_certs == ca_file
    assert urllib3.poolmanager.pool_classes_by_scheme["https"] is urllib3.HTTPSConnectionPool


def test_urllib3_future_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert urllib3_future_problem() is None  # the real, installed urllib3 2.x
    fake = types.SimpleNamespace(__version__="2.25.904")
    assert "urllib3-future" in (urllib3_future_problem(fake) or "")
    assert urllib3_future_problem(types.SimpleNamespace(__version__="2.8.0")) is None
    monkeypatch.setattr(urllib3, "__version__", "2.19.903")
    with pytest.raises(FastpathError, match="urllib3-future.*pip uninstall"):
        FastpathAdapter()
    monkeypatch.setattr(urllib3, "__version__", "2.8.0")
    monkeypatch.setattr(urllib3, "HttpVersion", object(), raising=False)
    with pytest.raises(FastpathError, match="niquests"):
        FastpathAdapter()


@BOTH
def test_https_proxy_as_stock(
    make: Factory, ca: trustme.CA, ca_file: str, http_server: Server, https_server: Server
) -> None:
    # TLS to the proxy goes through SSLContext.wrap_socket: the fastpath connects first.
    host = next_loopback()
    with Proxy(tls=server_tls(ca, host), host=host) as proxy, make() as session:
        proxies = {"http": proxy.url, "https": proxy.url}
        for _ in range(2):
            for server in (http_server, https_server):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    resp = session.get(server.url + "/bytes?n=4", proxies=proxies, verify=ca_file)
                assert resp.content == b"xxxx"
                # urllib3 warns for a plain-http origin behind an https proxy (stock behaviour)
                expected = [InsecureRequestWarning] if server is http_server else []
                assert [w.category for w in caught] == expected
            session.close()
        records = proxy.records
    assert len(records) == 4 and not any(r.syn_data for r in records)
    assert records[1].requests == [f"CONNECT {https_server.host}:{https_server.port}"]
