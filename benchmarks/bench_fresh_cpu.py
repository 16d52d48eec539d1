"""Client CPU per request on loopback: fresh connections and keep-alive, stock vs defaults.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench``). The server runs
in a forked process (its own GIL) on a TCP Fast Open listener; "fresh" answers with
``Connection: close``, so every request opens a new connection through the same client,
which measures connection set-up rather than client construction. The fastpath runs with
the default options (TFO + MPTCP) after a learning phase, so the destination memory has
seen the server answer MPTCP in plain TCP. Stock and fastpath are interleaved in rounds;
CPU is the client process's ``process_time``.

    sudo python -m benchmarks.bench_fresh_cpu [--requests 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import socket
import socketserver
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import trustme

from http_fastpath.netlab import enter_private_netns, next_loopback
from http_fastpath.netlab._measure import _stack

_BODY = b"x" * 64


class _Responder(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.tls is not None:
            sock = self.server.tls.wrap_socket(sock, server_side=True)
        close = b"Connection: close\r\n" if self.server.close else b""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n" + close + b"\r\n"
        pending = b""
        while data := sock.recv(65536):
            pending += data
            while b"\r\n\r\n" in pending:
                _, _, pending = pending.partition(b"\r\n\r\n")
                sock.sendall(head + _BODY)
                if self.server.close:
                    return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, tls: ssl.SSLContext | None, close: bool) -> None:
        self.tls, self.close = tls, close
        super().__init__((host, 0), _Responder, bind_and_activate=False)
        self.socket.setsockopt(socket.IPPROTO_TCP, 23, 256)  # TCP_FASTOPEN
        self.server_bind()
        self.server_activate()


def _serve(host: str, tls: ssl.SSLContext | None, close: bool) -> tuple[str, Any]:
    server = _Server(host, tls, close)
    child = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    child.start()
    server.socket.close()
    return f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}/", child


Runner = Callable[[int], None]


def _requests(fast: bool, url: str, verify: str) -> tuple[Runner, Callable[[], None]]:
    import requests

    from http_fastpath import FastpathAdapter

    session = requests.Session()
    if fast:
        session.mount("http://", FastpathAdapter())
        session.mount("https://", FastpathAdapter())

    def run(n: int) -> None:
        for _ in range(n):
            assert session.get(url, verify=verify).content == _BODY

    return run, session.close


def _httpx(
    fast: bool, url: str, verify: str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)
    ctx = ssl.create_default_context(cafile=verify)
    transport = ours.FastpathTransport(verify=ctx) if fast else httpx.HTTPTransport(verify=ctx)
    client = httpx.Client(transport=transport)

    def run(n: int) -> None:
        for _ in range(n):
            assert client.get(url).content == _BODY

    return run, client.close


def _httpx_async(
    fast: bool, url: str, verify: str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)
    ctx = ssl.create_default_context(cafile=verify)
    loop = asyncio.new_event_loop()
    if fast:
        transport = ours.AsyncFastpathTransport(verify=ctx)
    else:
        transport = httpx.AsyncHTTPTransport(verify=ctx)
    client = httpx.AsyncClient(transport=transport)

    async def many(n: int) -> None:
        for _ in range(n):
            assert (await client.get(url)).content == _BODY

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    def close() -> None:
        loop.run_until_complete(client.aclose())
        loop.close()

    return run, close


def _httpx2(fast: bool, url: str, verify: str) -> tuple[Runner, Callable[[], None]]:
    return _httpx(fast, url, verify, "httpx2")


def _httpx2_async(fast: bool, url: str, verify: str) -> tuple[Runner, Callable[[], None]]:
    return _httpx_async(fast, url, verify, "httpx2")


CLIENTS = {
    "requests": _requests,
    "httpx": _httpx,
    "httpx async": _httpx_async,
    "httpx2": _httpx2,
    "httpx2 async": _httpx2_async,
}


def measure(
    requests: int = 1200, rounds: int = 6, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Rows of client CPU µs per request, stock vs fastpath; call inside a private netns."""
    ca = trustme.CA()
    host = next_loopback()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(tls)
    rows = []
    per_round = max(1, requests // rounds)
    with tempfile.NamedTemporaryFile(suffix=".pem") as ca_file:
        ca.cert_pem.write_to_path(ca_file.name)
        for mode in ("fresh", "keep-alive"):
            for ctx in (None, tls):
                url, child = _serve(host, ctx, close=mode == "fresh")
                try:
                    for name, make in CLIENTS.items():
                        if importlib.util.find_spec(name.split()[0]) is None:
                            continue  # that client is not installed
                        made = {fast: make(fast, url, ca_file.name) for fast in (False, True)}
                        for run, _ in made.values():
                            run(30)  # warm-up: the learning connection, cookies, caches
                        cpu = {False: 0, True: 0}
                        for r in range(rounds):
                            for fast in (False, True) if r % 2 == 0 else (True, False):
                                t0 = time.process_time_ns()
                                made[fast][0](per_round)
                                cpu[fast] += time.process_time_ns() - t0
                        for _, close in made.values():
                            close()
                        n = per_round * rounds
                        stock_us, fast_us = cpu[False] / n / 1000, cpu[True] / n / 1000
                        row = {
                            "mode": mode,
                            "scheme": "https" if ctx else "http",
                            "client": name,
                            "stock_cpu_us": round(stock_us, 1),
                            "fast_cpu_us": round(fast_us, 1),
                            "ratio": round(fast_us / stock_us, 3),
                            "requests": n,
                        }
                        rows.append(row)
                        log(
                            f"  {mode:<10} {row['scheme']:<5} {name:<13} stock {stock_us:8.1f} µs"
                            f"  fastpath {fast_us:8.1f} µs  ratio {row['ratio']:.3f}"
                        )
                finally:
                    child.terminate()
                    child.join(5)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1200, help="per variant and row")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    args = parser.parse_args(argv)
    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"needs a private network namespace (root or user namespaces): {reason}")
    print("client CPU per request (loopback, default options after learning)")
    measure(args.requests, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
