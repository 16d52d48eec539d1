"""``fastpath_client`` keeps environment proxies exactly like a stock ``httpx.Client``."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import trustme
from httpx._utils import get_environment_proxies  # the stock table, as the oracle

from http_fastpath import (
    FastpathOptions,
    OptionError,
    connection_info,
)
from http_fastpath._integrations.httpx import environment_proxies
from http_fastpath.netlab import Proxy, Server

from .._servers import https
from .._stack import (
    AsyncFastpathTransport,
    FastpathTransport,
    async_fastpath_client,
    fastpath_client,
    httpx,
)

ENVIRONMENTS = [
    {},
    {"HTTP_PROXY": "http://127.0.0.9:3128"},
    {"HTTPS_PROXY": "127.0.0.9:3128", "NO_PROXY": "example.com"},
    {"ALL_PROXY": "socks5://127.0.0.9:1080", "NO_PROXY": ".example.com,::1,10.0.0.1"},
    {"http_proxy": "http://p:1", "no_proxy": "localhost, http://direct.example , *"},
    {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8,[::1],localhost,"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_table_matches_stock(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxies() == get_environment_proxies()


def test_transport_and_client_arguments_are_validated() -> None:
    # The options themselves are checked, for every constructor, in tests/unit/test_options.py.
    with pytest.raises(OptionError, match="retries"):
        AsyncFastpathTransport(retries=-1)
    with pytest.raises(OptionError, match="transport"):
        fastpath_client(transport=httpx.HTTPTransport())
    assert FastpathTransport(tfo=False).options == FastpathOptions(tfo=False)
    assert FastpathTransport(options=FastpathOptions(mptcp=False)).options.mptcp is False


@pytest.mark.netns
def test_env_proxy_and_no_proxy_route_like_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    with Server() as direct, Server() as proxied, Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", direct.host)
        for make in (httpx.Client, fastpath_client):
            with make() as client:
                assert client.get(f"{direct.url}/").text == "hello GET"
                assert client.get(f"{proxied.url}/").text == "hello GET"
        seen = [r.requests for r in proxy.records]
        # Stock and ours each sent exactly the proxied request through the proxy.
        assert seen.count([f"GET {proxied.url}/"]) == 2
        assert all(r == [f"GET {proxied.url}/"] for r in seen)
        assert len(direct.records) == 2  # one direct connection each
        with fastpath_client() as client:
            resp = client.get(f"{proxied.url}/")
        info = connection_info(resp)
        assert info is not None and info.peer_address == (proxy.host, proxy.port)
        with fastpath_client(trust_env=False) as client:
            resp = client.get(f"{proxied.url}/")
        info = connection_info(resp)
        assert info is not None and info.peer_address == (proxied.host, proxied.port)


@pytest.mark.netns
def test_async_client_https_through_env_proxy(
    monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    with https(ca) as server, Proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)

        async def main() -> httpx.Response:
            async with async_fastpath_client(verify=client_tls, http2=False) as client:
                return await client.get(f"{server.url}/")

        resp = asyncio.run(main())
        assert resp.text == "hello GET"
        assert [r.requests for r in proxy.records] == [[f"CONNECT {server.host}:{server.port}"]]
