"""Client CPU and wall time per request on loopback: fresh, keep-alive, bulk; stock vs defaults.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench``). The server runs
in a forked process (its own GIL) on a TCP Fast Open listener; "fresh" answers with
``Connection: close``, so every request opens a new connection through the same client,
which measures connection set-up rather than client construction; "keep-alive" reuses
one connection; "bulk" downloads 32 MB over one connection. The fastpath runs with the
default options (TFO + MPTCP) after a learning connection (on a client of its own,
closed before measuring), so the destination memory has seen the server answer MPTCP in
plain TCP and the measured connections are plain TCP sockets; the row
``requests, 1st connection`` keeps the destination's first connection alive instead (an
MPTCP socket in the kernel's fallback to TCP). Stock and fastpath are interleaved in rounds
(the order alternating); CPU is the client process's ``process_time``, wall the
``perf_counter``; each figure is the median over the rounds of the per-request mean, each
ratio the median of the rounds' paired ratios, with its ~95 % confidence interval; rows
``<client> A/A`` run stock against stock (the noise floor of the run).

    sudo python -m benchmarks.bench_fresh_cpu [--requests 2400] [--rounds 24]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import trustme

from http_fastpath.netlab import enter_private_netns, next_loopback
from http_fastpath.netlab._kinds import _stack

_BODY = b"x" * 64
#: the body of ``GET /bulk``
BULK_SIZE = 32 * 1024 * 1024
_BULK = memoryview(bytes(BULK_SIZE))


def _handle(sock: socket.socket, tls: ssl.SSLContext | None, close: bool) -> None:
    """One connection: answer every request (64 bytes, or ``/bulk``), then close."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_side=True)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n"
    head += b"Connection: close\r\n\r\n" if close else b"\r\n"
    bulk_head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BULK_SIZE
    pending = b""
    while data := sock.recv(65536):
        pending += data
        while b"\r\n\r\n" in pending:
            request, _, pending = pending.partition(b"\r\n\r\n")
            if request.startswith(b"GET /bulk "):
                sock.sendall(bulk_head)
                sock.sendall(_BULK)
                continue
            sock.sendall(head + _BODY)
            if close:
                return


def _worker(listener: socket.socket, tls: ssl.SSLContext | None, close: bool) -> None:
    while True:
        sock, _ = listener.accept()
        try:
            _handle(sock, tls, close)
        except OSError:
            pass
        finally:
            sock.close()


def _run_server(listener: socket.socket, tls: ssl.SSLContext | None, close: bool) -> None:
    """Workers started up front, each accepting in turn (as a pre-forked server does):
    no thread is created per connection, so TCP Fast Open's earlier accept is not
    followed by a thread start that would land on the client's timeline."""
    workers = [
        threading.Thread(target=_worker, args=(listener, tls, close), daemon=True)
        for _ in range(_WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


_WORKERS = 8


def _serve(host: str, tls: ssl.SSLContext | None, close: bool) -> tuple[str, Any]:
    """A TCP Fast Open listener in a forked process (its own GIL); its URL and process."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, 23, 256)  # TCP_FASTOPEN
    listener.bind((host, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    child = multiprocessing.get_context("fork").Process(
        target=_run_server, args=(listener, tls, close), daemon=True
    )
    child.start()
    listener.close()
    return f"{'https' if tls else 'http'}://{host}:{port}/", child


Runner = Callable[[int], None]


def _requests(fast: bool, url: str, verify: str) -> tuple[Runner, Callable[[], None]]:
    import requests

    from http_fastpath import FastpathAdapter

    session = requests.Session()
    if fast:
        session.mount("http://", FastpathAdapter())
        session.mount("https://", FastpathAdapter())
    size = BULK_SIZE if url.endswith("/bulk") else len(_BODY)

    def run(n: int) -> None:
        for _ in range(n):
            assert len(session.get(url, verify=verify).content) == size

    return run, session.close


def _httpx(
    fast: bool, url: str, verify: str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)
    ctx = ssl.create_default_context(cafile=verify)
    transport = ours.FastpathTransport(verify=ctx) if fast else httpx.HTTPTransport(verify=ctx)
    client = httpx.Client(transport=transport)
    size = BULK_SIZE if url.endswith("/bulk") else len(_BODY)

    def run(n: int) -> None:
        for _ in range(n):
            assert len(client.get(url).content) == size

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
    size = BULK_SIZE if url.endswith("/bulk") else len(_BODY)

    async def many(n: int) -> None:
        for _ in range(n):
            assert len((await client.get(url)).content) == size

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

Made = dict[bool, tuple[Runner, Callable[[], None]]]


def median_ci(values: list[float]) -> tuple[float, float]:
    """A distribution-free ~95 % confidence interval of the median of ``values``.

    The order statistics at ``n/2 ∓ 0.98·√n`` (the sign test's binomial interval, normal
    approximation): no assumption on the shape of the noise. With fewer than 6 values
    it is the range.
    """
    ordered = sorted(values)
    n = len(ordered)
    if n < 6:
        return ordered[0], ordered[-1]
    half = 0.98 * math.sqrt(n)
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return ordered[lo], ordered[hi]


def interleaved(made: Made, per_round: int, rounds: int) -> dict[Any, dict[str, Any]]:
    """Run stock (False) and fastpath (True) in alternating order; medians per request.

    Returns ``{fast: {"cpu_us": ..., "wall_us": ...}}``: the median over the rounds of
    the round's CPU (``process_time``) and wall (``perf_counter``) time per request; and
    under ``"paired"`` the median of the ratios of each round's fastpath to its stock
    figure (the two ran back to back, so a slow moment of the machine hits both: the
    ratio the rows report), with its ~95 % confidence interval (:func:`median_ci`).
    """
    cpu: dict[bool, list[float]] = {False: [], True: []}
    wall: dict[bool, list[float]] = {False: [], True: []}
    for r in range(rounds):
        for fast in (False, True) if r % 2 == 0 else (True, False):
            w0, t0 = time.perf_counter_ns(), time.process_time_ns()
            made[fast][0](per_round)
            t1, w1 = time.process_time_ns(), time.perf_counter_ns()
            cpu[fast].append((t1 - t0) / per_round / 1000)
            wall[fast].append((w1 - w0) / per_round / 1000)
    out: dict[Any, dict[str, Any]] = {
        fast: {"cpu_us": statistics.median(cpu[fast]), "wall_us": statistics.median(wall[fast])}
        for fast in (False, True)
    }
    cpu_pairs = [f / s for f, s in zip(cpu[True], cpu[False], strict=True) if s > 0]
    wall_pairs = [f / s for f, s in zip(wall[True], wall[False], strict=True) if s > 0]
    nan = (math.nan, math.nan)
    out["paired"] = {
        "cpu": statistics.median(cpu_pairs) if cpu_pairs else math.nan,
        "wall": statistics.median(wall_pairs) if wall_pairs else math.nan,
        "cpu_ci": median_ci(cpu_pairs) if cpu_pairs else nan,
        "wall_ci": median_ci(wall_pairs) if wall_pairs else nan,
    }
    return out


#: The row of the destination's first connection kept alive (an MPTCP socket in fallback).
LEARNING_ROW = "requests, 1st connection"


def _row(
    mode: str, https: bool, client: str, got: dict[Any, dict[str, Any]], per_round: int, rounds: int
) -> dict[str, Any]:
    stock, fast, paired = got[False], got[True], got["paired"]
    return {
        "mode": mode,
        "scheme": "https" if https else "http",
        "client": client,
        "stock_cpu_us": round(stock["cpu_us"], 1),
        "fast_cpu_us": round(fast["cpu_us"], 1),
        "ratio": round(paired["cpu"], 3),
        "stock_wall_us": round(stock["wall_us"], 1),
        "fast_wall_us": round(fast["wall_us"], 1),
        "wall_ratio": round(paired["wall"], 3),
        "ratio_ci": [round(x, 3) for x in paired["cpu_ci"]],
        "wall_ratio_ci": [round(x, 3) for x in paired["wall_ci"]],
        "requests": per_round * rounds,
        "rounds": rounds,
    }


def _line(row: dict[str, Any]) -> str:
    lo, hi = row["ratio_ci"]
    return (
        f"  {row['mode']:<10} {row['scheme']:<5} {row['client']:<13} CPU stock "
        f"{row['stock_cpu_us']:9.1f} µs fastpath {row['fast_cpu_us']:9.1f} µs "
        f"ratio {row['ratio']:.3f} (95% CI {lo:.3f}-{hi:.3f}) | "
        f"wall ratio {row['wall_ratio']:.3f}"
    )


MODES = ("fresh", "keep-alive", "bulk")


def measure(
    requests: int = 2400,
    rounds: int = 24,
    log: Callable[[str], None] = print,
    modes: tuple[str, ...] = MODES,
    clients: tuple[str, ...] = tuple(CLIENTS),
    bulk_rounds: int = 6,
    aa: tuple[str, ...] = ("requests",),
) -> list[dict[str, Any]]:
    """Rows of client CPU and wall µs per request, stock vs fastpath; in a private netns.

    ``aa``: clients also measured stock against stock (a row named ``"<client> A/A"``):
    the noise floor of this machine and run, which a ratio must be read against.
    """
    ca = trustme.CA()
    host = next_loopback()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(tls)
    rows = []
    with tempfile.NamedTemporaryFile(suffix=".pem") as ca_file:
        ca.cert_pem.write_to_path(ca_file.name)
        for mode in modes:
            bulk = mode == "bulk"
            n_rounds = bulk_rounds if bulk else rounds
            per_round = 1 if bulk else max(1, requests // rounds)
            for ctx in (None, tls):
                url, child = _serve(host, ctx, close=mode == "fresh")
                if bulk:
                    url += "bulk"
                first = None
                if mode == "keep-alive" and "requests" in clients:
                    # The destination's first connection, made before anything is known
                    # about it: an MPTCP socket the plain-TCP server answers in plain TCP
                    # (kernel fallback), kept alive for the row "<client>, 1st connection".
                    first = _requests(True, url, ca_file.name)
                    first[0](1)
                try:
                    for name, same in [(c, False) for c in clients] + [
                        (c, True) for c in aa if c in clients
                    ]:
                        if importlib.util.find_spec(name.split()[0]) is None:
                            continue  # that client is not installed
                        if not same:  # the learning connection, on a client closed before
                            learn, done = CLIENTS[name](True, url, ca_file.name)
                            learn(1)
                            done()
                        made = {
                            fast: CLIENTS[name](fast and not same, url, ca_file.name)
                            for fast in (False, True)
                        }
                        for run, _ in made.values():
                            run(2 if bulk else 30)  # warm-up: caches, TFO cookie
                        got = interleaved(made, per_round, n_rounds)
                        for _, close in made.values():
                            close()
                        client = f"{name} A/A" if same else name
                        rows.append(_row(mode, ctx is not None, client, got, per_round, n_rounds))
                        log(_line(rows[-1]))
                    if first is not None:
                        stock = _requests(False, url, ca_file.name)
                        stock[0](30)
                        got = interleaved({False: stock, True: first}, per_round, n_rounds)
                        row = _row(mode, ctx is not None, LEARNING_ROW, got, per_round, n_rounds)
                        rows.append(row)
                        log(_line(rows[-1]))
                        stock[1]()
                finally:
                    if first is not None:
                        first[1]()
                    child.terminate()
                    child.join(5)
    return rows


def _variant(name: str, options: Any) -> Callable[..., tuple[Runner, Callable[[], None]]]:
    """A fastpath client of kind ``name`` with ``options`` (for :func:`measure_memory`)."""

    def make(url: str, verify: str) -> tuple[Runner, Callable[[], None]]:
        if name == "requests":
            import requests

            from http_fastpath import FastpathAdapter

            session = requests.Session()
            session.mount("http://", FastpathAdapter(options=options))

            def run(n: int) -> None:
                for _ in range(n):
                    assert session.get(url).content == _BODY

            return run, session.close
        httpx, ours = _stack("httpx")
        client = httpx.Client(transport=ours.FastpathTransport(options=options))

        def run_httpx(n: int) -> None:
            for _ in range(n):
                assert client.get(url).content == _BODY

        return run_httpx, client.close

    return make


def measure_memory(
    requests: int = 2400, rounds: int = 24, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """The MPTCP fallback, paid once: fresh plain-HTTP connections to a server without MPTCP.

    Three fastpath variants against each other (client CPU per request, interleaved):
    the defaults (the destination memory gives the server plain TCP sockets after the
    first connection), ``mptcp=False`` (never an MPTCP socket) and ``mptcp_relearn=0``
    (an MPTCP socket that falls back to TCP on every connection).
    """
    from http_fastpath import FastpathOptions

    host = next_loopback()
    rows = []
    url, child = _serve(host, None, close=True)
    per_round = max(1, requests // rounds)
    try:
        for name in ("requests", "httpx"):
            if importlib.util.find_spec(name) is None:
                continue
            for label, options in (
                ("defaults (remembered as plain TCP)", FastpathOptions()),
                (
                    "mptcp_relearn=0 (MPTCP socket, falls back, every time)",
                    FastpathOptions(mptcp_relearn=0),
                ),
            ):
                made: Made = {
                    False: _variant(name, FastpathOptions(mptcp=False))(url, ""),
                    True: _variant(name, options)(url, ""),
                }
                for run, _ in made.values():
                    run(30)
                got = interleaved(made, per_round, rounds)
                for _, close in made.values():
                    close()
                base, it = got[False], got[True]
                row = {
                    "client": name,
                    "variant": label,
                    "mptcp_off_cpu_us": round(base["cpu_us"], 1),
                    "variant_cpu_us": round(it["cpu_us"], 1),
                    "ratio": round(it["cpu_us"] / base["cpu_us"], 3),
                    "requests": per_round * rounds,
                }
                rows.append(row)
                log(
                    f"  {name:<9} {label:<55} {row['variant_cpu_us']:7.1f} µs vs mptcp=False "
                    f"{row['mptcp_off_cpu_us']:7.1f} µs  ratio {row['ratio']:.3f}"
                )
    finally:
        child.terminate()
        child.join(5)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2400, help="per variant and row")
    parser.add_argument("--rounds", type=int, default=24, help="interleaved rounds")
    parser.add_argument("--mode", choices=MODES, action="append", help="only these modes")
    parser.add_argument("--client", choices=tuple(CLIENTS), action="append", help="only these")
    args = parser.parse_args(argv)
    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"needs a private network namespace (root or user namespaces): {reason}")
    print("client CPU and wall time per request (loopback, default options after learning)")
    measure(
        args.requests,
        args.rounds,
        modes=tuple(args.mode or MODES),
        clients=tuple(args.client or CLIENTS),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
