"""The lab's packet relay: a separate process that joins TUN devices pairwise.

Run as ``python -m http_fastpath.netlab._relay PAIRS`` with the TUN file descriptors
inherited (``PAIRS`` is ``client_fd:server_fd,...``, one pair per path). For every path
and direction it applies, in this order: cut (drop everything), middlebox rules (drop a
SYN that carries data: a TCP Fast Open blackhole, or answer it with a RST; strip MPTCP options, or drop SYNs
that carry one), random loss (seeded), a token-bucket
style serialisation at the path's rate with a bounded queue (tail drop), then a constant
one-way delay. Packets of one direction stay in order. The packet parsing those rules
need is in :mod:`._packets`.

Control: one JSON object per line on stdin, one JSON reply per line on stdout::

    {"cmd": "set", "path": 0, "delay_ms": 25, "rate_mbit": 20, "loss": 0.01,
     "cut": false, "drop_syn_data": false, "queue_ms": 100, "seed": 1}
    {"cmd": "stats"}

End of stdin (the lab closed it, or the lab's process died) stops the relay; its TUN
file descriptors close with it, which is what lets the kernel delete the namespaces.
It runs in its own process so its timing does not depend on the caller's GIL.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import random
import select
import sys
import time
from typing import Any

from ._packets import is_mptcp_syn, is_syn_with_data, strip_mptcp, syn_data_reset, tcp_dport

_PR_SET_TIMERSLACK = 29
_MAX_BURST = 64  # packets read from one device before looking at the others
_SETTABLE = (
    "delay_ms",
    "rate_mbit",
    "loss",
    "cut",
    "drop_syn_data",
    "rst_syn_data",
    "syn_data_port",
    "mptcp_middlebox",
    "queue_ms",
    "seed",
)


class Direction:
    """One direction of one path: impairments, queue and counters."""

    def __init__(self, in_fd: int, out_fd: int, seed: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.delay = 0.0
        self.rate = 0.0  # bytes per second, 0 = unlimited
        self.loss = 0.0
        self.cut = False
        self.drop_syn_data = False
        self.rst_syn_data = False
        self.syn_data_port = 0  # the SYN-data middleboxes act on this port only (0: all)
        self.mptcp_middlebox = "pass"
        self.queue_s = 0.1
        self.rng = random.Random(seed)
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.busy_until = 0.0
        self.last_due = 0.0
        self.counts = {
            "forwarded": 0,
            "bytes": 0,
            "cut": 0,
            "syn_data": 0,
            "syn_data_rst": 0,
            "mptcp_syn": 0,
            "loss": 0,
            "queue": 0,
            "write_error": 0,
            "late_us_sum": 0,
            "late_us_max": 0,  # since the previous "stats" command
            "late_over_1ms": 0,
            "late_over_10ms": 0,
        }

    def configure(self, changes: dict[str, Any]) -> None:
        if "delay_ms" in changes:
            self.delay = float(changes["delay_ms"]) / 1000.0
        if "rate_mbit" in changes:
            rate = changes["rate_mbit"]
            self.rate = float(rate) * 1e6 / 8 if rate else 0.0
        if "loss" in changes:
            self.loss = float(changes["loss"])
        if "drop_syn_data" in changes:
            self.drop_syn_data = bool(changes["drop_syn_data"])
        if "rst_syn_data" in changes:
            self.rst_syn_data = bool(changes["rst_syn_data"])
        if "syn_data_port" in changes:
            self.syn_data_port = int(changes["syn_data_port"])
        if "mptcp_middlebox" in changes:
            self.mptcp_middlebox = str(changes["mptcp_middlebox"])
        if "queue_ms" in changes:
            self.queue_s = float(changes["queue_ms"]) / 1000.0
        if "seed" in changes:
            self.rng.seed(changes["seed"])
        if "cut" in changes:
            self.cut = bool(changes["cut"])
            if self.cut:
                self.counts["cut"] += len(self.queue)
                self.queue.clear()
                self.busy_until = 0.0

    def arrive(self, pkt: bytes, now: float) -> None:
        counts = self.counts
        if self.cut:
            counts["cut"] += 1
            return
        port_ok = not self.syn_data_port or tcp_dport(pkt) == self.syn_data_port
        if self.drop_syn_data and port_ok and is_syn_with_data(pkt):
            counts["syn_data"] += 1
            return
        if self.rst_syn_data and port_ok:
            reset = syn_data_reset(pkt)
            if reset is not None:
                counts["syn_data_rst"] += 1
                try:
                    os.write(self.in_fd, reset)  # straight back to the sender
                except OSError:
                    counts["write_error"] += 1
                return
        if self.mptcp_middlebox != "pass":
            if self.mptcp_middlebox == "strip":
                pkt = strip_mptcp(pkt)
            elif is_mptcp_syn(pkt):
                counts["mptcp_syn"] += 1
                return
        if self.loss and self.rng.random() < self.loss:
            counts["loss"] += 1
            return
        due = now
        if self.rate:
            start = max(now, self.busy_until)
            if start - now > self.queue_s:
                counts["queue"] += 1
                return
            self.busy_until = start + len(pkt) / self.rate
            due = self.busy_until
        due = max(due + self.delay, self.last_due)
        self.last_due = due
        self.queue.append((due, pkt))

    def release(self, now: float, horizon: float) -> float | None:
        """Write every packet due by ``horizon``; return when the next one is due.

        ``now`` is the real time; how late (or early) each packet leaves is accounted
        in microseconds: ``late_us_sum`` / ``forwarded`` is the mean; ``late_over_1ms``,
        ``late_over_10ms`` count the stragglers, ``late_us_max`` is the worst since the
        previous ``stats`` command.
        """
        queue = self.queue
        counts = self.counts
        while queue:
            due, pkt = queue[0]
            if due > horizon:
                return due
            queue.popleft()
            try:
                os.write(self.out_fd, pkt)
            except OSError:
                counts["write_error"] += 1
                continue
            late = int((now - due) * 1e6)
            counts["late_us_sum"] += late
            if late > 1000:
                counts["late_over_1ms"] += 1
                if late > 10000:
                    counts["late_over_10ms"] += 1
                if late > counts["late_us_max"]:
                    counts["late_us_max"] = late
            counts["forwarded"] += 1
            counts["bytes"] += len(pkt)
        return None


class Relay:
    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        self.paths: list[tuple[Direction, Direction]] = []
        for index, (client_fd, server_fd) in enumerate(pairs):
            up = Direction(client_fd, server_fd, seed=2 * index)
            down = Direction(server_fd, client_fd, seed=2 * index + 1)
            self.paths.append((up, down))
        self.by_fd = {d.in_fd: d for path in self.paths for d in path}
        for fd in self.by_fd:
            os.set_blocking(fd, False)

    def handle(self, line: str) -> dict[str, Any]:
        try:
            msg = json.loads(line)
            if msg.get("cmd") == "stats":
                paths = [
                    {"up": dict(up.counts), "down": dict(down.counts)} for up, down in self.paths
                ]
                for direction in self.by_fd.values():
                    direction.counts["late_us_max"] = 0
                return {"ok": True, "paths": paths}
            if msg.get("cmd") == "set":
                up, down = self.paths[int(msg["path"])]
                changes = {k: v for k, v in msg.items() if k in _SETTABLE}
                seed = changes.pop("seed", None)
                for name, direction in (("up", up), ("down", down)):
                    if seed is not None:
                        changes["seed"] = f"{int(seed)}:{msg['path']}:{name}"
                    direction.configure(changes)
                return {"ok": True}
            return {"ok": False, "error": f"unknown command {msg.get('cmd')!r}"}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def run(self, control: int, reply: Any) -> None:
        buffered = b""
        watched = [control, *self.by_fd]
        directions = list(self.by_fd.values())
        # How late select() wakes up (scheduler latency), learned as we go: timers are
        # armed that much early so packets leave on time on average, not systematically late.
        early = 0.0
        while True:
            now = time.monotonic()
            next_due: float | None = None
            for d in directions:
                due = d.release(now, now + early)
                if due is not None and (next_due is None or due < next_due):
                    next_due = due
            timeout = 1.0
            if next_due is not None:
                timeout = max(0.0, next_due - early - time.monotonic())
            readable, _, _ = select.select(watched, [], [], timeout)
            now = time.monotonic()
            if not readable and next_due is not None and timeout > 0:
                late = now - (next_due - early)
                early = min(0.001, max(0.0, early + 0.1 * (late - early)))
            for fd in readable:
                if fd == control:
                    chunk = os.read(control, 65536)
                    if not chunk:
                        return
                    buffered += chunk
                    while b"\n" in buffered:
                        line, _, buffered = buffered.partition(b"\n")
                        reply.write(json.dumps(self.handle(line.decode())) + "\n")
                        reply.flush()
                    continue
                d = self.by_fd[fd]
                for _ in range(_MAX_BURST):
                    try:
                        pkt = os.read(fd, 65536)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # device gone: the namespace is being deleted
                        return
                    d.arrive(pkt, now)


def _prioritise() -> str:
    """Run the relay like netem's timers would: ahead of ordinary processes.

    ``SCHED_FIFO`` (the kernel's RT throttling still leaves 5 % to others, and the relay
    blocks in ``select()`` whenever no packet is due), else nice -10, else as is. A
    1 ns timer slack makes ``select()`` wake on time.
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return "fifo"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice"
    except OSError:
        return "normal"


def main(argv: list[str]) -> int:
    pairs = []
    for item in argv[0].split(","):
        client_fd, server_fd = item.split(":")
        pairs.append((int(client_fd), int(server_fd)))
    _prioritise()
    gc.disable()  # the relay makes no reference cycles; a collection would be a delay spike
    Relay(pairs).run(sys.stdin.fileno(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
