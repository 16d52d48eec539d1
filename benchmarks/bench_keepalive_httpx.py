"""Keep-alive per-request time: stock httpx vs http_fastpath's transports, same run.

    python benchmarks/bench_keepalive_httpx.py [--requests 300] [--rounds 15] [--stack httpx2]

Runs in a private network namespace (root or user namespaces) against a small asyncio
HTTP/1.1 server in a separate process (its own GIL), on loopback, plain and TLS. Each
round times ``--requests`` GETs on one warm client per implementation (the order
alternates between rounds); the table shows median per-request wall-clock and client
CPU time (the server runs in another process), and the median of the per-round
ours/stock ratios (both clients measured back to back, so machine load mostly cancels). On a keep-alive connection TFO and MPTCP do nothing, so this measures
the cost of our transport layer itself (target: ratio <= 1.01).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


async def _serve(host: str, port: int, certfile: str, keyfile: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(_RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certfile, keyfile)
    plain = await asyncio.start_server(handle, host, port)
    secure = await asyncio.start_server(handle, host, port + 1, ssl=tls)
    print("ready", flush=True)
    async with plain, secure:
        await asyncio.gather(plain.serve_forever(), secure.serve_forever())


Sample = tuple[float, float]  # (wall, client CPU) seconds per request


def _sync_timer(client: Any, url: str, n: int) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        client.get(url)
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


async def _async_timer(client: Any, url: str, n: int) -> Sample:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await client.get(url)
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


def _measure(
    make: dict[str, Callable[[], Any]], url: str, n: int, rounds: int, is_async: bool
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {k: [] for k in make}
    loop = asyncio.new_event_loop() if is_async else None
    clients = {k: f() for k, f in make.items()}
    try:
        for client in clients.values():  # warm up: connect, TLS handshake, caches
            if loop is not None:
                loop.run_until_complete(_async_timer(client, url, 20))
            else:
                _sync_timer(client, url, 20)
        for r in range(rounds):
            order = list(clients) if r % 2 == 0 else list(reversed(clients))
            for key in order:
                client = clients[key]
                if loop is not None:
                    samples[key].append(loop.run_until_complete(_async_timer(client, url, n)))
                else:
                    samples[key].append(_sync_timer(client, url, n))
    finally:
        for client in clients.values():
            if loop is not None:
                loop.run_until_complete(client.aclose())
            else:
                client.close()
        if loop is not None:
            loop.close()
    return samples


def _count_calls(make: dict[str, Callable[[], Any]], url: str, is_async: bool) -> dict[str, float]:
    """Python function calls per keep-alive request: a load-independent measure of work."""
    out = {}
    for key, factory in make.items():
        client = factory()
        loop = asyncio.new_event_loop() if is_async else None
        calls = 0

        def profile(frame: Any, event: str, arg: Any) -> None:
            nonlocal calls
            if event == "call":
                calls += 1

        def run(n: int, client: Any = client, loop: Any = loop) -> None:
            if loop is not None:
                loop.run_until_complete(_async_timer(client, url, n))
            else:
                _sync_timer(client, url, n)

        try:
            run(5)
            sys.setprofile(profile)
            try:
                run(50)
            finally:
                sys.setprofile(None)
        finally:
            if loop is not None:
                loop.run_until_complete(client.aclose())
                loop.close()
            else:
                client.close()
        out[key] = calls / 50
    return out


def _row(mode: str, scheme: str, samples: dict[str, list[Sample]], calls: dict[str, float]) -> str:
    stock, ours = samples["stock"], samples["ours"]
    cells = []
    for i in (0, 1):  # wall, CPU
        s = statistics.median(x[i] for x in stock)
        o = statistics.median(x[i] for x in ours)
        paired = statistics.median(b[i] / a[i] for a, b in zip(stock, ours, strict=True))
        cells.append(f"{s * 1e6:9.1f} {o * 1e6:9.1f} {paired:7.3f}")
    cells.append(
        f"{calls['stock']:6.0f} {calls['ours']:6.0f} {calls['ours'] / calls['stock']:7.3f}"
    )
    return f"{mode:8} {scheme:6} " + "   ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="GETs per round (per client)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds; the median is shown")
    parser.add_argument(
        "--no-mptcp", action="store_true", help="ours with mptcp=False (plain TCP sockets)"
    )
    parser.add_argument(
        "--stack", choices=["httpx", "httpx2"], default="httpx", help="client stack to compare"
    )
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        host, port, certfile, keyfile = args.serve
        asyncio.run(_serve(host, int(port), certfile, keyfile))
        return 0
    if not (1 <= args.requests <= 100_000 and 1 <= args.rounds <= 1000):
        parser.error("--requests must be in 1..100000 and --rounds in 1..1000")

    from http_fastpath.netlab import enter_private_netns

    reason = enter_private_netns()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2

    import importlib

    import trustme

    httpx = importlib.import_module(args.stack)
    ours = importlib.import_module(
        "http_fastpath" if args.stack == "httpx" else "http_fastpath.httpx2"
    )
    FastpathTransport, AsyncFastpathTransport = ours.FastpathTransport, ours.AsyncFastpathTransport

    host, port = "127.0.0.1", 18080
    ca = trustme.CA()
    cert = ca.issue_cert(host)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        cert.cert_chain_pems[0].write_to_path(certfile)
        cert.private_key_pem.write_to_path(keyfile)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", host, str(port), certfile, keyfile],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            rows = []
            kw = {"verify": client_tls, "mptcp": not args.no_mptcp}
            for scheme, url_port in (("http", port), ("https", port + 1)):
                url = f"{scheme}://{host}:{url_port}/"
                sync = {
                    "stock": lambda: httpx.Client(verify=client_tls),
                    "ours": lambda: httpx.Client(transport=FastpathTransport(**kw)),
                }
                asyn = {
                    "stock": lambda: httpx.AsyncClient(verify=client_tls),
                    "ours": lambda: httpx.AsyncClient(transport=AsyncFastpathTransport(**kw)),
                }
                for mode, make in (("sync", sync), ("asyncio", asyn)):
                    samples = _measure(make, url, args.requests, args.rounds, mode != "sync")
                    calls = _count_calls(make, url, mode != "sync")
                    rows.append(_row(mode, scheme, samples, calls))
        finally:
            server.terminate()
            server.wait(10)

    print(
        f"{args.stack} keep-alive GET, {args.requests} requests x {args.rounds} rounds;"
        " medians, us/request;"
    )
    print(f"ours: tfo=True, mptcp={not args.no_mptcp} (server: plain TCP, so MPTCP falls back)")
    print("ratio = median over rounds of ours/stock (adjacent in time, so load noise cancels)")
    cols = f"{'stock':>9} {'ours':>9} {'ratio':>7}"
    call_cols = f"{'stock':>6} {'ours':>6} {'ratio':>7}"
    print(f"{'':15} {'wall clock':^27}   {'client CPU':^27}   {'Python calls/req':^21}")
    print(f"{'mode':8} {'scheme':6} {cols}   {cols}   {call_cols}")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
