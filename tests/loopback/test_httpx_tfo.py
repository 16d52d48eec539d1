"""httpx through the fastpath transports: data in the SYN, seen by the server's kernel.

Every connection here is fresh (a new client per request), so each one is a new SYN.
The first connection to a fresh address asks for a TFO cookie; the other 19 must carry
the request (http) or the ClientHello (https) in the SYN, and ``connection_info`` must
agree with what the server's kernel saw.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from http_fastpath import (
    ConnectionInfo,
    TFOStatus,
    connection_info,
)
from http_fastpath.netlab import Server

from .._httpx_util import ASYNC_LIBS, run_async
from .._servers import for_scheme
from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

pytestmark = pytest.mark.netns

N = 20


def _check(server: Server, infos: list[ConnectionInfo | None], scheme: str) -> None:
    records = server.records
    assert len(records) == N, "every request must open a fresh connection"
    syn_data = [r.syn_data for r in records]
    assert sum(syn_data) >= N - 1, syn_data
    assert all(info is not None for info in infos)
    assert [i.tfo_used for i in infos if i is not None] == syn_data
    assert infos[0] is not None and infos[0].tfo is TFOStatus.COOKIE_REQUESTED
    for info in infos[1:]:
        assert info is not None
        assert info.tfo is TFOStatus.SYN_DATA_ACKED
        assert info.syn_data_bytes > 0
        assert info.early_data_safe is True
        assert info.peer_address == (server.host, server.port)
    assert all(r.requests == ["GET"] for r in records)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sync_twenty_fresh_connections(
    scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    infos = []
    with for_scheme(scheme, ca) as server:
        for _ in range(N):
            transport = FastpathTransport(verify=client_tls, mptcp=False)
            with httpx.Client(transport=transport) as client:
                resp = client.get(f"{server.url}/")
                assert resp.status_code == 200
                assert resp.text == "hello GET"
                infos.append(connection_info(resp))
        _check(server, infos, scheme)


@pytest.mark.parametrize("lib", ASYNC_LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_async_twenty_fresh_connections(
    lib: str, scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    async def main(url: str) -> list[ConnectionInfo | None]:
        infos = []
        for _ in range(N):
            transport = AsyncFastpathTransport(verify=client_tls, mptcp=False)
            async with httpx.AsyncClient(transport=transport) as client:
                resp = await client.get(f"{url}/")
                assert resp.status_code == 200
                assert resp.text == "hello GET"
                infos.append(connection_info(resp))
        return infos

    with for_scheme(scheme, ca) as server:
        infos = run_async(lib, main, server.url)
        _check(server, infos, scheme)


def test_connection_info_on_keepalive_requests_is_the_connections() -> None:
    with Server() as server:
        with httpx.Client(transport=FastpathTransport(mptcp=False)) as client:
            infos = [connection_info(client.get(f"{server.url}/")) for _ in range(5)]
        assert len(server.records) == 1
        assert all(i is infos[0] for i in infos)
