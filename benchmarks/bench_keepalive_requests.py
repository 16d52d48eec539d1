"""Keep-alive cost of FastpathAdapter vs stock requests (not a test: prints numbers).

Every request after the first reuses one pooled connection, so this measures the
per-request overhead the adapter adds on a warm connection (the fast paths themselves
act on new connections). Runs in a private network namespace against a minimal
keep-alive responder in a separate process (so the server neither shares the GIL nor
dominates the timing); stock and fastpath sessions are interleaved in rounds so drift
hits both equally. Prints the median per-request time and the ratio fastpath / stock.

    sudo python -m benchmarks.bench_keepalive_requests [--requests 6000] [--rounds 12]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time

import requests
import trustme

from benchmarks.bench_fresh_cpu import _BODY, _serve
from http_fastpath import FastpathAdapter
from http_fastpath.netlab import enter_private_netns, next_loopback


def _session(fast: bool) -> requests.Session:
    session = requests.Session()
    if fast:
        adapter = FastpathAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


def _run(session: requests.Session, url: str, n: int, verify: str) -> tuple[list[int], int]:
    """Wall-clock ns per request, and the client's CPU ns for all ``n`` requests."""
    times = []
    get = session.get
    cpu0 = time.process_time_ns()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        resp = get(url, verify=verify)
        assert resp.content == _BODY
        times.append(time.perf_counter_ns() - t0)
    return times, time.process_time_ns() - cpu0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keep-alive: FastpathAdapter vs stock")
    parser.add_argument("--requests", type=int, default=6000, help="per variant and scheme")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds")
    args = parser.parse_args(argv)
    if args.requests < args.rounds or args.rounds < 1:
        parser.error("--requests must be >= --rounds >= 1")
    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"needs a private network namespace (root or user namespaces): {reason}")
    ca = trustme.CA()
    host = next_loopback()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(tls)
    with tempfile.NamedTemporaryFile(suffix=".pem") as ca_file:
        ca.cert_pem.write_to_path(ca_file.name)
        print(f"{args.requests} keep-alive GETs per variant and scheme (client process only)")
        print(
            f"{'scheme':6} {'median wall µs: stock':>22} {'fastpath':>9} {'ratio':>6}"
            f" {'mean CPU µs: stock':>19} {'fastpath':>9} {'ratio':>6}"
        )
        for ctx in (None, tls):
            url, child = _serve(host, ctx, close=False)
            try:
                samples: dict[bool, list[int]] = {False: [], True: []}
                cpu: dict[bool, int] = {False: 0, True: 0}
                sessions = {fast: _session(fast) for fast in (False, True)}
                for session in sessions.values():
                    _run(session, url, 300, ca_file.name)  # warm-up: connect, caches
                per_round = args.requests // args.rounds
                for r in range(args.rounds):
                    for fast in (False, True) if r % 2 == 0 else (True, False):
                        wall, used = _run(sessions[fast], url, per_round, ca_file.name)
                        samples[fast] += wall
                        cpu[fast] += used
                for session in sessions.values():
                    session.close()
            finally:
                child.terminate()
                child.join(5)
            wall_stock = statistics.median(samples[False]) / 1000
            wall_fast = statistics.median(samples[True]) / 1000
            n = len(samples[False])
            cpu_stock, cpu_fast = cpu[False] / n / 1000, cpu[True] / n / 1000
            scheme = url.split(":", 1)[0]
            print(
                f"{scheme:6} {wall_stock:22.1f} {wall_fast:9.1f} {wall_fast / wall_stock:6.3f}"
                f" {cpu_stock:19.1f} {cpu_fast:9.1f} {cpu_fast / cpu_stock:6.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
