"""The Alt-Svc upgrade's fallback: what a blocked UDP path costs, stock vs ``http3="auto"``.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench --only altsvc``). On
loopback in the private namespace, an HTTPS origin (HTTP/1.1 over TCP, trustme
certificate) answers every request with ``Alt-Svc: h3=":PORT"``, where PORT is

* ``UDP dropped``: a UDP socket that reads nothing (a firewall dropping QUIC): the
  handshake never completes, the request waits for the 300 ms bound, then goes over TCP;
* ``nothing listening``: a closed UDP port (ICMP port unreachable): fails at once.

Each sample is a new client making three requests in a row: the 1st learns the
alternative (TCP), the 2nd tries QUIC and falls back (the one that pays), the 3rd goes
straight to TCP (the alternative is marked broken). Stock is the same client without the
upgrade making the same three requests (keep-alive after the 1st, as ours), interleaved
with ours. Time: from the request to the response head.

    sudo python -m benchmarks.bench_altsvc [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CLIENTS = ("requests", "httpx", "httpx-asyncio", "httpx-trio")
SCENARIOS = ("UDP dropped", "nothing listening")
REQUESTS = 3


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"x" * 64
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.send_header("alt-svc", self.server.alt_svc)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def scenario(name: str) -> Iterator[tuple[str, str]]:
    """The origin for one scenario; yields (URL, CA file)."""
    import trustme

    from http_fastpath._core.sockets import new_socket

    ca = trustme.CA()
    with contextlib.ExitStack() as stack:
        udp = stack.enter_context(new_socket(socket.AF_INET, socket.SOCK_DGRAM, 0))
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        if name == "nothing listening":
            udp.close()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(tls)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.alt_svc = f'h3=":{port}"'  # type: ignore[attr-defined]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        ca_file = str(Path(directory) / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        yield f"https://127.0.0.1:{server.server_address[1]}/", ca_file


def _requests(fast: bool, url: str, ca_file: str) -> list[float]:
    import requests
    from requests.adapters import HTTPAdapter

    from http_fastpath import FastpathAdapter

    times = []
    with requests.Session() as session:
        session.trust_env = False
        session.mount("https://", FastpathAdapter(http3="auto") if fast else HTTPAdapter())
        for _ in range(REQUESTS):
            start = time.perf_counter()
            response = session.get(url, verify=ca_file, timeout=10, stream=True)
            times.append(time.perf_counter() - start)
            response.content  # noqa: B018
    return times


def _httpx(fast: bool, url: str, ca_file: str) -> list[float]:
    import httpx

    from http_fastpath import FastpathTransport

    context = ssl.create_default_context(cafile=ca_file)
    transport = FastpathTransport(verify=context, http3="auto") if fast else None
    times = []
    with httpx.Client(transport=transport, verify=context, timeout=10, trust_env=False) as client:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            with client.stream("GET", url) as response:
                times.append(time.perf_counter() - start)
                response.read()
    return times


async def _httpx_async(fast: bool, url: str, ca_file: str) -> list[float]:
    import httpx

    from http_fastpath import AsyncFastpathTransport

    context = ssl.create_default_context(cafile=ca_file)
    transport = AsyncFastpathTransport(verify=context, http3="auto") if fast else None
    times = []
    async with httpx.AsyncClient(
        transport=transport, verify=context, timeout=10, trust_env=False
    ) as client:
        for _ in range(REQUESTS):
            start = time.perf_counter()
            async with client.stream("GET", url) as response:
                times.append(time.perf_counter() - start)
                await response.aread()
    return times


def one(client: str, fast: bool, url: str, ca_file: str) -> list[float]:
    """Seconds to the response head of each of the three requests of a new client."""
    if client == "requests":
        return _requests(fast, url, ca_file)
    if client == "httpx":
        return _httpx(fast, url, ca_file)
    if client == "httpx-asyncio":
        return asyncio.run(_httpx_async(fast, url, ca_file))
    import trio

    result: list[float] = trio.run(_httpx_async, fast, url, ca_file)
    return result


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000.0, 2)


def measure(log: Callable[[str], None] = print, *, rounds: int = 10) -> dict[str, Any]:
    """One row per scenario, client and request (1st, 2nd, 3rd): median ms, stock vs ours."""
    rounds = max(1, min(rounds, 100))
    rows = []
    for name in SCENARIOS:
        with scenario(name) as (url, ca_file):
            for client in CLIENTS:
                one(client, True, url, ca_file)  # warm-up: imports
                stock: list[list[float]] = [[] for _ in range(REQUESTS)]
                ours: list[list[float]] = [[] for _ in range(REQUESTS)]
                for _ in range(rounds):
                    for i, t in enumerate(one(client, False, url, ca_file)):
                        stock[i].append(t)
                    for i, t in enumerate(one(client, True, url, ca_file)):
                        ours[i].append(t)
                for i in range(REQUESTS):
                    row = {
                        "scenario": name,
                        "client": client,
                        "request": i + 1,
                        "samples": rounds,
                        "stock_ms": _ms(stock[i]),
                        "ours_ms": _ms(ours[i]),
                        "ours_max_ms": round(max(ours[i]) * 1000.0, 2),
                    }
                    row["ratio"] = round(row["ours_ms"] / row["stock_ms"], 3)
                    row["extra_ms"] = round(row["ours_ms"] - row["stock_ms"], 2)
                    rows.append(row)
                    log(
                        f"{name:<18} {client:<14} request {i + 1}: stock {row['stock_ms']:7.2f} ms"
                        f"  ours {row['ours_ms']:7.2f} ms (max {row['ours_max_ms']:.2f})"
                        f"  ratio {row['ratio']:.3f}"
                    )
    return {"rows": rows, "requests": REQUESTS}


def report(results: dict[str, Any]) -> list[str]:
    """The Markdown table of :func:`measure`'s results."""
    lines = [
        "| scenario | client | request | n | stock ms | ours ms (max) | ours − stock ms | "
        "ours / stock |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['scenario']} | {r['client']} | {r['request']} | {r['samples']} | "
            f"{r['stock_ms']:.2f} | {r['ours_ms']:.2f} ({r['ours_max_ms']:.2f}) | "
            f"{r['extra_ms']:+.2f} | **{r['ratio']:.3f}** |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="clients per row (1-100)")
    args = parser.parse_args(argv)
    from http_fastpath.netlab import enter_private_netns

    reason = enter_private_netns()
    if reason is not None:
        print(f"needs a private network namespace: {reason}", file=sys.stderr)
        return 1
    for line in report(measure(rounds=args.rounds)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
