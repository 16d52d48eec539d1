"""Kernel capability probe: lazy, cached, never run at import time."""

from __future__ import annotations

import dataclasses
import errno
import functools
import platform
import socket
import sys
from pathlib import Path

from . import linux as _linux
from .reasons import mptcp_platform_detail, mptcp_socket_refused, tfo_platform_detail
from .sockets import new_socket

__all__ = ["Capabilities", "Feature", "probe", "probe_for"]

_PROC_SYS = Path("/proc/sys")


@dataclasses.dataclass(frozen=True)
class Feature:
    """One capability: available or not, why, and how to enable it."""

    name: str
    available: bool
    detail: str
    enable: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What this host's kernel offers to the fastpath (see :func:`probe`)."""

    platform: str
    kernel: str
    tfo_client: Feature
    tfo_server: Feature
    mptcp: Feature
    tcp_is_mptcp: Feature
    mptcp_info: Feature
    kernel_quic: Feature
    tfo_sysctl: int | None

    def features(self) -> tuple[Feature, ...]:
        return (
            self.tfo_client,
            self.tfo_server,
            self.mptcp,
            self.tcp_is_mptcp,
            self.mptcp_info,
            self.kernel_quic,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "kernel": self.kernel,
            "tfo_sysctl": self.tfo_sysctl,
            "features": {f.name: f.as_dict() for f in self.features()},
        }


def _read_sysctl(name: str) -> int | None:
    try:
        return int((_PROC_SYS / name.replace(".", "/")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tfo_features(value: int | None) -> tuple[Feature, Feature]:
    enable = "sysctl -w net.ipv4.tcp_fastopen=3"
    if value is None:
        trial = _trial_tfo_connect()
        client = Feature(
            "tfo_client", trial is None, trial or "TCP_FASTOPEN_CONNECT accepted", enable
        )
        server = Feature("tfo_server", False, "net.ipv4.tcp_fastopen is not readable", enable)
        return client, server
    client_on = bool(value & 0x1)
    server_on = bool(value & 0x2)
    client = Feature(
        "tfo_client",
        client_on,
        f"net.ipv4.tcp_fastopen={value}: client bit (0x1) {'on' if client_on else 'off'}",
        None if client_on else enable,
    )
    server = Feature(
        "tfo_server",
        server_on,
        f"net.ipv4.tcp_fastopen={value}: server bit (0x2) {'on' if server_on else 'off'}",
        None if server_on else enable,
    )
    return client, server


def _trial_tfo_connect() -> str | None:
    """None when an unconnected TCP socket accepts ``TCP_FASTOPEN_CONNECT``, else why not."""
    try:
        with new_socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.setsockopt(_linux.SOL_TCP, _linux.TCP_FASTOPEN_CONNECT, 1)
    except OSError as exc:
        return f"TCP_FASTOPEN_CONNECT refused: {exc.strerror or exc}"
    return None


def _mptcp_features() -> tuple[Feature, Feature, Feature]:
    enable = "sysctl -w net.mptcp.enabled=1"
    try:
        sock = new_socket(socket.AF_INET, socket.SOCK_STREAM, _linux.IPPROTO_MPTCP)
    except OSError as exc:
        reason = str(mptcp_socket_refused(exc).fields["detail"])
        fix = enable if exc.errno == errno.ENOPROTOOPT else "use Linux >= 5.6 with CONFIG_MPTCP=y"
        off = Feature("mptcp", False, reason, fix)
        return (
            off,
            Feature("tcp_is_mptcp", False, "MPTCP sockets unavailable"),
            Feature("mptcp_info", False, "MPTCP sockets unavailable"),
        )
    with sock:
        try:
            sock.getsockopt(_linux.SOL_TCP, _linux.TCP_IS_MPTCP)
            is_mptcp = Feature("tcp_is_mptcp", True, "TCP_IS_MPTCP supported (Linux >= 6.10)")
        except OSError as exc:
            is_mptcp = Feature(
                "tcp_is_mptcp",
                False,
                f"TCP_IS_MPTCP not supported ({exc.strerror})",
                "Linux >= 6.10",
            )
        try:
            sock.getsockopt(_linux.SOL_MPTCP, _linux.MPTCP_INFO, _linux.MPTCP_INFO_LEN)
            info = Feature("mptcp_info", True, "MPTCP_INFO supported (Linux >= 5.16)")
        except OSError as exc:
            ok = exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL)
            info = Feature(
                "mptcp_info",
                ok,
                "MPTCP_INFO supported (Linux >= 5.16)" if ok else f"MPTCP_INFO: {exc.strerror}",
            )
    enabled = _read_sysctl("net.mptcp.enabled")
    detail = "IPPROTO_MPTCP sockets can be created"
    if enabled is not None:
        detail += f" (net.mptcp.enabled={enabled})"
    return Feature("mptcp", True, detail), is_mptcp, info


def _quic_feature() -> Feature:
    try:
        sock = new_socket(socket.AF_INET, socket.SOCK_DGRAM, _linux.IPPROTO_QUIC)
    except OSError as exc:
        return Feature(
            "kernel_quic",
            False,
            f"IPPROTO_QUIC sockets unavailable ({exc.strerror}): the out-of-tree 'quic' "
            "kernel module is not loaded",
            "modprobe quic (out-of-tree module from the lxin/quic project, not in mainline"
            " Linux; the EXPERIMENTAL HTTP/3 transport's backend='userspace' needs no module,"
            " see docs/http3.md)",
        )
    sock.close()
    return Feature("kernel_quic", True, "IPPROTO_QUIC sockets can be created")


def _not_linux(sys_platform: str, kernel: str) -> Capabilities:
    """What a non-Linux platform offers: nothing, said per feature, with no syscall."""
    linux_only = f"a Linux-only option (not on {sys_platform})"
    return Capabilities(
        sys_platform,
        kernel,
        Feature(
            "tfo_client",
            False,
            f"TCP Fast Open is not implemented on {sys_platform}: "
            + tfo_platform_detail(sys_platform),
        ),
        Feature("tfo_server", False, f"not probed on {sys_platform} (net.ipv4.tcp_fastopen)"),
        Feature(
            "mptcp",
            False,
            f"Multipath TCP is not implemented on {sys_platform}: "
            + mptcp_platform_detail(sys_platform),
        ),
        Feature("tcp_is_mptcp", False, "TCP_IS_MPTCP is " + linux_only),
        Feature("mptcp_info", False, "MPTCP_INFO is " + linux_only),
        Feature(
            "kernel_quic",
            False,
            f"IPPROTO_QUIC is Linux's out-of-tree 'quic' module (not on {sys_platform})",
        ),
        None,
    )


def probe_for(sys_platform: str, kernel: str) -> Capabilities:
    """Probe for ``sys_platform``: off Linux, no sysctl is read and no socket is made.

    :func:`probe` passes ``sys.platform``; on Linux the kernel is really asked.
    """
    if not _linux.is_linux(sys_platform):
        return _not_linux(sys_platform, kernel)
    tfo_value = _read_sysctl("net.ipv4.tcp_fastopen")
    client, server = _tfo_features(tfo_value)
    mptcp, is_mptcp, info = _mptcp_features()
    return Capabilities(
        sys_platform, kernel, client, server, mptcp, is_mptcp, info, _quic_feature(), tfo_value
    )


@functools.lru_cache(maxsize=1)
def _probe_cached() -> Capabilities:
    return probe_for(sys.platform, platform.release())


def probe(*, refresh: bool = False) -> Capabilities:
    """Probe the kernel once (cached per process); ``refresh=True`` probes again.

    Sysctls are per network namespace: a program that moves between namespaces should
    probe again.
    """
    if refresh:
        _probe_cached.cache_clear()
    return _probe_cached()
