"""Kernel versions the tests depend on: an older kernel skips with the reason, never fails.

A test that needs a feature newer than the oldest kernel we support says so with a marker
(``@TCP_IS_MPTCP.mark``) or, for one case of a parametrized test, a call
(``MPTCP_TFO.require()``). The reason names the feature, the version it came with and the
running kernel::

    needs Linux >= 6.10 for TCP_IS_MPTCP; this is Linux 6.8.0-45-generic
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass

import pytest


def linux_version(release: str | None = None) -> tuple[int, int]:
    """``(major, minor)`` of the running Linux kernel (of ``release``); (0, 0) elsewhere."""
    if release is None:
        if not sys.platform.startswith("linux"):
            return (0, 0)
        release = platform.release()
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


@dataclass(frozen=True)
class KernelFeature:
    """A kernel feature some tests need: the Linux version it came with."""

    what: str
    major: int
    minor: int

    def skip_reason(self, release: str | None = None) -> str | None:
        """Why a test needing this feature cannot run here, or None when it can."""
        if linux_version(release) >= (self.major, self.minor):
            return None
        here = release or f"{platform.system()} {platform.release()}"
        return f"needs Linux >= {self.major}.{self.minor} for {self.what}; this is {here}"

    @property
    def mark(self) -> pytest.MarkDecorator:
        """``pytest.mark.skipif`` with the reason (decorate a test or a parameter with it)."""
        reason = self.skip_reason()
        return pytest.mark.skipif(reason is not None, reason=reason or "")

    def require(self) -> None:
        """Skip the running test, with the reason, on a kernel without the feature."""
        reason = self.skip_reason()
        if reason is not None:
            pytest.skip(reason)


#: getsockopt(SOL_TCP, TCP_IS_MPTCP): the probe and ``doctor --require tcp_is_mptcp``
TCP_IS_MPTCP = KernelFeature("TCP_IS_MPTCP", 6, 10)
#: getsockopt(SOL_MPTCP, MPTCP_INFO): proof of MPTCP where TCP_IS_MPTCP is missing
MPTCP_INFO = KernelFeature("MPTCP_INFO", 5, 16)
#: a lab path that drops SYNs with data: before 5.13 the kernel's own blackhole detection
#: (net.ipv4.tcp_fastopen_blackhole_timeout_sec, then 3600 by default) switches TCP Fast Open
#: off for the whole namespace after it, and for the later tests in the same lab too
TFO_NO_KERNEL_BLACKHOLE = KernelFeature(
    "tcp_fastopen_blackhole_timeout_sec=0 by default (no kernel-wide TFO pause)", 5, 13
)
#: data in the SYN of an MPTCP connection: TCP Fast Open on MPTCP sockets, the listener's
#: side included (client side 6.1, server side 6.2)
MPTCP_TFO = KernelFeature("TCP Fast Open on MPTCP sockets at both ends", 6, 2)
