"""Network lab: private namespaces and recording test servers (Linux, root or userns).

A public sub-package for testing and measuring, like ``trio.testing``: the test suite,
the demo and the benchmarks use it, and so can your own tests. The runtime path (the
adapters, transports and the environment opt-in) never imports it. Its TLS helpers need
the ``lab`` extra (``pip install "http_fastpath[lab]"``). Every server listens only on
loopback or on addresses inside namespaces this package created itself.
"""

from __future__ import annotations

from ._demo import demo
from ._lab import SERVICE_ADDRESS, Lab, LabError, Namespace, PathSpec, counters_delta
from ._names import resolving
from ._netns import enter as enter_private_netns
from ._netns import get_sysctl, set_sysctl, skip_reason, sysctl
from ._proxy import Proxy
from ._servers import Accepted, Server, full_backlog, next_loopback, silent_listener

__all__ = [
    "SERVICE_ADDRESS",
    "Accepted",
    "Lab",
    "LabError",
    "Namespace",
    "PathSpec",
    "counters_delta",
    "demo",
    "Proxy",
    "Server",
    "enter_private_netns",
    "full_backlog",
    "get_sysctl",
    "next_loopback",
    "resolving",
    "set_sysctl",
    "silent_listener",
    "skip_reason",
    "sysctl",
]
