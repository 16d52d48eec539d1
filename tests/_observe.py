"""What the kernel saw: the counters and file descriptors tests read to check a claim.

Every reading here is of this process or of the test run's private network namespace, so
it is exact: ``active_opens()`` counts the SYNs clients started, ``tcp_ext()`` is what
``nstat`` shows, ``open_fds()`` is what a leak would change. ``settle()`` waits for a reading
to come back down (the in-process test servers close their side a moment later). The kernel
*versions* tests depend on are in the sibling ``_kernel.py``.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar


def _table(path: str, prefix: str) -> dict[str, int]:
    """One ``Prefix: names…`` / ``Prefix: values…`` line pair of a /proc/net file."""
    lines = Path(path).read_text().splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=True):
        if head.startswith(prefix):
            names = head.split()[1:]
            return dict(zip(names, map(int, values.split()[1:]), strict=True))
    raise KeyError(f"{prefix} in {path}")


def active_opens() -> int:
    """``Tcp: ActiveOpens`` of this namespace (/proc/net/snmp): SYNs clients started."""
    return _table("/proc/net/snmp", "Tcp:")["ActiveOpens"]


def tcp_ext(name: str) -> int:
    """A ``TcpExt`` counter of this namespace (/proc/net/netstat, what ``nstat`` reads)."""
    return _table("/proc/net/netstat", "TcpExt:")[name]


def open_fds() -> set[str]:
    """This process's file descriptors as ``"fd:target"`` (a socket's inode is unique).

    Compare as "nothing new" (``after <= before``): a server thread of an earlier test may
    close one of its sockets meanwhile.
    """
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass  # the fd that listed the directory, closed by now
    return out


def fd_count() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    """How many threads this process has (/proc/self/task)."""
    return len(os.listdir("/proc/self/task"))


def rss_mb() -> float:
    """This process's resident set size in MiB (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


M = TypeVar("M", int, set[str])


def settle(measure: Callable[[], M], baseline: M, seconds: float = 10.0) -> M:
    """``measure()`` once it is back to ``baseline`` (``<=``), or its value after ``seconds``.

    The in-process servers close their side when they read EOF, a moment after the client.
    """
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        value = measure()
        if value <= baseline or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def connect_attempts(retries: int, *, fast: bool, first: bool = True) -> int:
    """SYNs a request to a dead server sends with ``retries`` connect retries (``active_opens``).

    Stock: one attempt plus the retries. Ours (``fast``) adds one plain SYN to the ``first``
    request after a cached TFO cookie: a reset answering a SYN that carried data is retried
    once without data (a middlebox may reset SYN data; test_reliability_lab row 6); the
    plain SYN is refused too, so TCP Fast Open pauses for the address and later requests
    send as many SYNs as stock. The one place that encodes this policy for the tests.
    """
    return 1 + retries + (fast and first)
