"""The measurements. Every loop is bounded in count and in time; results are plain dicts."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import trustme

from http_fastpath import FastpathOptions
from http_fastpath._core.dialer import dial
from http_fastpath._core.linux import read_tcp_info
from http_fastpath._core.sockets import new_socket
from http_fastpath.netlab import Lab, PathSpec, Server, counters_delta
from http_fastpath.netlab._measure import (
    COUNTERS,
    TLSConfig,
    available_pairs,
    summarize,
    ttfb_pairs,
)
from http_fastpath.netlab._namespace import _read_netstat

Log = Callable[[str], None]
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def http_servers(
    lab: Lab, ca: trustme.CA, *, mptcp: bool = False
) -> Iterator[tuple[dict[str, Server], TLSConfig]]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(lab.service_address).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with tempfile.TemporaryDirectory(prefix="fastpath-bench-") as tmp:
        ca_file = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        with lab.server.entered():
            plain = Server(host="0.0.0.0", mptcp=mptcp)
            secure = Server(host="0.0.0.0", mptcp=mptcp, tls=server_ctx)
        with plain, secure:
            yield {"http": plain, "https": secure}, TLSConfig(client_ctx, ca_file)


# -- lab calibration ------------------------------------------------------------------------

#: the httpx-style stacks the benchmarks compare (each against its own stock)
STACKS = ("httpx", "httpx2")


def _connect_ms(host: str, port: int, samples: int) -> list[tuple[float, float]]:
    """(kernel handshake RTT, user-space connect time) per sample, in ms."""
    out = []
    for _ in range(samples):
        with new_socket(socket.AF_INET, socket.SOCK_STREAM, 0) as sock:
            sock.settimeout(5)
            start = time.perf_counter()
            sock.connect((host, port))
            elapsed = (time.perf_counter() - start) * 1000
            info = read_tcp_info(sock)
            out.append((info.rtt_us / 1000 if info else float("nan"), elapsed))
    return out


def calibration(log: Log, samples: int = 20) -> dict[str, Any]:
    """Added RTT vs setting (delayed path minus a zero-delay path), relay ceiling.

    The instrument is the client kernel's RTT sample of the TCP handshake (``tcpi_rtt``
    right after connect, timed at packet arrival); the user-space connect time, which
    also includes this process's scheduling, is reported next to it.
    """
    rows = []
    with Lab([PathSpec(), PathSpec()], mptcp=False) as lab:
        with lab.server.entered():
            server = Server(host="0.0.0.0")
        with server:
            for rtt in (10, 50, 200):
                lab.set(1, delay_ms=rtt / 2)
                n = samples if rtt < 200 else 10
                base = lab.client.run(_connect_ms, lab.server_address(0), server.port, n)
                got = lab.client.run(_connect_ms, lab.server_address(1), server.port, n)
                kernel = [k for k, _ in got]
                added = statistics.median(kernel) - statistics.median(k for k, _ in base)
                user = statistics.median(u for _, u in got) - statistics.median(u for _, u in base)
                rows.append(
                    {
                        "rtt_setting_ms": rtt,
                        "samples": n,
                        "base_median_ms": round(statistics.median(k for k, _ in base), 3),
                        "measured_median_ms": round(statistics.median(kernel), 3),
                        "added_ms": round(added, 3),
                        "error_ms": round(added - rtt, 3),
                        "p10_p90_ms": [round(v, 3) for v in _p10_p90(kernel)],
                        "connect_time_added_ms": round(user, 3),
                    }
                )
                log(f"  RTT {rtt} ms: added {added:.2f} ms (connect time {user:.2f} ms)")
            lab.set(1, delay_ms=0)
            ceiling = lab.client.run(_bulk, lab.server_address(1), server.port, 30_000_000, False)
            log(f"  relay ceiling (one TCP flow, no delay/limit): {ceiling['mbit_s']:.0f} Mbit/s")
    return {"rtt": rows, "relay_ceiling": ceiling}


def _p10_p90(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=10, method="inclusive")
    return q[0], q[-1]


# -- cold TTFB ------------------------------------------------------------------------------


def cold_ttfb(log: Log, samples: int = 20, rtts: tuple[int, ...] = (10, 50, 200)) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    ca = trustme.CA()
    for rtt in rtts:
        with Lab([PathSpec(delay_ms=rtt / 2)]) as lab, http_servers(lab, ca) as (servers, tls):
            pairs, missing = available_pairs(tls, stacks=STACKS)
            for scheme, server in servers.items():
                url = f"{scheme}://{lab.service_address}:{server.port}"
                for pair in pairs:
                    deadline = time.monotonic() + 60 + samples * rtt * 0.01
                    r = ttfb_pairs(lab.client, server, url, pair, samples, deadline=deadline)
                    row = {"rtt_ms": rtt, **r.as_dict()}
                    rows.append(row)
                    log(
                        f"  RTT {rtt:>3} ms {scheme:<5} {r.library:<11} stock {r.stock.median:7.1f} ms"
                        f"  fastpath {r.fast.median:7.1f} ms  ratio {r.ratio:.3f}"
                        f"  SYN data {r.fast_syn_data}/{r.connections // 2}"
                    )
            for pair in pairs:
                for kind in pair:
                    kind.close()
    return {"rows": rows, "missing": missing}


# -- keep-alive -----------------------------------------------------------------------------


def keepalive(log: Log, requests: int = 30, rounds: int = 4) -> dict[str, Any]:
    """Per-request time over one kept-alive connection: at 50 ms RTT and on loopback.

    Only the adapters (same client library on both sides); http.client vs the bare
    dialer would compare two different HTTP implementations, not the fast path.
    """
    rows = []
    ca = trustme.CA()
    with Lab([PathSpec(delay_ms=25)]) as lab, http_servers(lab, ca) as (servers, tls):
        pairs, _ = available_pairs(tls, dialer=None, stacks=STACKS)
        for where, ns in (("lab 50 ms RTT", lab.client), ("loopback (no delay)", lab.server)):
            # loopback: many short rounds, so bursts of load from other jobs hit both sides
            n, rounds_here = (requests, rounds) if ns is lab.client else (40, 16)
            for scheme, server in servers.items():
                url = f"{scheme}://{lab.service_address}:{server.port}"
                for stock, fast in pairs:
                    times: dict[bool, list[float]] = {False: [], True: []}
                    for i in range(rounds_here):
                        for kind in (stock, fast) if i % 2 == 0 else (fast, stock):
                            times[kind.fastpath] += ns.run(kind.keepalive, url, n)
                    s, f = summarize(times[False]), summarize(times[True])
                    rows.append(
                        {
                            "where": where,
                            "scheme": scheme,
                            "library": fast.library,
                            "stock_label": stock.label,
                            "fast_label": fast.label,
                            "stock": s.as_dict(),
                            "fast": f.as_dict(),
                            "ratio": round(f.median / s.median, 4),
                        }
                    )
                    log(
                        f"  {where:<20} {scheme:<5} {fast.library:<11} stock {s.median:7.3f} ms"
                        f"  fastpath {f.median:7.3f} ms  ratio {f.median / s.median:.3f}"
                    )
        for pair in pairs:
            for kind in pair:
                kind.close()
    return {"rows": rows}


# -- bulk transfers: MPTCP goodput and failover ---------------------------------------------


def _bulk(
    host: str,
    port: int,
    size: int,
    mptcp: bool,
    *,
    at_half: Callable[[], None] | None = None,
    stall_s: float = 10.0,
    budget_s: float = 60.0,
) -> dict[str, Any]:
    """Download ``size`` random bytes; time, goodput, sha256 check, progress timeline."""
    before = _read_netstat()
    options = FastpathOptions(tfo=False, mptcp=mptcp)
    start = time.perf_counter()
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    got, digest, expected, outcome = 0, hashlib.sha256(), "", "complete"
    subflows = None
    with dial(host, port, options=options, timeout=5, socket_options=[NODELAY]) as sock:
        sock.sendall(f"GET /random?n={size} HTTP/1.1\r\nHost: lab\r\n\r\n".encode())
        sock.settimeout(stall_s)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before headers")
            head += chunk
        header, _, body = head.partition(b"\r\n\r\n")
        expected = header.lower().split(b"x-sha256: ")[1].split(b"\r\n")[0].decode()
        digest.update(body)
        got = len(body)
        buf = bytearray(262144)
        half_done = at_half is None
        deadline = time.monotonic() + budget_s
        while got < size:
            if time.monotonic() > deadline:
                outcome = "budget exceeded"
                break
            try:
                n = sock.recv_into(buf)
            except TimeoutError:
                outcome = f"stalled (no data for {stall_s:g} s)"
                break
            except OSError as exc:
                outcome = f"failed: {exc}"
                break
            if not n:
                outcome = "closed early"
                break
            digest.update(memoryview(buf)[:n])
            got += n
            now = time.perf_counter() - start
            if now - timeline[-1][0] >= 0.05:
                timeline.append((round(now, 3), got))
            if not half_done and got >= size // 2:
                half_done = True
                timeline.append((round(now, 3), got))
                if at_half is not None:
                    at_half()
        elapsed = time.perf_counter() - start
        timeline.append((round(elapsed, 3), got))
        info = sock.connection_info()
        subflows = info.mptcp_subflows
        is_mptcp = info.mptcp
    intact = outcome == "complete" and digest.hexdigest() == expected
    return {
        "mptcp_requested": mptcp,
        "mptcp": is_mptcp,
        "subflows": subflows,
        "bytes": got,
        "size": size,
        "seconds": round(elapsed, 3),
        "mbit_s": got * 8 / elapsed / 1e6,
        "outcome": outcome,
        "sha256_intact": intact,
        "timeline": timeline,
        "counters": counters_delta(before, _read_netstat(), COUNTERS),
    }


def _relay_cpu_seconds(lab: Lab) -> float:
    relay = lab._relay
    if relay is None:
        return 0.0
    fields = open(f"/proc/{relay.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _steal_seconds() -> float:
    """CPU time the hypervisor took from this VM (all CPUs), from /proc/stat."""
    fields = open("/proc/stat").readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def _relay_timing(before: list[Any], after: list[Any]) -> list[dict[str, Any]]:
    """Per path and direction: packets, mean/max lateness of their release, queue drops."""
    rows = []
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        for direction in ("up", "down"):
            x, y = b[direction], a[direction]
            packets = y["forwarded"] - x["forwarded"]
            late = y["late_us_sum"] - x["late_us_sum"]
            rows.append(
                {
                    "path": i + 1,
                    "direction": direction,
                    "packets": packets,
                    "mean_late_us": round(late / packets, 1) if packets else 0.0,
                    "max_late_us": y["late_us_max"],
                    "late_over_1ms": y["late_over_1ms"] - x["late_over_1ms"],
                    "late_over_10ms": y["late_over_10ms"] - x["late_over_10ms"],
                    "queue_drops": y["queue"] - x["queue"],
                }
            )
    return rows


def mptcp(
    log: Log, samples: int = 8, size: int = 8_000_000, failover_size: int = 40_000_000
) -> dict[str, Any]:
    spec = PathSpec(delay_ms=5, rate_mbit=20, queue_ms=50)
    goodput: dict[str, list[dict[str, Any]]] = {"mptcp": [], "tcp": []}
    failover: dict[str, list[dict[str, Any]]] = {"mptcp": [], "tcp": []}
    with Lab([spec, spec]) as lab:
        with lab.server.entered():
            server = Server(host="0.0.0.0", mptcp=True)
        with server:
            host = lab.service_address
            lab.client.run(_bulk, host, server.port, 1_000_000, True)  # warm-up
            cpu0, t0, stats0 = _relay_cpu_seconds(lab), time.monotonic(), lab.stats()
            steal0 = _steal_seconds()
            for i in range(samples):
                for use in (True, False) if i % 2 == 0 else (False, True):
                    r = lab.client.run(_bulk, host, server.port, size, use)
                    r.pop("timeline")
                    goodput["mptcp" if use else "tcp"].append(r)
                    log(
                        f"  goodput {'MPTCP' if use else 'TCP  '} {r['mbit_s']:6.2f} Mbit/s ({r['subflows']} subflows)"
                    )
            relay_cpu = (_relay_cpu_seconds(lab) - cpu0) / (time.monotonic() - t0)
            timing = _relay_timing(stats0, lab.stats())
            steal = (_steal_seconds() - steal0) / (time.monotonic() - t0)
            for use in (True, False):
                for _ in range(2):
                    cut = False

                    def cut_path0() -> None:
                        nonlocal cut
                        lab.cut(0)
                        cut = True

                    r = lab.client.run(
                        _bulk,
                        host,
                        server.port,
                        failover_size,
                        use,
                        at_half=cut_path0,
                        stall_s=10.0,
                    )
                    lab.restore(0)
                    time.sleep(0.5)
                    r["path0_cut"] = cut
                    failover["mptcp" if use else "tcp"].append(r)
                    log(
                        f"  failover {'MPTCP' if use else 'TCP  '}: {r['outcome']}, "
                        f"{r['bytes']}/{r['size']} bytes in {r['seconds']:.1f} s, intact={r['sha256_intact']}"
                    )

    def stat(rows: list[dict[str, Any]]) -> dict[str, float]:
        values = [r["mbit_s"] for r in rows]
        p10, p90 = _p10_p90(values) if len(values) > 1 else (values[0], values[0])
        return {"n": len(values), "median": statistics.median(values), "p10": p10, "p90": p90}

    m, t = stat(goodput["mptcp"]), stat(goodput["tcp"])
    log(
        f"  MPTCP / TCP goodput: {m['median'] / t['median']:.2f}x; relay CPU {relay_cpu:.0%} of a core"
    )
    return {
        "paths": "2 x (20 Mbit/s, 10 ms RTT, 50 ms queue)",
        "transfer_bytes": size,
        "goodput": {"mptcp": m, "tcp": t, "ratio": m["median"] / t["median"], "samples": goodput},
        "relay_cpu_share": relay_cpu,
        "relay_timing": timing,
        "steal_share": steal,
        "failover": failover,
    }
