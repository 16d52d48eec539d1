"""16 concurrent tasks x 100 requests: no error, and nothing left behind after close."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import Server

from .._httpx_util import ASYNC_LIBS, run_async
from .._observe import open_fds, settle
from .._servers import for_scheme
from .._stack import AsyncFastpathTransport, httpx

pytestmark = pytest.mark.netns

TASKS = 16
REQUESTS = 100


async def _trio_sleep(seconds: float) -> None:
    import trio

    await trio.sleep(seconds)


@pytest.mark.parametrize("lib", ASYNC_LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sixteen_tasks_hundred_requests(
    lib: str, scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    def living_tasks() -> list[str]:
        if lib == "asyncio":
            return sorted(repr(t.get_coro()) for t in asyncio.all_tasks())
        import trio

        names: list[str] = []
        root = trio.lowlevel.current_root_task()
        assert root is not None  # inside trio.run
        todo = [root]
        while todo:
            task = todo.pop()
            names.append(task.name)
            todo.extend(t for n in task.child_nurseries for t in n.child_tasks)
        return sorted(names)

    async def main(url: str) -> tuple[list[int], list[str]]:
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
        await (asyncio.sleep(0.05) if lib == "asyncio" else _trio_sleep(0.05))
        after = living_tasks()
        return statuses, [t for t in after if t not in tasks_before]

    with for_scheme(scheme, ca) as server:
        before = open_fds()
        statuses, leftover_tasks = run_async(lib, main, server.url)
        after = settle(open_fds, before, 5)
        connections = len(server.records)
    assert statuses == [200] * (TASKS * REQUESTS)
    assert leftover_tasks == [], f"tasks left: {leftover_tasks}"
    assert after <= before, f"leaked fds: {sorted(after - before)}"
    assert 1 <= connections <= 8 * 2  # keep-alive pool, not one connection per request


@pytest.mark.parametrize("lib", ASYNC_LIBS)
def test_cancelled_connect_leaks_nothing(lib: str, full_backlog: tuple[str, int]) -> None:
    """Cancelling a request while its (TFO) connect waits for the SYN-ACK closes the socket."""
    host, port = full_backlog

    async def main(url: str) -> None:
        import anyio

        transport = AsyncFastpathTransport()
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            for _ in range(5):
                with anyio.move_on_after(0.1) as scope:
                    await client.get(url)
                assert scope.cancelled_caught

    before = open_fds()
    run_async(lib, main, f"http://{host}:{port}/")
    after = settle(open_fds, before, 5)
    assert after <= before, f"leaked fds: {sorted(after - before)}"


@pytest.mark.parametrize("lib", ["sync", *ASYNC_LIBS])
def test_socket_options_reach_the_socket(lib: str) -> None:
    import socket

    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with Server() as server:
        if lib == "sync":
            from .._stack import FastpathTransport

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
