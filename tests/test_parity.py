"""Parity with stock at the host libraries' extension points (one home for the contract).

Each test runs the same code through stock requests/httpx/httpcore and through ours
(explicit adapters, and where it matters a cached TFO cookie) and expects the same outcome.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests
import trustme

from http_fastpath.netlab import Server, next_loopback

from ._clients import IMPLS, run
from .conftest import server_tls

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
    with Server(tls=server_tls(ca, host), host=host, family=family) as server:
        url = server.url + "/"
        outcomes = [run("requests", impl, [("GET", url)], verify=ca_file)[0] for _ in range(3)]
        with Server(tls=server_tls(ca, "other.test"), host=host, family=family) as wrong:
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

    import httpx

    from http_fastpath import AsyncFastpathTransport, FastpathTransport

    seen: list[tuple[str, object, object]] = []

    def record(name: str, info: dict[str, object]) -> None:
        if name == "connection.connect_tcp.complete":
            stream = info["return_value"]
            seen.append(
                (
                    name,
                    stream.get_extra_info("server_addr"),  # type: ignore[attr-defined]
                    stream.get_extra_info("client_addr"),  # type: ignore[attr-defined]
                )
            )

    async def arecord(name: str, info: dict[str, object]) -> None:
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
        host, port = client_addr  # type: ignore[misc]
        assert isinstance(host, str) and isinstance(port, int)
