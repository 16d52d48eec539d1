"""Side-by-side measurements for the demo and the benchmarks: stock client vs fastpath.

A :class:`Kind` is one way of making HTTP requests (stdlib ``http.client`` vs the
fastpath dialer; requests vs ``FastpathAdapter``; httpx vs ``FastpathTransport``; httpx
async vs ``AsyncFastpathTransport``). Each can time a *cold* request (a new client and a
new connection; the client is built before the clock starts) and a series of keep-alive
requests over one connection. :func:`ttfb_pairs` interleaves stock and fastpath samples
so that load on the machine hits both alike, and records next to the timings what the
server's kernel saw (SYN data per connection) and the client namespace's counters.

The client flavours (:class:`Kind` and its subclasses) are in :mod:`._kinds`.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from ._kinds import (
    AsyncHttpxKind,
    DialerFast,
    HttpxKind,
    Kind,
    RequestsKind,
    StdlibStock,
    TLSConfig,
)
from ._lab import Namespace, counters_delta
from ._servers import Server

__all__ = ["COUNTERS", "Kind", "Summary", "TLSConfig", "available_pairs", "summarize"]

#: Kernel counters (client namespace) reported next to every timing.
COUNTERS = (
    "Tcp.ActiveOpens",
    "TcpExt.TCPFastOpenActive",
    "TcpExt.TCPFastOpenActiveFail",
    "TcpExt.TCPFastOpenCookieReqd",
    "MPTcpExt.MPCapableSYNTX",
    "MPTcpExt.MPCapableSYNACKRX",
    "MPTcpExt.MPCapableFallbackSYNACK",
    "MPTcpExt.MPJoinSynAckRx",
)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median and 10th/90th percentiles of a sample, in milliseconds."""

    n: int
    median: float
    p10: float
    p90: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def summarize(seconds: Sequence[float]) -> Summary:
    ms = sorted(s * 1000 for s in seconds)
    if len(ms) == 1:
        return Summary(1, ms[0], ms[0], ms[0])
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    return Summary(len(ms), statistics.median(ms), deciles[0], deciles[-1])


def available_pairs(
    tls: TLSConfig, *, dialer: bool | None = True, stacks: Sequence[str] = ("httpx",)
) -> tuple[list[tuple[Kind, Kind]], list[str]]:
    """(stock, fastpath) pairs that can run here, and why the others cannot.

    ``dialer``: include http.client vs the bare dialer (``None``: only when no adapter
    is installed). ``stacks``: the httpx-style clients to compare (``"httpx"``,
    ``"httpx2"``).
    """
    import importlib

    pairs: list[tuple[Kind, Kind]] = []
    missing: list[str] = []
    candidates: list[tuple[str, str, str, type[Kind]]] = [
        ("requests", "http_fastpath", "FastpathAdapter", RequestsKind)
    ]
    for stack in stacks:
        ours = "http_fastpath" if stack == "httpx" else f"http_fastpath.{stack}"
        candidates += [
            (stack, ours, "FastpathTransport", HttpxKind),
            (stack, ours, "AsyncFastpathTransport", AsyncHttpxKind),
        ]
    for module, home, name, kind in candidates:
        try:
            importlib.import_module(module)
            getattr(importlib.import_module(home), name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name}: {exc}")
            continue
        if kind is RequestsKind:
            pairs.append((RequestsKind(tls, False), RequestsKind(tls, True)))
        else:
            make = cast(Callable[[TLSConfig, bool, str], Kind], kind)
            pairs.append((make(tls, False, module), make(tls, True, module)))
    if dialer or (dialer is None and not pairs):
        pairs.insert(0, (StdlibStock(tls), DialerFast(tls)))
    return pairs, missing


@dataclasses.dataclass
class PairResult:
    """One stock-vs-fastpath comparison with its kernel evidence."""

    library: str
    scheme: str
    stock: Summary
    fast: Summary
    stock_label: str
    fast_label: str
    stock_syn_data: int
    fast_syn_data: int
    connections: int
    stock_counters: dict[str, int]
    fast_counters: dict[str, int]
    errors: list[str]

    @property
    def ratio(self) -> float:
        return self.fast.median / self.stock.median

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ratio"] = round(self.ratio, 4)
        return out


def _syn_data_since(server: Server, start: int) -> tuple[int, int]:
    records = server.records[start:]
    return sum(r.syn_data for r in records), len(records)


def ttfb_pairs(
    client_ns: Namespace,
    server: Server,
    url: str,
    pair: tuple[Kind, Kind],
    samples: int,
    *,
    deadline: float,
    progress: Callable[[int], None] | None = None,
) -> PairResult:
    """Interleaved cold-TTFB samples for one (stock, fastpath) pair, inside ``client_ns``."""
    stock, fast = pair
    times: dict[bool, list[float]] = {False: [], True: []}
    syn: dict[bool, int] = {False: 0, True: 0}
    counters: dict[bool, dict[str, int]] = {False: {}, True: {}}
    errors: list[str] = []
    connections = 0

    def run() -> None:
        nonlocal connections
        for kind in pair:  # warm-up: the fastpath's first connection fetches the TFO cookie
            kind.cold(url)
        for i in range(samples):
            if time.monotonic() > deadline and i >= 3:
                errors.append(f"time budget reached after {i} samples")
                break
            for kind in (stock, fast) if i % 2 == 0 else (fast, stock):
                before, start = _counters(), len(server.records)
                try:
                    times[kind.fastpath].append(kind.cold(url))
                except Exception as exc:  # reported in the row, never hidden
                    errors.append(f"{kind.label}: {type(exc).__name__}: {exc}")
                got, conns = _syn_data_since(server, start)
                syn[kind.fastpath] += got
                connections += conns
                delta = counters_delta(before, _counters(), COUNTERS)
                for key, value in delta.items():
                    counters[kind.fastpath][key] = counters[kind.fastpath].get(key, 0) + value
            if progress is not None:
                progress(i + 1)

    client_ns.run(run)
    return PairResult(
        library=fast.library,
        scheme=url.partition(":")[0],
        stock=summarize(times[False] or [float("nan")]),
        fast=summarize(times[True] or [float("nan")]),
        stock_label=stock.label,
        fast_label=fast.label,
        stock_syn_data=syn[False],
        fast_syn_data=syn[True],
        connections=connections,
        stock_counters=counters[False],
        fast_counters=counters[True],
        errors=errors,
    )


def _counters() -> dict[str, int]:
    from ._namespace import _read_netstat

    return _read_netstat()
