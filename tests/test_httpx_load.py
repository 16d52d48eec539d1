"""16 concurrent tasks x 100 requests: no error, and nothing left behind after close."""

from __future__ import annotations

import asyncio
import gc
import os
import ssl

import httpx
import pytest
import trustme

from http_fastpath import AsyncFastpathTransport, connection_info
from http_fastpath.netlab import Server, next_loopback

from ._httpx_util import ASYNC_LIBS, run_async
from .conftest import server_tls

pytestmark = pytest.mark.netns

TASKS = 16
REQUESTS = 100


async def _trio_checkpoint() -> None:
    import trio

    await trio.lowlevel.checkpoint()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("lib", ASYNC_LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sixteen_tasks_hundred_requests(
    lib: str, scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    host = next_loopback()
    tls = server_tls(ca, host) if scheme == "https" else None

    def living_tasks() -> int:
        if lib == "asyncio":
            return len(asyncio.all_tasks())
        import trio

        return trio.lowlevel.current_statistics().tasks_living

    async def main(url: str) -> tuple[list[int], int]:
        tasks_before = living_tasks()
        transport = AsyncFastpathTransport(
            verify=client_tls, limits=httpx.Limits(max_connections=8)
        )
        statuses: list[int] = []
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:

            async def worker(n: int) -> None:
                for i in range(REQUESTS):
                    resp = await client.get(f"{url}/echo", params={"n": f"{n}-{i}"})
                    assert connection_info(resp) is not None
                    statuses.append(resp.status_code)

            if lib == "asyncio":
                await asyncio.gather(*(worker(n) for n in range(TASKS)))
            else:
                import trio

                async with trio.open_nursery() as nursery:
                    for n in range(TASKS):
                        nursery.start_soon(worker, n)
        await (asyncio.sleep(0) if lib == "asyncio" else _trio_checkpoint())
        return statuses, living_tasks() - tasks_before

    with Server(host=host, tls=tls) as server:
        before = open_fds()
        statuses, leftover_tasks = run_async(lib, main, server.url)
        gc.collect()
        after = open_fds()
        connections = len(server.records)
    assert statuses == [200] * (TASKS * REQUESTS)
    assert leftover_tasks == 0, f"{leftover_tasks} tasks left"
    assert after <= before, f"leaked fds: {sorted(after - before)}"
    assert 1 <= connections <= 8 * 2  # keep-alive pool, not one connection per request


@pytest.mark.parametrize("lib", ASYNC_LIBS)
def test_cancelled_connect_leaks_nothing(lib: str) -> None:
    """Cancelling a request while its (TFO) connect waits for the SYN-ACK closes the socket."""
    from .test_httpx_errors import full_backlog

    host = next_loopback()

    async def main(url: str) -> None:
        import anyio

        transport = AsyncFastpathTransport()
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            for _ in range(5):
                with anyio.move_on_after(0.1) as scope:
                    await client.get(url)
                assert scope.cancelled_caught

    with full_backlog(host) as port:
        before = open_fds()
        run_async(lib, main, f"http://{host}:{port}/")
        gc.collect()
        after = open_fds()
    assert after <= before, f"leaked fds: {sorted(after - before)}"


@pytest.mark.parametrize("lib", ["sync", *ASYNC_LIBS])
def test_socket_options_reach_the_socket(lib: str) -> None:
    import socket

    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with Server() as server:
        if lib == "sync":
            from http_fastpath import FastpathTransport

            with httpx.Client(transport=FastpathTransport(socket_options=options)) as client:
                resp = client.get(server.url)
                sock = resp.extensions["network_stream"].get_extra_info("socket")
                keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        else:

            async def main() -> tuple[int, int]:
                transport = AsyncFastpathTransport(socket_options=options)
                async with httpx.AsyncClient(transport=transport) as client:
                    resp = await client.get(server.url)
                    sock = resp.extensions["network_stream"].get_extra_info("socket")
                    return (
                        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                    )

            keepalive, nodelay = run_async(lib, main)
    assert keepalive == 1
    assert nodelay == 1
