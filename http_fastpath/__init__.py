"""http_fastpath: TCP Fast Open and Multipath TCP for requests and httpx.

Importing this package does no work: no socket is opened, no sysctl is read and no
HTTP client is imported until you use one of the names below.
"""

from __future__ import annotations

import typing

from ._core import lazy as _lazy
from ._core.exceptions import CapabilityError, DialError, DialTimeout, FastpathError, OptionError
from ._core.info import ConnectAttempt, ConnectionInfo, TFOStatus
from ._core.options import FastpathOptions

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._backends.httpcore_anyio import AsyncFastpathBackend
    from ._backends.httpcore_sync import FastpathBackend
    from ._core.capabilities import Capabilities, probe
    from ._core.connection import FastpathConnection, connect
    from ._core.destinations import (
        DestinationInfo,
        destination_limit,
        destinations,
        reset_destinations,
        set_destination_limit,
    )
    from ._core.proof import connection_info
    from ._core.stats import FastpathStats, stats
    from ._core.trace import milestones
    from ._integrations.autoinstall import install, status, uninstall
    from ._integrations.env import EnvConfig, read_environ
    from ._integrations.httpx import (
        AsyncFastpathTransport,
        FastpathTransport,
        async_fastpath_client,
        fastpath_client,
    )
    from ._integrations.requests import FastpathAdapter
    from ._integrations.urllib3 import FastpathPoolManager, FastpathProxyManager
    from .http3._httpx import AsyncHTTP3Transport, HTTP3Transport
    from .http3._requests import HTTP3Adapter

__version__ = "0.1.0"

__all__ = [
    # options and proof
    "FastpathOptions",
    "ConnectionInfo",
    "ConnectAttempt",
    "TFOStatus",
    "connection_info",
    "probe",
    "Capabilities",
    # process-wide counters and timings
    "stats",
    "FastpathStats",
    "milestones",
    # destination memory
    "destinations",
    "reset_destinations",
    "destination_limit",
    "set_destination_limit",
    "DestinationInfo",
    # one connection for any protocol
    "connect",
    "FastpathConnection",
    # adapters
    "FastpathAdapter",
    "FastpathPoolManager",
    "FastpathProxyManager",
    # process-wide opt-in (also HTTP_FASTPATH=tfo,mptcp)
    "install",
    "uninstall",
    "status",
    "read_environ",
    "EnvConfig",
    # httpx / httpcore
    "FastpathTransport",
    "AsyncFastpathTransport",
    "FastpathBackend",
    "AsyncFastpathBackend",
    "fastpath_client",
    "async_fastpath_client",
    # exceptions
    "FastpathError",
    "OptionError",
    "DialError",
    "DialTimeout",
    "CapabilityError",
    # EXPERIMENTAL HTTP/3 (extra "http3")
    "HTTP3Transport",
    "AsyncHTTP3Transport",
    "HTTP3Adapter",
    "__version__",
]


# Lazy re-exports (name -> module path under http_fastpath): ``import http_fastpath``
# stays free of work and imports no HTTP client until one of these names is used.
_LAZY = {
    "probe": "_core.capabilities",
    "Capabilities": "_core.capabilities",
    "connection_info": "_core.proof",
    "stats": "_core.stats",
    "FastpathStats": "_core.stats",
    "milestones": "_core.trace",
    "destinations": "_core.destinations",
    "reset_destinations": "_core.destinations",
    "destination_limit": "_core.destinations",
    "set_destination_limit": "_core.destinations",
    "DestinationInfo": "_core.destinations",
    "connect": "_core.connection",
    "FastpathConnection": "_core.connection",
    "FastpathAdapter": "_integrations.requests",
    "FastpathPoolManager": "_integrations.urllib3",
    "FastpathProxyManager": "_integrations.urllib3",
    "install": "_integrations.autoinstall",
    "uninstall": "_integrations.autoinstall",
    "status": "_integrations.autoinstall",
    "read_environ": "_integrations.env",
    "EnvConfig": "_integrations.env",
    "HTTP3Transport": "http3._httpx",
    "AsyncHTTP3Transport": "http3._httpx",
    "HTTP3Adapter": "http3._requests",
    "FastpathTransport": "_integrations.httpx",
    "AsyncFastpathTransport": "_integrations.httpx",
    "fastpath_client": "_integrations.httpx",
    "async_fastpath_client": "_integrations.httpx",
    "FastpathBackend": "_backends.httpcore_sync",
    "AsyncFastpathBackend": "_backends.httpcore_anyio",
}


__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
