"""The network lab itself: delay, rate, loss, cut/restore, middleboxes and cleanup.

Timing here checks the *emulator* against its own setting (the lab is a measuring
instrument); no test asserts that http_fastpath is faster than anything.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_fastpath import FastpathOptions, OptionError
from http_fastpath._core.dialer import dial
from http_fastpath._core.linux import read_tcp_info
from http_fastpath._core.sockets import new_socket
from http_fastpath.netlab import Lab, PathSpec, Server
from http_fastpath.netlab._namespace import namespace_in_use
from http_fastpath.netlab._packets import is_syn_with_data

from .._kernel import TFO_NO_KERNEL_BLACKHOLE

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def lab2() -> Iterator[tuple[Lab, Server]]:
    """Two paths (path 0: no delay, the baseline) and an MPTCP-capable server."""
    with Lab([PathSpec(), PathSpec()]) as lab:
        with lab.server.entered():
            server = Server(host="0.0.0.0", mptcp=True)
        with server:
            yield lab, server


def _handshake_rtt_ms(host: str, port: int) -> float:
    """The round trip of the SYN / SYN-ACK exchange as the client's kernel timed it.

    ``tcpi_rtt`` right after connect is that single sample, taken at packet arrival, so
    it does not depend on when this (busy, shared) process gets the CPU back.
    """
    sock = new_socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    with sock:
        sock.settimeout(5)
        sock.connect((host, port))
        info = read_tcp_info(sock)
        assert info is not None
        return info.rtt_us / 1000


def _added_rtt_ms(lab: Lab, port: int, samples: int) -> tuple[float, float]:
    """Median handshake RTT over path 1 minus path 0 (no delay), samples interleaved."""
    base, delayed = [], []
    for _ in range(samples):
        base.append(_handshake_rtt_ms(lab.server_address(0), port))
        delayed.append(_handshake_rtt_ms(lab.server_address(1), port))
    return statistics.median(delayed) - statistics.median(base), statistics.median(base)


@pytest.mark.parametrize("rtt_ms", [10, 50, 200])
def test_added_rtt_matches_the_setting(lab2: tuple[Lab, Server], rtt_ms: int) -> None:
    lab, server = lab2
    lab.set(1, delay_ms=rtt_ms / 2)
    try:
        added, base = lab.client.run(_added_rtt_ms, lab, server.port, 9 if rtt_ms < 200 else 7)
    finally:
        lab.set(1, delay_ms=0)
    assert abs(added - rtt_ms) <= 1.0, (added, base)


def _download(host: str, port: int, n: int, progress: list[int]) -> None:
    with dial(host, port, options=FastpathOptions(tfo=False, mptcp=False), timeout=10) as s:
        s.sendall(f"GET /bytes?n={n} HTTP/1.1\r\nHost: lab\r\n\r\n".encode())
        deadline = time.monotonic() + 30
        while progress[0] < n and time.monotonic() < deadline:
            chunk = s.recv(262144)
            assert chunk
            progress[0] += len(chunk)


def test_rate_matches_the_setting(lab2: tuple[Lab, Server]) -> None:
    """The bottleneck's output rate (IP bytes the relay delivers) while TCP saturates it."""
    lab, server = lab2
    lab.set(1, rate_mbit=20, delay_ms=5)
    progress = [0]
    worker = threading.Thread(
        target=lab.client.run,
        args=(_download, lab.server_address(1), server.port, 8_000_000, progress),
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while progress[0] < 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        before, start = lab.stats()[1]["down"], time.perf_counter()
        time.sleep(1.5)
        after, seconds = lab.stats()[1]["down"], time.perf_counter() - start
    finally:
        worker.join(20)
        lab.set(1, rate_mbit=None, delay_ms=0)
    assert progress[0] >= 8_000_000  # body plus headers: the download finished
    rate = (after["bytes"] - before["bytes"]) * 8 / seconds / 1e6
    assert abs(rate / 20 - 1) <= 0.05, (rate, before, after)


def _send_udp(dst: str, port: int, count: int) -> None:
    sock = new_socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    with sock:
        for i in range(count):
            sock.sendto(i.to_bytes(4, "big"), (dst, port))


def test_seeded_loss_drops_about_that_share(lab2: tuple[Lab, Server]) -> None:
    lab, _ = lab2
    with lab.server.entered():
        rx = new_socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    with rx:
        rx.bind(("0.0.0.0", 0))
        rx.settimeout(0.2)
        before = lab.stats()[1]["up"]["loss"]
        lab.set(1, loss=0.3, seed=7)
        received = 0
        try:
            for _ in range(8):  # in batches, so the receive buffer never overflows
                lab.client.run(_send_udp, lab.server_address(1), rx.getsockname()[1], 50)
                with pytest.raises(socket.timeout):
                    for _ in range(50):
                        rx.recv(16)
                        received += 1
        finally:
            lab.set(1, loss=0.0)
    counted = lab.stats()[1]["up"]["loss"] - before
    lost = 400 - received
    # the relay may also have dropped a stray packet of an earlier test's connection
    assert lost <= counted <= lost + 5
    assert 80 <= lost <= 160  # 0.3 * 400 = 120, about 4 sigma either side


def _exchange(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /bytes?n=10 HTTP/1.1\r\nHost: lab\r\n\r\n")
    data = b""
    while not data.endswith(b"x" * 10):
        chunk = sock.recv(4096)
        assert chunk, "closed"
        data += chunk
    return data


def test_cut_drops_everything_and_restore_brings_it_back(lab2: tuple[Lab, Server]) -> None:
    lab, server = lab2
    host = lab.server_address(1)
    options = FastpathOptions(tfo=False, mptcp=False)
    sock = lab.client.run(dial, host, server.port, options=options, timeout=5)
    with sock:
        _exchange(sock)
        lab.cut(1)
        try:
            cut_before = lab.stats()[1]["up"]["cut"]
            sock.settimeout(0.7)
            with pytest.raises(socket.timeout):
                _exchange(sock)
            with pytest.raises(TimeoutError):
                lab.client.run(dial, host, server.port, options=options, timeout=0.5)
            assert lab.stats()[1]["up"]["cut"] > cut_before
        finally:
            lab.restore(1)
        sock.settimeout(10)  # the kernel retransmits the request once the path is back
        data = b""
        while not data.endswith(b"x" * 10):
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
    with lab.client.run(dial, host, server.port, options=options, timeout=5) as again:
        assert _exchange(again).startswith(b"HTTP/1.1 200")


def _mptcp_subflows(host: str, port: int) -> int | None:
    with dial(host, port, options=FastpathOptions(tfo=False, mptcp=True), timeout=5) as s:
        _exchange(s)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            info = s.connection_info()
            if info.mptcp_subflows and info.mptcp_subflows >= 2:
                break
            time.sleep(0.02)
        return info.mptcp_subflows


def test_mptcp_uses_a_subflow_per_path(lab2: tuple[Lab, Server]) -> None:
    lab, server = lab2
    subflows = lab.client.run(_mptcp_subflows, lab.service_address, server.port)
    assert server.records[-1].is_mptcp
    assert subflows == 2


def _tfo_exchange(host: str, port: int) -> None:
    with dial(host, port, options=FastpathOptions(tfo=True, mptcp=False), timeout=10) as s:
        _exchange(s)


@TFO_NO_KERNEL_BLACKHOLE.mark
def test_syn_data_blackhole_drops_only_syns_with_data(lab2: tuple[Lab, Server]) -> None:
    lab, server = lab2
    host = lab.server_address(1)
    lab.client.run(_tfo_exchange, host, server.port)  # fetches the TFO cookie
    lab.client.run(_tfo_exchange, host, server.port)
    assert server.records[-1].syn_data
    lab.set(1, drop_syn_data=True)
    try:
        before = lab.stats()[1]["up"]["syn_data"]
        lab.client.run(_tfo_exchange, host, server.port)  # the kernel retries without data
    finally:
        lab.set(1, drop_syn_data=False)
    assert lab.stats()[1]["up"]["syn_data"] > before
    assert not server.records[-1].syn_data


def test_is_syn_with_data_parses_ipv4_and_ipv6() -> None:
    tcp_syn = bytes(12) + bytes([0x50, 0x02]) + bytes(6)  # data offset 5 words, SYN
    v4 = bytes([0x45, 0, 0, 20 + 20 + 3]) + bytes(5) + bytes([6]) + bytes(10) + tcp_syn + b"abc"
    assert is_syn_with_data(v4)
    assert not is_syn_with_data(v4[:3] + bytes([40]) + v4[4:40])
    synack = tcp_syn[:13] + bytes([0x12]) + tcp_syn[14:]
    assert not is_syn_with_data(v4[:20] + synack + b"abc")
    v6 = bytes([0x60, 0, 0, 0, 0, 23, 6, 64]) + bytes(32) + tcp_syn + b"abc"
    assert is_syn_with_data(v6)
    assert not is_syn_with_data(b"")


def test_namespaces_and_relay_are_gone_after_close() -> None:
    with Lab([PathSpec(delay_ms=1)]) as lab:
        inodes = [lab.client.inode, lab.server.inode]
        relay = lab._relay
        assert relay is not None
        assert all(namespace_in_use(i) for i in inodes)
    assert relay.poll() is not None
    assert not any(namespace_in_use(i) for i in inodes)


def test_bad_path_specs_name_the_value() -> None:
    with pytest.raises(OptionError, match="delay_ms"):
        PathSpec(delay_ms=-1)
    with pytest.raises(OptionError, match="loss"):
        PathSpec(loss=1.5)
    with pytest.raises(OptionError, match="rate_mbit"):
        PathSpec(rate_mbit=0)
    with pytest.raises(OptionError, match="mptcp_middlebox"):
        PathSpec(mptcp_middlebox="eat")
    with pytest.raises(OptionError, match="paths"):
        Lab([])


def test_nothing_is_left_after_the_owner_is_killed() -> None:
    code = (
        "import time\n"
        "from http_fastpath.netlab import Lab\n"
        "lab = Lab()\n"
        "print(lab.client.inode, lab.server.inode, lab._relay.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        client, server, relay = (int(v) for v in proc.stdout.readline().split())
        assert namespace_in_use(client) and namespace_in_use(server)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{relay}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{relay}").exists()
    assert not namespace_in_use(client) and not namespace_in_use(server)


def _mptcp_exchange(host: str, port: int) -> bool | None:
    with dial(host, port, options=FastpathOptions(tfo=False, mptcp=True), timeout=10) as s:
        assert _exchange(s).startswith(b"HTTP/1.1 200")
        return s.connection_info().mptcp


@pytest.mark.parametrize("mode", ["strip", "drop_syn"])
def test_mptcp_middleboxes_force_a_working_tcp_fallback(
    lab2: tuple[Lab, Server], mode: str
) -> None:
    lab, server = lab2
    host = lab.server_address(1)
    assert lab.client.run(_mptcp_exchange, host, server.port) is True
    lab.set(1, mptcp_middlebox=mode)
    try:
        before = lab.stats()[1]["up"]["mptcp_syn"]
        used_mptcp = lab.client.run(_mptcp_exchange, host, server.port)
        dropped = lab.stats()[1]["up"]["mptcp_syn"] - before
    finally:
        lab.set(1, mptcp_middlebox="pass")
    assert used_mptcp is False and server.records[-1].is_mptcp is False
    assert (dropped > 0) == (mode == "drop_syn")
