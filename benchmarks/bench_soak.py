"""Soak: sustained requests/s, stock vs fastpath, requests and httpx (sync and async).

Not a test: prints numbers. For each client (requests Session, httpx.Client,
httpx.AsyncClient) and each connection mode (``keepalive``: pooled connections;
``fresh``: ``Connection: close`` on every request, so every request dials a new
connection through the fastpath dialer), stock and fastpath run with ``--concurrency``
threads (or tasks) for ``--seconds`` each, split into interleaved rounds so drift hits
both equally. Counts errors (there must be none) and the client's RSS growth. The server is
a minimal responder in a forked process inside a private network namespace (loopback).

    sudo python benchmarks/bench_soak.py [--seconds 8] [--rounds 2] [--concurrency 8]

Bounded: the whole run takes about ``3 clients x 2 modes x 2 variants x seconds``
(about 100 s with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import requests

from http_fastpath import AsyncFastpathTransport, FastpathAdapter, FastpathTransport
from http_fastpath.netlab import enter_private_netns, next_loopback

_BODY = b"x" * 256


class _Responder(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        while data := sock.recv(65536):
            pending += data
            while b"\r\n\r\n" in pending:
                head, _, pending = pending.partition(b"\r\n\r\n")
                close = b"connection: close" in head.lower()
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (len(_BODY), b"Connection: close\r\n" if close else b"", _BODY)
                )
                if close:
                    return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, 23, 1024)  # TCP_FASTOPEN
        super().server_bind()


def _serve(host: str) -> tuple[str, Any]:
    server = _Server((host, 0), _Responder)
    child = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    child.start()
    server.socket.close()
    return f"http://{host}:{server.server_address[1]}/", child


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _threads_run(get: Callable[[], bytes], concurrency: int, seconds: float) -> tuple[int, int]:
    done = [0] * concurrency
    errors = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        while time.monotonic() < stop:
            try:
                if get() == _BODY:
                    done[n] += 1
                else:
                    errors[n] += 1
            except Exception:
                errors[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), sum(errors)


def _requests_round(fast: bool, url: str, headers: dict[str, str], c: int, s: float) -> Any:
    with requests.Session() as session:
        adapter = (
            FastpathAdapter(pool_maxsize=c)
            if fast
            else requests.adapters.HTTPAdapter(pool_maxsize=c)
        )
        session.mount("http://", adapter)
        return _threads_run(lambda: session.get(url, headers=headers, timeout=10).content, c, s)


def _httpx_round(fast: bool, url: str, headers: dict[str, str], c: int, s: float) -> Any:
    limits = httpx.Limits(max_connections=c)
    transport = FastpathTransport(limits=limits) if fast else httpx.HTTPTransport(limits=limits)
    with httpx.Client(transport=transport, timeout=10) as client:
        return _threads_run(lambda: client.get(url, headers=headers).content, c, s)


def _httpx_async_round(fast: bool, url: str, headers: dict[str, str], c: int, s: float) -> Any:
    async def main() -> tuple[int, int]:
        limits = httpx.Limits(max_connections=c)
        transport: httpx.AsyncBaseTransport = (
            AsyncFastpathTransport(limits=limits)
            if fast
            else httpx.AsyncHTTPTransport(limits=limits)
        )
        done = errors = 0
        stop = time.monotonic() + s
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:

            async def worker() -> None:
                nonlocal done, errors
                while time.monotonic() < stop:
                    try:
                        body = (await client.get(url, headers=headers)).content
                        done += body == _BODY
                        errors += body != _BODY
                    except Exception:
                        errors += 1

            await asyncio.gather(*(worker() for _ in range(c)))
        return done, errors

    return asyncio.run(main())


CLIENTS = {
    "requests": _requests_round,
    "httpx": _httpx_round,
    "httpx-async": _httpx_async_round,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="soak: requests/s, stock vs fastpath")
    parser.add_argument("--seconds", type=float, default=8.0, help="per client, mode, variant")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="threads or tasks")
    args = parser.parse_args(argv)
    if not (0.5 <= args.seconds <= 60 and 1 <= args.rounds <= 10 and 1 <= args.concurrency <= 64):
        parser.error("--seconds 0.5..60, --rounds 1..10, --concurrency 1..64")
    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"needs a private network namespace (root or user namespaces): {reason}")
    url, child = _serve(next_loopback())
    slice_s = args.seconds / args.rounds
    print(
        f"soak: {args.seconds:g} s per cell, {args.rounds} interleaved rounds, "
        f"concurrency {args.concurrency}, loopback, server in a separate process"
    )
    print(
        f"{'client':12} {'mode':9} {'stock req/s':>11} {'fastpath':>9} {'ratio':>6} "
        f"{'errors s/f':>10} {'RSS +MB':>8}"
    )
    try:
        for name, round_fn in CLIENTS.items():
            for mode in ("keepalive", "fresh"):
                headers = {"Connection": "close"} if mode == "fresh" else {}
                done = {False: 0, True: 0}
                errors = {False: 0, True: 0}
                rss0 = _rss_mb()
                for r in range(args.rounds):
                    for fast in (False, True) if r % 2 == 0 else (True, False):
                        d, e = round_fn(fast, url, headers, args.concurrency, slice_s)
                        done[fast] += d
                        errors[fast] += e
                stock, fast_rate = done[False] / args.seconds, done[True] / args.seconds
                print(
                    f"{name:12} {mode:9} {stock:11.0f} {fast_rate:9.0f} "
                    f"{fast_rate / max(stock, 1e-9):6.3f} "
                    f"{f'{errors[False]}/{errors[True]}':>10} {_rss_mb() - rss0:8.1f}",
                    flush=True,
                )
    finally:
        child.terminate()
        child.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
