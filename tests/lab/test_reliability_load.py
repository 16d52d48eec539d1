"""Reliability matrix, load rows: many threads / tasks on one client, then nothing left over.

16 threads x 500 requests through one requests Session with ``FastpathAdapter``, and 64
asyncio tasks x 200 requests through one ``AsyncFastpathTransport``, against a local
server: zero errors; after close, open fds and threads back to the baseline; RSS growth
printed (``-s``) and loosely bounded. Bounded in count and in time (each < ~60 s).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import requests

from http_fastpath import FastpathAdapter, connection_info
from http_fastpath.netlab import Server

from .._observe import fd_count, rss_mb, settle, thread_count
from .._stack import AsyncFastpathTransport, httpx

pytestmark = pytest.mark.netns

RSS_BOUND_MB = 64  # loose: catches a per-request leak (8000+ requests), not allocator noise


@pytest.mark.timeout(240)  # bounded below; a loaded 2-core machine needs more than the default
def test_requests_16_threads_x_500(capsys: pytest.CaptureFixture[str]) -> None:
    threads, per_thread = 16, 500
    with Server() as server:
        baseline_fds, baseline_threads, rss0 = fd_count(), thread_count(), rss_mb()
        session = requests.Session()
        adapter = FastpathAdapter(pool_maxsize=threads)
        session.mount("http://", adapter)
        errors: list[BaseException] = []
        bodies_ok = [0] * threads
        proofs = [0] * threads
        deadline = time.monotonic() + 200

        def worker(n: int) -> None:
            for i in range(per_thread):
                if time.monotonic() > deadline:
                    errors.append(TimeoutError("load loop ran out of time"))
                    return
                try:
                    resp = session.get(f"{server.url}/bytes?n={i % 97 + 1}", timeout=10)
                except Exception as exc:
                    errors.append(exc)
                    return
                bodies_ok[n] += resp.content == b"x" * (i % 97 + 1)
                proofs[n] += connection_info(resp) is not None

        start = time.monotonic()
        workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(120)
        elapsed = time.monotonic() - start
        rss1 = rss_mb()
        session.close()
        connections = len(server.records)
        fds = settle(fd_count, baseline_fds)
        live_threads = settle(thread_count, baseline_threads)
    total = threads * per_thread
    with capsys.disabled():
        print(
            f"\nload requests: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), "
            f"{connections} connections, RSS {rss0:.1f} -> {rss1:.1f} MB "
            f"(+{rss1 - rss0:.1f} MB)"
        )
    assert errors == []
    assert sum(bodies_ok) == total and sum(proofs) == total
    assert connections <= threads * 2  # pooled keep-alive, not a connection per request
    assert fds <= baseline_fds, "file descriptors leaked"
    assert live_threads <= baseline_threads, "threads leaked"
    assert rss1 - rss0 < RSS_BOUND_MB


@pytest.mark.timeout(240)
def test_httpx_async_64_tasks_x_200(capsys: pytest.CaptureFixture[str]) -> None:
    tasks, per_task = 64, 200

    async def main(url: str) -> tuple[int, list[BaseException], float]:
        transport = AsyncFastpathTransport(limits=httpx.Limits(max_connections=64))
        good = 0
        errors: list[BaseException] = []
        deadline = time.monotonic() + 200
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:

            async def worker(n: int) -> None:
                nonlocal good
                for i in range(per_task):
                    if time.monotonic() > deadline:
                        errors.append(TimeoutError("load loop ran out of time"))
                        return
                    try:
                        resp = await client.get(f"{url}/bytes?n={i % 97 + 1}")
                    except Exception as exc:
                        errors.append(exc)
                        return
                    ok = resp.content == b"x" * (i % 97 + 1) and connection_info(resp) is not None
                    good += ok

            await asyncio.gather(*(worker(n) for n in range(tasks)))
        return good, errors, rss_mb()

    with Server() as server:
        baseline_fds, baseline_threads, rss0 = fd_count(), thread_count(), rss_mb()
        start = time.monotonic()
        good, errors, rss1 = asyncio.run(main(server.url))
        elapsed = time.monotonic() - start
        connections = len(server.records)
        fds = settle(fd_count, baseline_fds)
        live_threads = settle(thread_count, baseline_threads)
    total = tasks * per_task
    with capsys.disabled():
        print(
            f"\nload httpx async: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), "
            f"{connections} connections, RSS {rss0:.1f} -> {rss1:.1f} MB "
            f"(+{rss1 - rss0:.1f} MB)"
        )
    assert errors == []
    assert good == total
    assert connections <= tasks * 2
    assert fds <= baseline_fds, "file descriptors leaked"
    assert live_threads <= baseline_threads, "threads leaked"
    assert rss1 - rss0 < RSS_BOUND_MB
