"""Parity with stock at the host libraries' extension points (one home for the contract).

Each test runs the same code through stock requests/httpx/httpcore and through ours
(explicit adapters, and where it matters a cached TFO cookie) and expects the same outcome.
scripts/test runs this file on httpx and again on httpx2 (tests/_stack.py), and
scripts/test-matrix at the lowest and latest versions the extras allow.

Here: pyOpenSSL injected; truststore contexts; error messages; ``resp.connection`` and
its socket; ``ssl_minimum_version``, ``server_hostname``, ``assert_hostname``;
``REQUESTS_CA_BUNDLE``, hooks, ``raw``; the ``trace`` extension and ``get_extra_info`` at
every point of a connection's life; ``connection_info`` on httpcore responses; a client's
``proxy=``; ``sni_hostname``, ``local_address``, ``event_hooks``, ``MockTransport`` mounts.

Elsewhere, also against stock: ``assert_fingerprint`` (test_urllib3), client certificates,
``verify=`` paths, SOCKS, ``Retry(connect=N)``, timeouts, ``get_connection_with_tls_context``
(test_requests_adapter), httpx ``retries=``, timeouts and exception classes
(test_httpx_errors), HTTP/2 streams (test_httpx_http2), proxies and ``NO_PROXY``
(test_httpx_client, test_reliability_security), the whole fault matrix
(test_reliability_faults).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests
import trustme

from http_fastpath.netlab import Server, next_loopback

from .._clients import IMPLS, run
from .._servers import for_scheme, https, server_tls

pytestmark = pytest.mark.netns


@pytest.fixture
def pyopenssl() -> Iterator[None]:
    from urllib3.contrib import pyopenssl

    pyopenssl.inject_into_urllib3()
    try:
        yield
    finally:
        pyopenssl.extract_from_urllib3()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("impl", IMPLS)
def test_urllib3_with_pyopenssl_injected(
    pyopenssl: None, ca: trustme.CA, ca_file: str, family: int, impl: str
) -> None:
    """pyOpenSSL's context has no wrap_bio: connect first, then its own wrap_socket."""
    host = next_loopback() if family == socket.AF_INET else "::1"
    with https(ca, host=host, family=family) as server:
        url = server.url + "/"
        outcomes = [run("requests", impl, [("GET", url)], verify=ca_file)[0] for _ in range(3)]
        with https(ca, "other.test", host=host, family=family) as wrong:
            (rejected,) = run("requests", impl, [("GET", wrong.url + "/")], verify=ca_file)
    assert [o.status for o in outcomes] == [200, 200, 200], [o.error for o in outcomes]
    assert isinstance(rejected.error, requests.exceptions.SSLError), repr(rejected.error)
    if impl == "fast":
        for outcome in outcomes:
            assert outcome.info is not None and outcome.info.syn_data_bytes == 0
            assert any("wrap_bio" in f for f in outcome.info.fallbacks)


@pytest.mark.parametrize("lib", ["sync", "asyncio"])
@pytest.mark.parametrize("impl", IMPLS)
def test_trace_hook_sees_the_peer_at_connect_complete(lib: str, impl: str) -> None:
    """httpx's own CLI logs ``server_addr`` from ``connection.connect_tcp.complete``."""
    import asyncio

    from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

    seen: list[tuple[str, tuple[str, int], tuple[str, int]]] = []

    def record(name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            stream = info["return_value"]
            seen.append(
                (name, stream.get_extra_info("server_addr"), stream.get_extra_info("client_addr"))
            )

    async def arecord(name: str, info: dict[str, Any]) -> None:
        record(name, info)

    with Server() as server:
        url = server.url + "/"
        for _ in range(3):  # the 2nd and 3rd have a cached TFO cookie: a deferred connect
            if lib == "sync":
                transport = FastpathTransport() if impl == "fast" else httpx.HTTPTransport()
                with httpx.Client(transport=transport) as client:
                    assert client.get(url, extensions={"trace": record}).status_code == 200
            else:

                async def main() -> None:
                    t = AsyncFastpathTransport() if impl == "fast" else httpx.AsyncHTTPTransport()
                    async with httpx.AsyncClient(transport=t) as client:
                        resp = await client.get(url, extensions={"trace": arecord})
                        assert resp.status_code == 200

                asyncio.run(main())
    assert len(seen) == 3
    for _, server_addr, client_addr in seen:
        assert server_addr == (server.host, server.port)
        host, port = client_addr
        assert isinstance(host, str) and isinstance(port, int)


def _normalized(exc: BaseException | None) -> str:
    """The exception's text without object addresses (``<... object at 0x7f...>``)."""
    import re

    return re.sub(r" at 0x[0-9a-f]+", " at 0x?", str(exc))


@pytest.mark.parametrize("cookie", ["no-cookie", "cached-cookie"])
def test_requests_error_messages_read_as_stock(cookie: str) -> None:
    """urllib3 names the pool and connection class in its messages; ours read the same."""
    with Server() as server:
        url = server.url + "/"
        if cookie == "cached-cookie":  # the next connect is deferred to the first write
            assert run("requests", "fast", [("GET", url)])[0].status == 200
    # The server is gone: its port refuses.
    (stock,) = run("requests", "stock", [("GET", url)])
    (fast,) = run("requests", "fast", [("GET", url)])
    assert type(fast.error) is type(stock.error) is requests.exceptions.ConnectionError
    assert _normalized(fast.error) == _normalized(stock.error)
    assert "HTTPConnectionPool(host=" in str(fast.error)


def test_connection_info_of_a_direct_httpcore_response() -> None:
    """httpcore with our backend: the response's network_stream carries the proof."""
    from http_fastpath import connection_info

    from .._stack import FastpathBackend, httpcore

    with Server() as server:
        url = server.url + "/"
        with httpcore.ConnectionPool(network_backend=FastpathBackend()) as pool:
            infos = []
            for _ in range(2):  # the second has a cached cookie: data in the SYN
                pool.request("GET", url, headers=[(b"Connection", b"close")])
                resp = pool.request("GET", url)
                infos.append(connection_info(resp))
        with httpcore.ConnectionPool() as stock_pool:
            assert connection_info(stock_pool.request("GET", url)) is None
    assert all(info is not None for info in infos), infos
    assert infos[-1] is not None and infos[-1].syn_data_bytes > 0
    assert server.records[-2].syn_data  # the kernel of the server saw data in the SYN


@pytest.mark.parametrize("impl", IMPLS)
def test_truststore_context_verifies_as_stock(ca: trustme.CA, impl: str) -> None:
    """httpx2's default store on macOS/Windows: truststore's context, verifying in its own
    SSLObject.do_handshake. Over memory BIOs that check still runs, so the ClientHello may
    ride in the SYN; a wrong name is still refused."""
    truststore = pytest.importorskip("truststore", reason="truststore is not installed")

    from .._stack import FastpathTransport, httpx

    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)

    def transport() -> httpx.BaseTransport:
        return FastpathTransport(verify=ctx) if impl == "fast" else httpx.HTTPTransport(verify=ctx)

    with https(ca) as good:
        statuses = []
        for _ in range(3):  # a fresh connection each time; the 2nd and 3rd have a TFO cookie
            with httpx.Client(transport=transport()) as client:
                statuses.append(client.get(good.url + "/").status_code)
        records = good.records
    with https(ca, "other.test", host=good.host) as wrong:
        with httpx.Client(transport=transport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|hostname"):
                client.get(wrong.url + "/")
    assert statuses == [200, 200, 200]
    syn_data = [r.syn_data for r in records]
    assert syn_data == ([False, True, True] if impl == "fast" else [False, False, False])


@pytest.mark.parametrize("lib", ["sync", "asyncio"])
def test_client_proxy_argument_keeps_the_fastpath(lib: str) -> None:
    """``Client(transport=<ours>, proxy=URL)``: the client mounts its own proxy transport;
    with ours as its transport the proxy route is ours too (same options), routed as stock."""
    import asyncio

    from http_fastpath import FastpathOptions, connection_info
    from http_fastpath.netlab import Proxy

    from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

    options = FastpathOptions(mptcp=False)
    responses = []
    route: object
    with Server() as server, Proxy() as proxy:
        url = server.url + "/"
        for _ in range(3):  # fresh clients: the 2nd and 3rd connect with a TFO cookie
            if lib == "sync":
                transport = FastpathTransport(options=options)
                with httpx.Client(transport=transport, proxy=proxy.url) as client:
                    responses.append(client.get(url))
                    (route,) = [t for t in client._mounts.values() if t is not None]
            else:

                async def main() -> tuple[httpx.Response, object]:
                    transport = AsyncFastpathTransport(options=options)
                    async with httpx.AsyncClient(transport=transport, proxy=proxy.url) as client:
                        resp = await client.get(url)
                        return resp, next(t for t in client._mounts.values() if t is not None)

                resp, route = asyncio.run(main())
                responses.append(resp)
            assert route.options is options  # type: ignore[attr-defined]
        # A stock transport next to the proxy argument keeps stock's route.
        with httpx.Client(transport=httpx.HTTPTransport(), proxy=proxy.url) as client:
            assert client.get(url).status_code == 200
            assert all(type(t) is httpx.HTTPTransport for t in client._mounts.values())
        records = proxy.records
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.requests for r in records] == [[f"GET {url}"]] * 4  # all through the proxy
    assert [r.syn_data for r in records] == [False, True, True, False]
    info = connection_info(responses[-1])
    assert info is not None and info.peer_address == (proxy.host, proxy.port)


def _extras(stream: Any) -> dict[str, object]:
    """What code reads of a network stream, in comparable form."""
    sock = stream.get_extra_info("socket")
    ssl_object = stream.get_extra_info("ssl_object")
    client_addr = stream.get_extra_info("client_addr")
    return {
        "server_addr": stream.get_extra_info("server_addr"),
        "client_addr": (type(client_addr[0]), type(client_addr[1])),
        # asyncio's stock gives its TransportSocket, ours a socket.socket: same calls work
        "socket": all(hasattr(sock, m) for m in ("fileno", "getsockopt", "getpeername")),
        "ssl": None if ssl_object is None else (ssl_object.version(), bool(ssl_object.cipher())),
        "is_readable": stream.get_extra_info("is_readable"),
    }


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("lib", ["sync", "asyncio"])
def test_stream_extras_read_as_stock(ca: trustme.CA, lib: str, scheme: str) -> None:
    """``get_extra_info`` at each point of a connection's life, a pending TFO one included."""
    import asyncio

    from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    seen: dict[str, list[tuple[str, dict[str, object]]]] = {"stock": [], "fast": []}

    with for_scheme(scheme, ca) as server:
        url = server.url + "/"
        for impl in ("stock", "fast", "fast"):  # the second fast one connects with a cookie
            points: list[tuple[str, dict[str, object]]] = []

            def record(name: str, info: dict[str, Any], points: list[Any] = points) -> None:
                if name.endswith((".connect_tcp.complete", ".start_tls.complete")):
                    extras = _extras(info["return_value"])
                    if name.endswith(".start_tls.complete"):
                        # Whether the server's TLS 1.3 session ticket has arrived (readable)
                        # right after the handshake is a race in stock as in ours.
                        del extras["is_readable"]
                    points.append((name, extras))

            async def arecord(name: str, info: dict[str, Any]) -> None:
                record(name, info)

            ext = {"trace": record if lib == "sync" else arecord}
            if lib == "sync":
                if impl == "fast":
                    t: Any = FastpathTransport(verify=client_ctx)
                else:
                    t = httpx.HTTPTransport(verify=client_ctx)
                with httpx.Client(transport=t) as client:
                    resp = client.get(url, extensions=ext)
                    after = _extras(resp.extensions["network_stream"])
            else:

                async def main(impl: str = impl, ext: Any = ext) -> tuple[Any, dict[str, object]]:
                    if impl == "fast":
                        t: Any = AsyncFastpathTransport(verify=client_ctx)
                    else:
                        t = httpx.AsyncHTTPTransport(verify=client_ctx)
                    async with httpx.AsyncClient(transport=t) as client:
                        resp = await client.get(url, extensions=ext)
                        return resp, _extras(resp.extensions["network_stream"])

                resp, after = asyncio.run(main())
            assert resp.status_code == 200
            seen[impl] = [*points, ("response", after)]
            if impl == "fast" and len(server.records) == 3:
                assert server.records[-1].syn_data  # that one was pending at connect_tcp
    assert seen["fast"] == seen["stock"], seen


def test_urllib3_connection_attributes_read_as_stock(ca: trustme.CA, ca_file: str) -> None:
    """What code reads of ``HTTPResponse.connection`` and its socket, and the TLS keywords,
    on a fresh connection and one with a TFO cookie, stock and ours."""
    import urllib3

    from http_fastpath import FastpathPoolManager

    seen: dict[str, list[object]] = {"stock": [], "fast": []}
    with https(ca) as server:
        url = server.url + "/"
        for impl in ("stock", "fast", "fast"):  # the second fast one connects with a cookie

            def manager(impl: str = impl, **kw: Any) -> urllib3.PoolManager:
                if impl == "fast":
                    return FastpathPoolManager(ca_certs=ca_file, **kw)
                return urllib3.PoolManager(ca_certs=ca_file, **kw)

            pm = manager(ssl_minimum_version=ssl.TLSVersion.TLSv1_3)
            resp = pm.request("GET", url, preload_content=False)
            conn = resp.connection
            assert isinstance(conn, urllib3.connection.HTTPSConnection) and conn.sock is not None
            # Stock's is an ssl.SSLSocket; ours a _LeanSSLTransport with the same methods.
            sock = cast(ssl.SSLSocket, conn.sock)
            cert = sock.getpeercert()
            assert cert is not None
            row: list[object] = [
                resp.status,
                conn.is_verified,
                conn.proxy_is_verified,
                conn.has_connected_to_proxy,
                sock.getpeername(),
                type(sock.getsockname()[1]),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
                sock.family,
                sock.version(),
                cert["subjectAltName"],
            ]
            resp.release_conn()
            pm.clear()
            with pytest.raises(urllib3.exceptions.MaxRetryError) as wrong_name:
                manager(server_hostname="other.test").request("GET", url, retries=0)
            reason = wrong_name.value.reason
            row += [type(reason), "other.test" in str(reason)]
            checks_off = manager(assert_hostname=False, server_hostname="other.test")
            row.append(checks_off.request("GET", url, retries=0).status)
            seen[impl] = row
        syn_data = [r.syn_data for r in server.records]
    assert seen["fast"] == seen["stock"], seen
    assert seen["stock"][:2] == [200, True]
    # Three connections a round; the compared one of the last round had a TFO cookie.
    assert syn_data[6] is True


def test_requests_ca_bundle_hooks_and_raw(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``REQUESTS_CA_BUNDLE``, response hooks and ``resp.raw`` streaming, as stock."""
    from http_fastpath import FastpathAdapter

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    seen: dict[str, object] = {}
    with https(ca) as server:
        for impl in ("stock", "fast", "fast"):  # the second fast one connects with a cookie
            with requests.Session() as session:
                if impl == "fast":
                    session.mount("https://", FastpathAdapter())
                hooked: list[int] = []
                session.hooks["response"].append(
                    lambda r, *a, hooked=hooked, **k: hooked.append(r.status_code)
                )
                resp = session.get(server.url + "/bytes?n=100", stream=True)
                chunks = [len(c) for c in resp.raw.stream(32)]
                seen[impl] = (resp.status_code, hooked, chunks, resp.raw.version, resp.raw.closed)
        syn_data = [r.syn_data for r in server.records]
    assert seen["fast"] == seen["stock"] == (200, [200], [32, 32, 32, 4], 11, True), seen
    assert syn_data == [False, False, True]


@pytest.mark.parametrize("impl", IMPLS)
def test_httpx_request_extensions_and_transport_arguments(ca: trustme.CA, impl: str) -> None:
    """``sni_hostname``, ``local_address``, ``event_hooks`` and a ``MockTransport`` mount."""
    from .._stack import FastpathTransport, httpx

    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    host, source = next_loopback(), next_loopback()
    hooks: list[str] = []

    def mocked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(418, text="mocked " + request.url.host)

    def transport(**kw: Any) -> httpx.BaseTransport:
        if impl == "fast":
            return FastpathTransport(verify=client_ctx, **kw)
        return httpx.HTTPTransport(verify=client_ctx, **kw)

    with Server(tls=server_tls(ca, "api.test"), host=host) as server:
        with httpx.Client(
            transport=transport(local_address=source),
            mounts={"all://mock.test": httpx.MockTransport(mocked)},
            event_hooks={"response": [lambda r: hooks.append(f"{r.status_code}")]},
        ) as client:
            # The certificate names api.test only: the SNI / hostname check uses the extension.
            resp = client.get(server.url + "/", extensions={"sni_hostname": "api.test"})
            mock = client.get("http://mock.test/")
        with httpx.Client(transport=transport()) as client:
            with pytest.raises(httpx.ConnectError):
                client.get(server.url + "/")  # no sni_hostname: the IP does not match
        peers = [r.peer[0] for r in server.records]
    assert (resp.status_code, resp.text) == (200, "hello GET")
    assert (mock.status_code, mock.text) == (418, "mocked mock.test")
    assert hooks == ["200", "418"]
    assert peers[0] == source  # local_address bound the source
