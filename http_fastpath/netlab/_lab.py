"""A two-namespace network lab with emulated paths (Linux; root, or a user namespace).

::

    client netns                         relay process                server netns
    fpc0 10.77.0.1  <-- TUN fd -->  delay/rate/loss/cut  <-- TUN fd -->  fps0 10.77.0.2
    fpc1 10.77.1.1  <-- TUN fd -->  delay/rate/loss/cut  <-- TUN fd -->  fps1 10.77.1.2
                                                                        lo   10.77.255.1

The kernel here has no ``netem``, so each path is a pair of TUN devices joined by a
Python relay in its own process (:mod:`._relay`); the namespaces and TUN devices are
made in :mod:`._namespace`. The server namespace also owns a
*service address* (:data:`SERVICE_ADDRESS`) reachable over every path: plain TCP goes
over path 0, MPTCP adds one subflow per extra path (client endpoints + source-based
routing are configured when the lab has more than one path).

The namespaces are anonymous: they live as long as the lab holds their file descriptors
(and the relay holds the TUN devices). Closing the lab, an exception, Ctrl-C, or even a
``SIGKILL`` of the process releases them — the kernel deletes a namespace when its last
reference goes, so nothing can be left behind for a later run to sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .._core.exceptions import OptionError
from ._namespace import LabError, Namespace, _new_namespace, _open_tun, counters_delta

__all__ = ["SERVICE_ADDRESS", "Lab", "LabError", "Namespace", "PathSpec", "counters_delta"]

#: The server namespace's address reachable over every path.
SERVICE_ADDRESS = "10.77.255.1"


@dataclasses.dataclass(frozen=True)
class PathSpec:
    """One emulated path; every value applies to each direction separately.

    ``delay_ms`` is the one-way delay (the round trip adds ``2 * delay_ms``), ``rate_mbit``
    the bottleneck rate (``None``: unlimited), ``loss`` the probability of dropping a
    packet, ``queue_ms`` the bottleneck queue (tail drop beyond that many milliseconds of
    backlog), ``drop_syn_data`` a middlebox that silently drops a SYN carrying data (a TCP
    Fast Open blackhole), ``rst_syn_data`` a middlebox that answers such a SYN with a
    RST (IPv4; a plain SYN passes), ``syn_data_port`` limits those two to SYNs towards
    one destination port (0: every port), ``mptcp_middlebox`` ``"strip"`` overwrites MPTCP options with
    NOPs (the peers fall back to TCP) and ``"drop_syn"`` drops SYNs carrying one (the
    client falls back after ``net.mptcp.syn_retrans_before_tcp_fallback`` retries),
    ``cut`` drops everything, ``seed`` seeds the loss generator.
    """

    delay_ms: float = 0.0
    rate_mbit: float | None = None
    loss: float = 0.0
    queue_ms: float = 100.0
    drop_syn_data: bool = False
    rst_syn_data: bool = False
    syn_data_port: int = 0
    mptcp_middlebox: str = "pass"
    cut: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        _check_number("delay_ms", self.delay_ms, 0.0, 10_000.0)
        if self.rate_mbit is not None:
            _check_number("rate_mbit", self.rate_mbit, 0.01, 10_000.0)
        _check_number("loss", self.loss, 0.0, 1.0)
        _check_number("queue_ms", self.queue_ms, 1.0, 10_000.0)
        if not isinstance(self.syn_data_port, int) or not 0 <= self.syn_data_port <= 65535:
            raise OptionError("syn_data_port", self.syn_data_port, "a port from 0 to 65535")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise OptionError("seed", self.seed, "an integer")
        if self.mptcp_middlebox not in ("pass", "strip", "drop_syn"):
            raise OptionError(
                "mptcp_middlebox", self.mptcp_middlebox, "'pass', 'strip' or 'drop_syn'"
            )
        for name in ("drop_syn_data", "rst_syn_data", "cut"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(name, getattr(self, name), "True or False")

    def relay_settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_number(name: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (low <= float(value) <= high) or math.isnan(float(value)):  # type: ignore[arg-type]
        raise OptionError(name, value, f"a number from {low:g} to {high:g}")


# -- the lab --------------------------------------------------------------------------------

_open_labs: weakref.WeakSet[Lab] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for lab in list(_open_labs):
        lab.close()


class Lab:
    """Client and server namespaces joined by emulated paths; use it as a context manager.

    >>> with Lab([PathSpec(delay_ms=25, rate_mbit=20)]) as lab:       # doctest: +SKIP
    ...     with lab.server.entered():
    ...         server = Server(host="0.0.0.0").__enter__()
    ...     with lab.client.entered():
    ...         urlopen(f"http://{lab.service_address}:{server.port}/")

    ``lab.client`` / ``lab.server`` are :class:`Namespace` objects (``entered()``, ``run()``,
    ``popen()``, ``netstat()``). Path ``i`` has client address ``10.77.i.1`` and server
    address ``10.77.i.2``; :attr:`service_address` is reachable over every path (path 0
    for plain TCP). ``cut``, ``restore`` and ``set`` change a path while traffic flows.
    """

    service_address = SERVICE_ADDRESS

    def __init__(self, paths: Sequence[PathSpec] = (PathSpec(),), *, mptcp: bool = True) -> None:
        if not sys.platform.startswith("linux"):
            raise LabError("the network lab needs Linux (network namespaces and TUN devices)")
        paths = list(paths)
        if not 1 <= len(paths) <= 8:
            raise OptionError("paths", len(paths), "1 to 8 PathSpec objects")
        for spec in paths:
            if not isinstance(spec, PathSpec):
                raise OptionError("paths", spec, "PathSpec objects")
        self.paths = paths
        self.mptcp = mptcp
        self._relay: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.client = _new_namespace("client")
        try:
            self.server = _new_namespace("server")
            self._setup()
        except BaseException:
            self.close()
            raise
        _open_labs.add(self)

    def client_address(self, path: int) -> str:
        self._check_path(path)
        return f"10.77.{path}.1"

    def server_address(self, path: int) -> str:
        self._check_path(path)
        return f"10.77.{path}.2"

    def _check_path(self, path: int) -> None:
        if not isinstance(path, int) or not 0 <= path < len(self.paths):
            raise OptionError("path", path, f"an index from 0 to {len(self.paths) - 1}")

    def _setup(self) -> None:
        fds: list[tuple[int, int]] = []
        try:
            for i in range(len(self.paths)):
                fds.append((self.client.run(_open_tun, f"fpc{i}"), -1))
                fds[-1] = (fds[-1][0], self.server.run(_open_tun, f"fps{i}"))
            self._configure_namespaces()
            pairs = ",".join(f"{c}:{s}" for c, s in fds)
            self._relay = subprocess.Popen(
                [sys.executable, "-m", "http_fastpath.netlab._relay", pairs],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=[fd for pair in fds for fd in pair],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
        finally:
            for pair in fds:
                for fd in pair:
                    if fd >= 0:
                        os.close(fd)
        for i, spec in enumerate(self.paths):
            self._control({"cmd": "set", "path": i, **spec.relay_settings()})

    def _configure_namespaces(self) -> None:
        n = len(self.paths)
        client = ["link set lo up"]
        server = ["link set lo up", f"addr add {SERVICE_ADDRESS}/32 dev lo"]
        for i in range(n):
            client += [
                f"addr add 10.77.{i}.1 peer 10.77.{i}.2 dev fpc{i}",
                f"link set fpc{i} up mtu 1500 txqueuelen 1000",
                f"rule add from 10.77.{i}.1 table {100 + i}",
                f"route add default dev fpc{i} table {100 + i}",
            ]
            server += [
                f"addr add 10.77.{i}.2 peer 10.77.{i}.1 dev fps{i}",
                f"link set fps{i} up mtu 1500 txqueuelen 1000",
            ]
        client.append("route add default dev fpc0 src 10.77.0.1")
        if self.mptcp and Path("/proc/sys/net/mptcp").exists():
            limits = f"mptcp limits set subflows {max(n, 2)} add_addr_accepted {max(n, 2)}"
            client.append(limits)
            server.append(limits)
            client += [f"mptcp endpoint add 10.77.{i}.1 dev fpc{i} subflow" for i in range(1, n)]
        for ns, commands in ((self.client, client), (self.server, server)):
            ns.ip(*commands)
            ns.write_sysctl("net.ipv4.conf.all.rp_filter", "0")
            ns.write_sysctl("net.ipv4.tcp_fastopen", "1027" if ns is self.server else "3")
            if Path("/proc/sys/net/mptcp/enabled").exists():
                ns.write_sysctl("net.mptcp.enabled", "1" if self.mptcp else "0")

    def _control(self, message: dict[str, Any]) -> dict[str, Any]:
        relay = self._relay
        if relay is None or relay.poll() is not None:
            raise LabError("the lab's relay is not running")
        assert relay.stdin is not None and relay.stdout is not None
        with self._lock:
            relay.stdin.write(json.dumps(message) + "\n")
            relay.stdin.flush()
            reply: dict[str, Any] = json.loads(relay.stdout.readline() or "{}")
        if not reply.get("ok"):
            raise LabError(f"relay refused {message}: {reply.get('error', 'no reply')}")
        return reply

    def set(self, path: int, **changes: Any) -> PathSpec:
        """Change a path while traffic flows (``PathSpec`` field names); return the new spec."""
        self._check_path(path)
        unknown = set(changes) - {f.name for f in dataclasses.fields(PathSpec)}
        if unknown:
            raise OptionError("set", sorted(unknown), "PathSpec field names")
        spec = dataclasses.replace(self.paths[path], **changes)
        self._control({"cmd": "set", "path": path, **changes})
        self.paths[path] = spec
        return spec

    def cut(self, path: int) -> None:
        """Drop every packet on ``path`` (both directions) until :meth:`restore`."""
        self.set(path, cut=True)

    def restore(self, path: int) -> None:
        """Undo :meth:`cut`."""
        self.set(path, cut=False)

    def stats(self) -> list[dict[str, dict[str, int]]]:
        """Per path, ``{"up": counters, "down": counters}`` from the relay (packets)."""
        paths: list[dict[str, dict[str, int]]] = self._control({"cmd": "stats"})["paths"]
        return paths

    def close(self) -> None:
        """Stop the relay and release both namespaces (idempotent)."""
        _open_labs.discard(self)
        relay, self._relay = self._relay, None
        if relay is not None:
            _stop(relay)
        for name in ("client", "server"):
            ns = getattr(self, name, None)
            if ns is not None:
                ns.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(relay: subprocess.Popen[str]) -> None:
    streams: list[IO[str] | None] = [relay.stdin, relay.stdout]
    for stream in streams:
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
    try:
        relay.wait(5)
    except subprocess.TimeoutExpired:
        relay.kill()
        relay.wait(5)
