"""Linux socket constants that CPython 3.10/3.11 does not export, and the struct layouts we read.

Values come from ``include/uapi/linux/tcp.h``, ``include/uapi/linux/mptcp.h`` and
``include/linux/socket.h``. They mean what they say only on a Linux kernel: on macOS,
Windows or FreeBSD the same numbers name other options (Windows' option 11 is
``TCP_OFFLOAD_PREFERENCE``, not ``TCP_INFO``), so every read here first checks
:func:`is_linux` and the decisions in :mod:`.decide` never ask for these options
elsewhere. The only sockets touched are the ones the reads are handed.
"""

from __future__ import annotations

import functools
import socket
import struct
import sys
from typing import Final

#: ``sys.platform`` prefixes of the platforms whose kernel is Linux (Android's is too).
LINUX_PLATFORMS: Final = ("linux", "android")
#: This process's ``sys.platform``: what the shells pass to the decisions.
PLATFORM: Final = sys.platform


@functools.lru_cache(maxsize=64)
def is_linux(platform: str) -> bool:
    """True when ``platform`` (a ``sys.platform`` value) runs a Linux kernel."""
    return platform.startswith(LINUX_PLATFORMS)


TCP_FASTOPEN: Final = 23
TCP_INFO: Final = 11
TCP_FASTOPEN_CONNECT: Final = 30
TCP_IS_MPTCP: Final = 43
IPPROTO_MPTCP: Final = 262
SOL_MPTCP: Final = 284
MPTCP_INFO: Final = 1
IPPROTO_QUIC: Final = 261
SOL_TCP: Final = socket.IPPROTO_TCP

TCPI_OPT_SYN_DATA: Final = 32
#: enum tcp_fastopen_client_fail
TFO_COOKIE_UNAVAILABLE: Final = 1
TFO_DATA_NOT_ACKED: Final = 2
TFO_SYN_RETRANSMITTED: Final = 3
#: Bytes of ``struct tcp_info`` we ask for (the kernel copies min(len, sizeof)).
TCP_INFO_LEN: Final = 256
#: Bytes of ``struct mptcp_info`` we ask for.
MPTCP_INFO_LEN: Final = 128

# struct tcp_info: 8 single bytes, then __u32 fields. Offsets of the ones we use.
_TCPI_OPTIONS_OFF: Final = 5
_TCPI_BITFIELD_OFF: Final = 7  # delivery_rate_app_limited:1, fastopen_client_fail:2
_TCPI_RTT_OFF: Final = 68
_TCPI_TOTAL_RETRANS_OFF: Final = 100

# struct mptcp_info: __u8 subflows at 0; __u8 subflows_total at 80 (Linux >= 6.10).
_MPTCPI_SUBFLOWS_OFF: Final = 0
_MPTCPI_SUBFLOWS_TOTAL_OFF: Final = 80


class TCPInfo:
    """The few ``struct tcp_info`` fields http_fastpath reports (read when asked for)."""

    __slots__ = ("fastopen_client_fail", "options", "raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) < _TCPI_TOTAL_RETRANS_OFF + 4:
            raise ValueError(f"struct tcp_info too short: {len(raw)} bytes")
        self.raw = raw
        self.options = raw[_TCPI_OPTIONS_OFF]
        self.fastopen_client_fail = (raw[_TCPI_BITFIELD_OFF] >> 1) & 0x3

    @property
    def rtt_us(self) -> int:
        """``tcpi_rtt``: the smoothed round-trip time, in microseconds."""
        value: int = struct.unpack_from("=I", self.raw, _TCPI_RTT_OFF)[0]
        return value

    @property
    def total_retrans(self) -> int:
        """``tcpi_total_retrans``."""
        value: int = struct.unpack_from("=I", self.raw, _TCPI_TOTAL_RETRANS_OFF)[0]
        return value

    @property
    def syn_data_acked(self) -> bool:
        """Data carried in the SYN was acknowledged (client) or accepted (server)."""
        return bool(self.options & TCPI_OPT_SYN_DATA)


def read_tcp_info(sock: socket.socket, *, platform: str = PLATFORM) -> TCPInfo | None:
    """``getsockopt(TCP_INFO)``; None when the socket has none (closed, not TCP, not Linux)."""
    if not is_linux(platform):
        return None
    try:
        return TCPInfo(sock.getsockopt(SOL_TCP, TCP_INFO, TCP_INFO_LEN))
    except (OSError, ValueError):
        return None


def read_is_mptcp(sock: socket.socket, *, platform: str = PLATFORM) -> bool | None:
    """MPTCP really in use on this socket: ``TCP_IS_MPTCP``, else ``MPTCP_INFO``.

    Returns None when the kernel cannot tell (too old for both options, or not Linux).
    """
    if not is_linux(platform):
        return None
    try:
        return bool(sock.getsockopt(SOL_TCP, TCP_IS_MPTCP))
    except OSError:
        pass
    try:
        sock.getsockopt(SOL_MPTCP, MPTCP_INFO, MPTCP_INFO_LEN)
    except OSError:
        return None
    return True


def read_mptcp_subflows(sock: socket.socket, *, platform: str = PLATFORM) -> int | None:
    """Number of subflows of an MPTCP connection (initial one included), or None."""
    if not is_linux(platform):
        return None
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, MPTCP_INFO_LEN)
    except OSError:
        return None
    if len(raw) > _MPTCPI_SUBFLOWS_TOTAL_OFF and raw[_MPTCPI_SUBFLOWS_TOTAL_OFF]:
        return raw[_MPTCPI_SUBFLOWS_TOTAL_OFF]
    if not raw:
        return None
    return raw[_MPTCPI_SUBFLOWS_OFF] + 1
