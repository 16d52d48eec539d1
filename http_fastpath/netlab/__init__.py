"""Network lab: private namespaces and recording test servers (Linux, root or userns).

Used by the test suite, the demo and the benchmarks. Every server listens only on
loopback or on addresses inside namespaces this package created itself.
"""

from __future__ import annotations

from ._netns import enter as enter_private_netns
from ._netns import get_sysctl, set_sysctl, skip_reason, sysctl
from ._proxy import Proxy
from ._servers import Accepted, Server, next_loopback

__all__ = [
    "Accepted",
    "Proxy",
    "Server",
    "enter_private_netns",
    "get_sysctl",
    "next_loopback",
    "set_sysctl",
    "skip_reason",
    "sysctl",
]
