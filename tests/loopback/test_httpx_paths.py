"""MPTCP, kernel fallbacks, proxies and address fallback through the httpx transports."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
import trustme

from http_fastpath import (
    ConnectionInfo,
    TFOStatus,
    connection_info,
)
from http_fastpath._backends.common import _open
from http_fastpath._core.options import FastpathOptions
from http_fastpath.netlab import Proxy, Server, next_loopback

from .._httpx_util import ASYNC_LIBS, run_async
from .._servers import for_scheme, https, server_tls
from .._stack import AsyncFastpathStream, AsyncFastpathTransport, FastpathTransport, httpx

pytestmark = pytest.mark.netns

LIBS = ("sync", *ASYNC_LIBS)


def get(lib: str, url: str, n: int = 1, **kw: Any) -> list[httpx.Response]:
    """``n`` GETs, each on a fresh client (so a fresh connection)."""
    if lib == "sync":
        out = []
        for _ in range(n):
            with httpx.Client(transport=FastpathTransport(**kw)) as client:
                out.append(client.get(url))
        return out

    async def main() -> list[httpx.Response]:
        out = []
        for _ in range(n):
            async with httpx.AsyncClient(transport=AsyncFastpathTransport(**kw)) as client:
                out.append(await client.get(url))
        return out

    return run_async(lib, main)


def info_of(resp: httpx.Response) -> ConnectionInfo:
    info = connection_info(resp)
    assert info is not None
    return info


@pytest.mark.parametrize("lib", LIBS)
def test_mptcp_listener_is_seen_as_mptcp(lib: str) -> None:
    with Server(mptcp=True) as server:
        responses = get(lib, f"{server.url}/", 3)
        records = server.records
    assert [r.status_code for r in responses] == [200] * 3
    assert [r.is_mptcp for r in records] == [True] * 3
    infos = [info_of(r) for r in responses]
    assert all(i.transport == "mptcp" and i.mptcp is True for i in infos)
    assert all(i.mptcp_subflows is not None and i.mptcp_subflows >= 1 for i in infos)
    # MPTCP and TFO together: the later connections carry the request in the SYN.
    assert [r.syn_data for r in records[1:]] == [True, True]
    assert all(i.tfo_used for i in infos[1:])


@pytest.mark.parametrize("lib", LIBS)
def test_plain_listener_falls_back_to_tcp(lib: str) -> None:
    with Server(mptcp=False) as server:
        (resp,) = get(lib, f"{server.url}/")
        records = server.records
    assert resp.status_code == 200
    assert records[0].is_mptcp is False
    info = info_of(resp)
    assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "mptcp", False)
    assert not any("mptcp" in f for f in info.fallbacks)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_everything_off_in_the_kernel_still_works(
    lib: str, scheme: str, sysctl: Any, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    sysctl("net.ipv4.tcp_fastopen", "0")
    sysctl("net.mptcp.enabled", "0")
    with for_scheme(scheme, ca, mptcp=False) as server:
        get_resps = get(lib, f"{server.url}/", 3, verify=client_tls)
        records = server.records
    assert [r.status_code for r in get_resps] == [200] * 3
    assert not any(r.syn_data for r in records)
    for resp in get_resps:
        info = info_of(resp)
        assert info.transport == "tcp"
        assert info.tfo is TFOStatus.UNAVAILABLE
        assert any("net.mptcp.enabled=0" in f for f in info.fallbacks)


@pytest.mark.parametrize("lib", LIBS)
def test_tfo_and_mptcp_switched_off_in_the_options(lib: str) -> None:
    with Server() as server:
        responses = get(lib, f"{server.url}/", 2, tfo=False, mptcp=False)
        records = server.records
    assert not any(r.syn_data for r in records)
    assert all(info_of(r).tfo is TFOStatus.DISABLED for r in responses)
    assert all(info_of(r).transport == "tcp" for r in responses)


@pytest.mark.parametrize("lib", LIBS)
def test_forward_proxy(lib: str) -> None:
    with Server() as server, Proxy() as proxy:
        responses = get(lib, f"{server.url}/", 3, proxy=proxy.url)
        records = proxy.records
    assert [r.text for r in responses] == ["hello GET"] * 3
    assert [r.requests for r in records] == [[f"GET {server.url}/"]] * 3
    # The hop to the proxy is ours: absolute-form GET requests ride in the SYN.
    assert [r.syn_data for r in records] == [False, True, True]
    assert [info_of(r).tfo_used for r in responses] == [False, True, True]
    assert info_of(responses[-1]).peer_address == (proxy.host, proxy.port)


@pytest.mark.parametrize("lib", LIBS)
def test_connect_tunnel_through_proxy(lib: str, ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    with https(ca) as server, Proxy() as proxy:
        responses = get(lib, f"{server.url}/", 3, proxy=proxy.url, verify=client_tls)
        records = proxy.records
    assert [r.text for r in responses] == ["hello GET"] * 3
    assert [r.requests for r in records] == [[f"CONNECT {server.host}:{server.port}"]] * 3
    assert [r.syn_data for r in records] == [False, True, True]  # CONNECT is replay-safe
    assert all(r.extensions["network_stream"].get_extra_info("ssl_object") for r in responses)


@pytest.mark.parametrize("lib", ASYNC_LIBS)
def test_async_dead_first_address_then_a_live_one(lib: str) -> None:
    """Addresses are tried in order (no Happy Eyeballs race): a refused one is skipped."""
    with Server() as server:
        dead = (socket.AF_INET, (next_loopback(), server.port))
        live = (socket.AF_INET, (server.host, server.port))
        sock, pending = _open([dead, live], FastpathOptions(mptcp=False), 5.0, None, [])

        async def main() -> tuple[bytes, ConnectionInfo | None]:
            stream = AsyncFastpathStream(sock, pending)
            request = f"GET / HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n"
            await stream.write(request.encode())
            data = b""
            while chunk := await stream.read(65536, timeout=5):
                data += chunk
            info = stream.connection_info()
            await stream.aclose()
            return data, info

        data, info = run_async(lib, main)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello GET")
    assert info is not None and info.peer_address == (server.host, server.port)


@pytest.mark.parametrize("lib", LIBS)
def test_local_address_is_the_source(lib: str) -> None:
    source = next_loopback()
    with Server() as server:
        (resp,) = get(lib, f"{server.url}/", local_address=source)
        records = server.records
    assert records[0].peer[0] == source
    info = info_of(resp)
    assert info.local_address is not None and info.local_address[0] == source


def test_backends_with_httpcore_directly() -> None:
    from .._stack import AsyncFastpathBackend, FastpathBackend, httpcore

    with Server() as server:
        with httpcore.ConnectionPool(network_backend=FastpathBackend()) as pool:
            for _ in range(2):
                resp = pool.request("GET", f"{server.url}/", headers={"Connection": "close"})
                assert resp.content == b"hello GET"
            stream = resp.extensions["network_stream"]
            info = stream.get_extra_info("http_fastpath.connection_info")
            assert isinstance(info, ConnectionInfo) and info.tfo_used

        async def main() -> bytes:
            async with httpcore.AsyncConnectionPool(
                network_backend=AsyncFastpathBackend(FastpathOptions(mptcp=False))
            ) as pool:
                resp = await pool.request("GET", f"{server.url}/")
                return resp.content

        assert run_async("asyncio", main) == b"hello GET"
        assert [r.syn_data for r in server.records] == [False, True, True]


@pytest.mark.parametrize("lib", LIBS)
def test_ipv6_loopback(lib: str) -> None:
    with Server(family=socket.AF_INET6) as server:
        responses = get(lib, f"{server.url}/", 2)
        records = server.records
    assert [r.text for r in responses] == ["hello GET"] * 2
    assert info_of(responses[-1]).peer_address == ("::1", server.port)
    assert len(records) == 2 and records[-1].syn_data  # the first one got the cookie


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_https_proxy_tls_in_tls(
    lib: str, scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    """An https:// proxy: TLS to the proxy (ClientHello in the SYN), then TLS inside for https."""
    host, proxy_host = next_loopback(), next_loopback()
    tls = server_tls(ca, host) if scheme == "https" else None
    with (
        Server(host=host, tls=tls) as server,
        Proxy(host=proxy_host, tls=server_tls(ca, proxy_host)) as proxy,
    ):
        via = httpx.Proxy(url=proxy.url, ssl_context=client_tls)
        responses = get(lib, f"{server.url}/", 2, proxy=via, verify=client_tls)
        records = proxy.records
    assert [r.text for r in responses] == ["hello GET"] * 2
    assert [r.syn_data for r in records] == [False, True]  # ClientHello to the proxy
    info = info_of(responses[-1])
    assert info.tfo_used and info.peer_address == (proxy_host, proxy.port)
    if scheme == "https":
        assert [r.requests for r in records] == [[f"CONNECT {host}:{server.port}"]] * 2
        ssl_object = responses[-1].extensions["network_stream"].get_extra_info("ssl_object")
        assert ssl_object is not None and ssl_object.server_hostname == host
