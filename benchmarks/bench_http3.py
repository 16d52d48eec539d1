"""EXPERIMENTAL HTTP/3: time to first byte at 10/50/200 ms RTT, against stock HTTPS.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench --only http3``). In the
network lab (two namespaces joined by the TUN relay that sets the delay), the server
namespace runs the TCP + TLS 1.3 test server of the cold TTFB rows, two aioquic HTTP/3
servers (``tests/_h3server.py``: one takes 0-RTT, one resumes but refuses it) and a TCP
origin that advertises ``Alt-Svc: h3`` for the first. Every sample is ``GET /bytes?n=64``
on a new connection, timed from the request call to the response headers; the client
objects are built before the clock starts. The variants (``VARIANTS``), one sample each
per round, in an order that rotates from round to round:

* ``stock``: ``httpx.Client()`` over TCP + TLS 1.3, no TCP Fast Open (3 round trips);
* ``tfo``: ``httpx.Client(transport=FastpathTransport())``, the TFO cookie learned in a
  warm-up: the ClientHello rides in the SYN (2 round trips);
* ``h3_cold``: a new ``HTTP3Transport`` (no ticket): full QUIC handshake (2 round trips);
* ``h3_0rtt``: one ``HTTP3Transport`` for the whole run, resuming with the ticket of its
  previous connection, the GET in 0-RTT (1 round trip). The server's record of the packet
  type that carried each request is the proof (``server_0rtt``);
* ``h3_no_early``: the same with ``early_data=False`` (resumed, 2 round trips);
* ``h3_refused``: resumed against the server that refuses 0-RTT (sent again at 1-RTT);
* ``upgrade``: a new ``FastpathTransport(http3="auto")`` per sample; its 1st request goes
  over TCP and learns ``Alt-Svc``, the 2nd (the one timed) over HTTP/3, full handshake.

Before each round the HTTP/3 servers close their connections (as a server going idle
does), after waiting long enough for the session tickets to have arrived, so the resumed
variants start a new connection every sample.

    python -m benchmarks.bench_http3 [--samples 10] [--rtt 50 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

PATH = "/bytes?n=64"
VARIANTS = ("stock", "tfo", "h3_cold", "h3_0rtt", "h3_no_early", "h3_refused", "upgrade")
LABELS = {
    "stock": "stock HTTPS (httpx, TCP + TLS 1.3)",
    "tfo": "TFO + TLS 1.3 (FastpathTransport)",
    "h3_cold": "HTTP/3, full handshake",
    "h3_0rtt": "HTTP/3, resumed, GET in 0-RTT",
    "h3_no_early": "HTTP/3, resumed, early_data=False",
    "h3_refused": "HTTP/3, resumed, server refuses 0-RTT",
    "upgrade": 'http3="auto": 2nd request (1st over HTTP/3)',
}
#: round trips before the first response byte (the physics of each variant)
ROUND_TRIPS = {
    "stock": 3,
    "tfo": 2,
    "h3_cold": 2,
    "h3_0rtt": 1,
    "h3_no_early": 2,
    "h3_refused": 2,
    "upgrade": 2,
}
#: issue #15's targets at 50 ms RTT, ratio to stock HTTPS (shown, never asserted)
TARGETS = {"h3_0rtt": 0.36, "h3_cold": 0.70}

Log = Callable[[str], None]


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"n": 0, "median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    if len(ms) == 1:
        return {"n": 1, "median": ms[0], "p10": ms[0], "p90": ms[0]}
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    return {"n": len(ms), "median": statistics.median(ms), "p10": deciles[0], "p90": deciles[-1]}


def _ratio_ci(mine: dict[int, float], stock: dict[int, float]) -> list[float] | None:
    """~95 % interval of the median of the per-round ratios to stock (sign test, as the
    CPU rows); None without stock rounds to pair with."""
    from .bench_fresh_cpu import median_ci

    ratios = [mine[i] / stock[i] for i in mine if i in stock and stock[i] > 0]
    if len(ratios) < 2:
        return None
    low, high = median_ci(ratios)
    return [round(low, 4), round(high, 4)]


def _head(client: Any, url: str) -> tuple[float, Any]:
    """Seconds from the request call to the response headers; the response (read)."""
    start = time.perf_counter()
    with client.stream("GET", url) as response:
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        response.read()
    return elapsed, response


class _Clients:
    """The client side of one RTT: what each variant keeps between samples."""

    def __init__(self, ca_file: str, context: ssl.SSLContext) -> None:
        import httpx

        from http_fastpath import FastpathTransport, HTTP3Transport

        self.httpx = httpx
        self.ca_file = ca_file
        self.context = context
        self.fastpath = FastpathTransport
        self.h3 = HTTP3Transport
        self.resumed = {
            "h3_0rtt": self._h3_client(),
            "h3_no_early": self._h3_client(early_data=False),
            "h3_refused": self._h3_client(),
        }

    def _h3_client(self, *, early_data: bool = True) -> Any:
        transport = self.h3(verify=self.ca_file, backend="userspace", early_data=early_data)
        return self.httpx.Client(transport=transport, trust_env=False, timeout=10)

    def tcp_client(self, fastpath: bool, *, http3: bool = False) -> Any:
        if fastpath:
            transport = self.fastpath(verify=self.context, http3="auto" if http3 else False)
            return self.httpx.Client(transport=transport, trust_env=False, timeout=10)
        return self.httpx.Client(verify=self.context, trust_env=False, timeout=10)

    def close(self) -> None:
        for client in self.resumed.values():
            client.close()


@contextlib.contextmanager
def _servers(lab: Any) -> Iterator[tuple[dict[str, str], list[Any], str, ssl.SSLContext]]:
    """The servers of one RTT, in the lab's server namespace: URLs per variant, the two
    HTTP/3 servers (accept, refuse), the CA file and a client context trusting it."""
    import trustme

    from tests._altsvc_server import AltSvcOrigin
    from tests._h3server import H3TestServer

    from ._suite import http_servers

    ca = trustme.CA()
    address = lab.service_address
    with contextlib.ExitStack() as stack:
        servers, tls = stack.enter_context(http_servers(lab, ca))
        tcp = f"https://{address}:{servers['https'].port}{PATH}"
        with lab.server.entered():  # the servers' threads and sockets live there
            accept = stack.enter_context(H3TestServer(ca, address, host=address))
            refuse = stack.enter_context(
                H3TestServer(ca, address, host=address, early_data="reject")
            )
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(address).configure_cert(server_ctx)
            origin = stack.enter_context(
                AltSvcOrigin(server_ctx, f'h3=":{accept.port}"', host=address)
            )
        urls = {
            "stock": tcp,
            "tfo": tcp,
            "h3_cold": accept.url(PATH),
            "h3_0rtt": accept.url(PATH),
            "h3_no_early": accept.url(PATH),
            "h3_refused": refuse.url(PATH),
            "upgrade": origin.url(PATH),
        }
        yield urls, [accept, refuse], tls.ca_file, tls.context


def _one_rtt(
    rtt: int,
    samples: int,
    variants: tuple[str, ...],
    log: Log,
    budget_s: float,
) -> list[dict[str, Any]]:
    from http_fastpath import connection_info
    from http_fastpath.netlab import Lab, PathSpec

    times: dict[str, list[float]] = {v: [] for v in variants}
    by_round: dict[str, dict[int, float]] = {v: {} for v in variants}
    evidence: dict[str, dict[str, int]] = {v: {} for v in variants}
    errors: dict[str, list[str]] = {v: [] for v in variants}
    upgrade_tcp: list[float] = []
    with Lab([PathSpec(delay_ms=rtt / 2)]) as lab, _servers(lab) as (urls, h3s, ca_file, ctx):
        accept = h3s[0]

        def note(variant: str, key: str) -> None:
            evidence[variant][key] = evidence[variant].get(key, 0) + 1

        def sample(variant: str, clients: _Clients, round_: int = -1) -> None:
            url = urls[variant]
            server = h3s[1] if variant == "h3_refused" else accept
            seen = len(server.epochs)
            if variant in ("stock", "tfo"):
                with clients.tcp_client(variant == "tfo") as client:
                    elapsed, response = _head(client, url)
            elif variant == "h3_cold":
                with clients._h3_client() as client:
                    elapsed, response = _head(client, url)
            elif variant == "upgrade":
                with clients.tcp_client(True, http3=True) as client:
                    first, _ = _head(client, url)
                    upgrade_tcp.append(first)
                    seen = len(server.epochs)
                    elapsed, response = _head(client, url)
            else:
                elapsed, response = _head(clients.resumed[variant], url)
            times[variant].append(elapsed)
            by_round[variant][round_] = elapsed
            info = connection_info(response)
            if info is not None:
                note(variant, f"transport={info.transport}")
                if info.transport == "quic":
                    note(variant, f"resumed={info.resumed}")
                    note(variant, f"early_data={info.early_data}")
                if info.tfo is not None and info.transport != "quic":
                    note(variant, f"tfo={info.tfo.name}")
            if variant.startswith("h3") or variant == "upgrade":
                # the server appends before it answers: the record is there by now
                for epoch in server.epochs[seen:]:
                    note(variant, f"server_{epoch}")

        def run() -> None:
            clients = _Clients(ca_file, ctx)
            try:
                # warm-up: imports, the TFO cookie, a first ticket for the resumed ones
                for variant in variants:
                    if variant in ("tfo", "stock", "upgrade", "h3_cold"):
                        sample(variant, clients)
                        times[variant].clear()
                        by_round[variant].clear()
                        evidence[variant].clear()
                upgrade_tcp.clear()
                for variant in clients.resumed:
                    if variant in variants:
                        _head(clients.resumed[variant], urls[variant])
                deadline = time.monotonic() + budget_s
                for i in range(samples):
                    if time.monotonic() > deadline and i >= 2:
                        for v in variants:
                            errors[v].append(f"time budget reached after {i} samples")
                        break
                    time.sleep(2 * rtt / 1000 + 0.02)  # the session tickets arrive
                    for h3 in h3s:
                        h3.close_connections()
                    time.sleep(rtt / 1000 + 0.02)  # ...and the closes reach the client
                    k = i % len(variants)
                    for variant in variants[k:] + variants[:k]:
                        try:
                            sample(variant, clients, i)
                        except Exception as exc:  # reported in the row, never hidden
                            errors[variant].append(f"{type(exc).__name__}: {exc}")
            finally:
                clients.close()

        lab.client.run(run)
    stock = _summary(times["stock"])["median"] if "stock" in variants else float("nan")
    rows = []
    for variant in variants:
        s = _summary(times[variant])
        row: dict[str, Any] = {
            "rtt_ms": rtt,
            "variant": variant,
            "label": LABELS[variant],
            "round_trips": ROUND_TRIPS[variant],
            "ttfb": s,
            "rtts": round(s["median"] / rtt, 3),
            "ratio": round(s["median"] / stock, 4),
            "ratio_ci": None
            if variant == "stock"
            else _ratio_ci(by_round[variant], by_round.get("stock", {})),
            "evidence": dict(sorted(evidence[variant].items())),
            "errors": errors[variant][:5],
        }
        if variant == "upgrade" and upgrade_tcp:
            row["first_request_tcp"] = _summary(upgrade_tcp)
        rows.append(row)
        log(
            f"  RTT {rtt:>3} ms {LABELS[variant]:<45} {s['median']:7.1f} ms "
            f"({row['rtts']:.2f} RTT)  x stock {row['ratio']:.3f}  n={s['n']}"
            + (f"  errors {len(errors[variant])}" if errors[variant] else "")
        )
    return rows


def measure(
    log: Log = print,
    *,
    samples: int = 10,
    rtts: tuple[int, ...] = (10, 50, 200),
    variants: tuple[str, ...] = VARIANTS,
) -> dict[str, Any]:
    """Rows (one per RTT and variant): median TTFB, in RTTs and × stock of the same run.

    Needs the network lab (call from a private network namespace: ``scripts/bench`` and
    :func:`main` enter one). Bounded: at most 30 samples, and each RTT stops sampling
    after its time budget (at least 2 samples)."""
    samples = max(1, min(samples, 30))
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants: {sorted(unknown)}")
    variants = tuple(v for v in VARIANTS if v in variants)
    rows = []
    for rtt in rtts:
        budget = 30 + samples * rtt * 0.03
        rows += _one_rtt(rtt, samples, variants, log, budget)
    return {
        "rows": rows,
        "samples": samples,
        "path": PATH,
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def report(results: dict[str, Any]) -> list[str]:
    """The Markdown table of :func:`measure`'s results."""
    lines = [
        "| RTT | variant | round trips | n | TTFB ms (p10–p90) | in RTTs | × stock [95% CI] | "
        "evidence (client `connection_info`; server: packet type of the request) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        t = r["ttfb"]
        target = TARGETS.get(r["variant"]) if r["rtt_ms"] == 50 else None
        ci = r.get("ratio_ci")
        ratio = f"**{r['ratio']:.3f}**" + (f" [{ci[0]:.3f}–{ci[1]:.3f}]" if ci else "")
        ratio += f" (target ≤ {target})" if target else ""
        evidence = ", ".join(f"{k} {v}" for k, v in r["evidence"].items())
        if r.get("first_request_tcp"):
            evidence += f"; 1st request over TCP {r['first_request_tcp']['median']:.1f} ms"
        if r["errors"]:
            evidence += "; errors: " + "; ".join(r["errors"])
        lines.append(
            f"| {r['rtt_ms']} ms | {r['label']} | {r['round_trips']} | {t['n']} | "
            f"{t['median']:.1f} ({t['p10']:.1f}–{t['p90']:.1f}) | {r['rtts']:.2f} | {ratio} | "
            f"{evidence} |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="samples per row (1-30)")
    parser.add_argument(
        "--rtt", type=int, action="append", help="round-trip times in ms (default 10 50 200)"
    )
    parser.add_argument("--variant", choices=VARIANTS, action="append", help="default: all")
    args = parser.parse_args(argv)
    from http_fastpath.netlab import enter_private_netns

    reason = enter_private_netns()
    if reason is not None:
        print(f"needs a private network namespace: {reason}", file=sys.stderr)
        return 1
    results = measure(
        samples=args.samples,
        rtts=tuple(args.rtt or (10, 50, 200)),
        variants=tuple(args.variant or VARIANTS),
    )
    for line in report(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
