"""Happy Eyeballs: time to first byte when a host's first address is silent, stock vs ours.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench --only eyeballs``).
In the private namespace, ``dual.test`` resolves (``netlab.resolving``: every client asks
``socket.getaddrinfo``) to a silent address -- a listener whose accept queue is full, so
the kernel drops the SYNs (``netlab.full_backlog``) -- and a live HTTP server on the
other family, same port. Each sample is a new client and a fresh connection; the time is
from the request to the response head (time to first byte). The connect timeout is 5 s
(httpx's default). Rows:

* ``silent v6 first``: ``[::1]`` silent, then ``127.0.x.y`` live (a dead IPv6 route);
* ``silent v4 first``: the families swapped;
* ``single address`` and ``both live``: no race to win -- the cost of the new code when
  nothing is wrong must stay within noise.

"ours (race)" forgets the destination memory before each sample, so every sample runs the
race; "ours (remembered)" keeps it, so the address that won goes first. Stock and ours are
interleaved in rounds.

    sudo python -m benchmarks.bench_eyeballs [--rounds 3] [--timeout 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

NAME = "dual.test"
CLIENTS = ("requests", "httpx", "httpx-asyncio", "httpx-trio")
SCENARIOS = ("silent v6 first", "silent v4 first", "single address", "both live")
_SILENT = SCENARIOS[:2]


@contextlib.contextmanager
def scenario(name: str) -> Iterator[str]:
    """Servers and the name for one scenario; yields the URL."""
    from http_fastpath.netlab import Server, full_backlog, next_loopback, resolving

    v4 = next_loopback()
    with contextlib.ExitStack() as stack:
        if name == "silent v6 first":
            server = stack.enter_context(Server(host=v4))
            stack.enter_context(full_backlog("::1", server.port))
            order = ["::1", v4]
        elif name == "silent v4 first":
            server = stack.enter_context(Server(family=socket.AF_INET6))
            stack.enter_context(full_backlog(v4, server.port))
            order = [v4, "::1"]
        elif name == "single address":
            server = stack.enter_context(Server(host=v4))
            order = [v4]
        else:
            server = stack.enter_context(Server(host=v4))
            stack.enter_context(Server(family=socket.AF_INET6, port=server.port))
            order = ["::1", v4]
        stack.enter_context(resolving({NAME: order}))
        yield f"http://{NAME}:{server.port}/bytes?n=64"


def _requests(fast: bool, url: str, timeout: float) -> float:
    import requests
    from requests.adapters import HTTPAdapter

    from http_fastpath import FastpathAdapter

    with requests.Session() as session:
        session.trust_env = False
        session.mount("http://", FastpathAdapter() if fast else HTTPAdapter())
        start = time.perf_counter()
        response = session.get(url, timeout=(timeout, 10), stream=True)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        response.content  # noqa: B018
        response.close()
    return elapsed


def _httpx(fast: bool, url: str, timeout: float) -> float:
    import httpx

    from http_fastpath import FastpathTransport

    transport = FastpathTransport() if fast else httpx.HTTPTransport()
    limits = httpx.Timeout(10, connect=timeout)
    with httpx.Client(transport=transport, timeout=limits, trust_env=False) as client:
        start = time.perf_counter()
        with client.stream("GET", url) as response:
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            response.read()
    return elapsed


async def _httpx_async(fast: bool, url: str, timeout: float) -> float:
    import httpx

    from http_fastpath import AsyncFastpathTransport

    transport = AsyncFastpathTransport() if fast else httpx.AsyncHTTPTransport()
    limits = httpx.Timeout(10, connect=timeout)
    async with httpx.AsyncClient(transport=transport, timeout=limits, trust_env=False) as client:
        start = time.perf_counter()
        async with client.stream("GET", url) as response:
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            await response.aread()
    return elapsed


def one(client: str, fast: bool, url: str, timeout: float) -> float:
    """Seconds to the response head for one request on a new client."""
    if client == "requests":
        return _requests(fast, url, timeout)
    if client == "httpx":
        return _httpx(fast, url, timeout)
    if client == "httpx-asyncio":
        return asyncio.run(_httpx_async(fast, url, timeout))
    import trio

    return trio.run(_httpx_async, fast, url, timeout)


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000.0, 2)


def measure(
    log: Callable[[str], None] = print, *, rounds: int = 3, timeout: float = 5.0
) -> dict[str, Any]:
    """One row per scenario and client: median milliseconds, stock vs ours."""
    from http_fastpath import reset_destinations

    rounds = max(1, min(rounds, 50))
    rows = []
    for name in SCENARIOS:
        # the silent rows cost stock sync clients the whole timeout per sample
        n = rounds if name in _SILENT else rounds * 5
        with scenario(name) as url:
            for client in CLIENTS:
                one(client, True, url, timeout)  # warm-up: imports, TFO cookies
                stock: list[float] = []
                race: list[float] = []
                remembered: list[float] = []
                for _ in range(n):
                    stock.append(one(client, False, url, timeout))
                    reset_destinations()
                    race.append(one(client, True, url, timeout))
                    remembered.append(one(client, True, url, timeout))
                row: dict[str, Any] = {
                    "scenario": name,
                    "client": client,
                    "samples": n,
                    "stock_ms": _ms(stock),
                    "race_ms": _ms(race),
                    "remembered_ms": _ms(remembered),
                    "race_max_ms": round(max(race) * 1000.0, 2),
                }
                row["ratio"] = round(row["race_ms"] / row["stock_ms"], 3)
                rows.append(row)
                log(
                    f"{name:<16} {client:<14} stock {row['stock_ms']:9.2f} ms  ours (race) "
                    f"{row['race_ms']:8.2f} ms (max {row['race_max_ms']:.2f})  ours "
                    f"(remembered) {row['remembered_ms']:8.2f} ms  ratio {row['ratio']:.3f}"
                )
    return {"timeout_s": timeout, "rows": rows}


def report(results: dict[str, Any]) -> list[str]:
    """The Markdown table of :func:`measure`'s results."""
    lines = [
        "| scenario | client | n | stock ms | ours (race) ms | ours (remembered) ms | ours / stock |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['scenario']} | {r['client']} | {r['samples']} | {r['stock_ms']:.2f} | "
            f"{r['race_ms']:.2f} | {r['remembered_ms']:.2f} | **{r['ratio']:.3f}** |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="samples per silent row (1-50)")
    parser.add_argument("--timeout", type=float, default=5.0, help="connect timeout, seconds")
    args = parser.parse_args(argv)
    from http_fastpath.netlab import enter_private_netns

    reason = enter_private_netns()
    if reason is not None:
        print(f"needs a private network namespace: {reason}", file=sys.stderr)
        return 1
    measure(rounds=args.rounds, timeout=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
