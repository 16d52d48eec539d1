"""``http-fastpath demo``: the round trip we save, measured and verified by the kernel.

It builds the network lab (client and server namespaces, 50 ms round trip), starts an
HTTP and an HTTPS server in the server namespace and times cold requests — a new
connection each — from stock clients and from their fastpath counterparts, interleaved.
The SYN-data column is what the *server's* kernel saw (``TCPI_OPT_SYN_DATA`` of each
accepted connection); the TFO column is the client namespace's
``TcpExt.TCPFastOpenActive`` counter. Where no namespace can be created it says why
and falls back to a loopback proof (TFO/MPTCP observed, no timing claim).
"""

from __future__ import annotations

import contextlib
import math
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import TextIO

from .._core.dialer import dial
from .._core.options import FastpathOptions
from . import _netns
from ._lab import Lab, LabError, PathSpec
from ._measure import PairResult, TLSConfig, available_pairs, ttfb_pairs
from ._servers import Server

RTT_MS = 50.0
SAMPLES = 10
BUDGET_S = 45.0
_REQUEST = b"GET /bytes?n=64 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"


def demo(out: TextIO = sys.stdout, samples: int = SAMPLES) -> int:
    """``http-fastpath demo``: stock and fastpath clients timed side by side in the lab.

    Writes the table to ``out`` (``samples`` cold requests per client and scheme) and
    returns the process exit status: 1 if a fastpath row saw no SYN data. Without a lab
    (no root, no user namespaces) it says why and runs a loopback proof instead.
    """
    started = time.monotonic()
    reason = _netns.enter()
    if reason is not None:
        out.write(f"no network lab here: {reason}.\n")
        return _host_loopback_proof(out)
    try:
        import trustme
    except ImportError:
        out.write(
            "the demo needs trustme for its test certificates: pip install 'http_fastpath[demo]'\n"
        )
        return 1
    out.write(f"setting up the lab: client and server namespaces, {RTT_MS:g} ms round trip ...\n")
    out.flush()
    try:
        lab = Lab([PathSpec(delay_ms=RTT_MS / 2)], mptcp=True)
    except LabError as exc:
        out.write(
            f"no network lab here: {exc}\nfalling back to the loopback proof (no timing).\n\n"
        )
        return loopback_proof(out)
    with lab, _servers(lab, trustme.CA()) as (servers, tls):
        pairs, missing = available_pairs(tls, dialer=None)
        _header(out, samples)
        results: list[PairResult] = []
        deadline = started + BUDGET_S
        for scheme, server in servers:
            url = f"{scheme}://{lab.service_address}:{server.port}"
            for pair in pairs:
                result = ttfb_pairs(lab.client, server, url, pair, samples, deadline=deadline)
                _rows(out, result)
                results.append(result)
        for pair in pairs:
            for kind in pair:
                kind.close()
        _footer(out, results, missing, time.monotonic() - started)
    bad = [r for r in results if r.fast_syn_data == 0]
    return 1 if bad or not results else 0


@contextlib.contextmanager
def _servers(lab: Lab, ca: object) -> Iterator[tuple[list[tuple[str, Server]], TLSConfig]]:
    issue_cert = ca.issue_cert  # type: ignore[attr-defined]
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issue_cert(lab.service_address).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="fastpath-demo-") as tmp:
        ca_file = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(ca_file)  # type: ignore[attr-defined]
        with lab.server.entered():
            plain = Server(host="0.0.0.0", tfo=True)
            secure = Server(host="0.0.0.0", tfo=True, tls=server_ctx)
        with plain, secure:
            yield [("http", plain), ("https", secure)], TLSConfig(client_ctx, ca_file)


def _header(out: TextIO, samples: int) -> None:
    out.write(
        f"\ncold requests (a new connection each), {samples} interleaved samples per row; "
        "TTFB = request call to response headers\n\n"
    )
    out.write(
        f"{'client':<38} {'scheme':<6} {'TTFB median':>11} {'p10-p90':>15}  "
        f"{'SYN data*':>9}  {'TFO**':>5}  {'fast/stock':>10}\n"
    )
    out.write("-" * 104 + "\n")
    out.flush()


def _fmt(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{value:5.1f}"


def _rows(out: TextIO, r: PairResult) -> None:
    per = r.connections // 2 if r.connections else 0
    for label, summary, syn, counters, ratio in (
        (r.stock_label, r.stock, r.stock_syn_data, r.stock_counters, ""),
        (r.fast_label, r.fast, r.fast_syn_data, r.fast_counters, f"{r.ratio:.2f}"),
    ):
        tfo = counters.get("TcpExt.TCPFastOpenActive", 0)
        spread = f"{_fmt(summary.p10)}-{_fmt(summary.p90)} ms"
        out.write(
            f"{label:<38} {r.scheme:<6} {_fmt(summary.median):>8} ms {spread:>15}  "
            f"{f'{syn}/{per}':>9}  {tfo:>5}  {ratio:>10}\n"
        )
    for error in r.errors:
        out.write(f"    ! {error}\n")
    out.flush()


def _footer(out: TextIO, results: list[PairResult], missing: list[str], elapsed: float) -> None:
    out.write("-" * 104 + "\n")
    out.write(
        "*  connections whose SYN carried the request (or TLS ClientHello), as seen by the "
        "server's kernel (TCP_INFO)\n"
        "** client namespace kernel counter TcpExt.TCPFastOpenActive (delta over the row)\n"
        "   round trips: stock http 2, fastpath http 1 (ratio limit 0.50); "
        "stock https 3, fastpath https 2 (limit 0.67)\n"
    )
    for name in missing:
        out.write(f"   not shown: {name}\n")
    out.write(f"\nfinished in {elapsed:.1f} s\n")


def _fetch(server: Server, options: FastpathOptions) -> str:
    with dial(server.host, server.port, options=options, timeout=5) as sock:
        sock.sendall(_REQUEST)
        while sock.recv(65536):
            pass
        info = sock.connection_info()
    return info.tfo.value + (f", mptcp={info.mptcp}" if info.mptcp is not None else "")


def _host_loopback_proof(out: TextIO) -> int:
    """Without a private namespace: the loopback proof if the host allows TFO both ways."""
    try:
        value = int(_netns.get_sysctl("net.ipv4.tcp_fastopen"))
    except (OSError, ValueError):
        value = 0
    if value & 3 != 3:
        out.write(
            "The demo needs root or unprivileged user namespaces for its lab, or at least a\n"
            "host with TCP Fast Open on for clients and servers for a loopback proof:\n"
            f"net.ipv4.tcp_fastopen is {value}; enable with: sudo sysctl -w net.ipv4.tcp_fastopen=3\n"
        )
        return 1
    out.write("falling back to the loopback proof on this host (no timing claim).\n\n")
    return loopback_proof(out)


def loopback_proof(out: TextIO, connections: int = 5) -> int:
    """TFO and MPTCP observed on loopback in the private namespace; no timing claim."""
    rows = [
        ("stock TCP", FastpathOptions(tfo=False, mptcp=False)),
        ("fastpath TFO", FastpathOptions(tfo=True, mptcp=False)),
        ("fastpath TFO+MPTCP", FastpathOptions(tfo=True, mptcp=True)),
    ]
    out.write(
        f"{'client':<20} {'conn':>4}  {'server saw SYN data':<20} {'server saw MPTCP':<17} client ConnectionInfo\n"
    )
    total_syn = 0
    for label, options in rows:
        with Server(tfo=True, mptcp=True) as server:
            for i in range(connections):
                status = _fetch(server, options)
                rec = server.records[-1]
                total_syn += rec.syn_data and options.tfo
                out.write(
                    f"{label:<20} {i + 1:>4}  {str(rec.syn_data):<20} {str(rec.is_mptcp):<17} {status}\n"
                )
                out.flush()
    out.write(
        f"\nfastpath connections whose SYN carried the request: {total_syn} "
        f"of {2 * connections} (the first to each server fetches the TFO cookie)\n"
    )
    return 0 if total_syn > 0 else 1
