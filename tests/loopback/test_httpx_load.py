"""16 concurrent tasks x 100 requests: no error, and nothing left behind after close."""

from __future__ import annotations

import asyncio
import gc
import os
import ssl
import time

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import Server, next_loopback

from .._httpx_util import ASYNC_LIBS, run_async
from .._stack import AsyncFastpathTransport, httpx
from ..conftest import server_tls

pytestmark = pytest.mark.netns

TASKS = 16
REQUESTS = 100


async def _trio_sleep(seconds: float) -> None:
    import trio

    await trio.sleep(seconds)


def settled_fds(before: set[str]) -> set[str]:
    """Open fds once the in-process test server closed its side (bounded: 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        now = open_fds()
        if now <= before or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def open_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass  # the fd listing the directory itself
    return out


@pytest.mark.parametrize("lib", ASYNC_LIBS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sixteen_tasks_hundred_requests(
    lib: str, scheme: str, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    host = next_loopback()
    tls = server_tls(ca, host) if scheme == "https" else None

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

    with Server(host=host, tls=tls) as server:
        before = open_fds()
        statuses, leftover_tasks = run_async(lib, main, server.url)
        after = settled_fds(before)
        connections = len(server.records)
    assert statuses == [200] * (TASKS * REQUESTS)
    assert leftover_tasks == [], f"tasks left: {leftover_tasks}"
    assert after <= before, f"leaked fds: {sorted(after - before)}"
    assert 1 <= connections <= 8 * 2  # keep-alive pool, not one connection per request


@pytest.mark.parametrize("lib", ASYNC_LIBS)
def test_cancelled_connect_leaks_nothing(lib: str) -> None:
    """Cancelling a request while its (TFO) connect waits for the SYN-ACK closes the socket."""
    from http_fastpath.netlab import full_backlog

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
        after = settled_fds(before)
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
