"""http_fastpath: TCP Fast Open and Multipath TCP for requests and httpx.

Importing this package does no work: no socket is opened, no sysctl is read and no
HTTP client is imported until you use one of the names below.
"""

from __future__ import annotations

import typing

from . import _lazy
from ._exceptions import CapabilityError, DialError, DialTimeout, FastpathError, OptionError
from ._info import ConnectAttempt, ConnectionInfo, TFOStatus
from ._options import FastpathOptions

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._autoinstall import install, status, uninstall
    from ._capabilities import Capabilities, probe
    from ._destinations import (
        DestinationInfo,
        destinations,
        reset_destinations,
        set_destination_limit,
    )
    from ._http3_httpx import AsyncHTTP3Transport, HTTP3Transport
    from ._http3_requests import HTTP3Adapter
    from ._httpcore_async import AsyncFastpathBackend
    from ._httpcore_backend import FastpathBackend
    from ._httpx import (
        AsyncFastpathTransport,
        FastpathTransport,
        async_fastpath_client,
        fastpath_client,
    )
    from ._proof import connection_info
    from ._requests import FastpathAdapter
    from ._stats import FastpathStats, stats
    from ._urllib3 import FastpathPoolManager, FastpathProxyManager

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
    # process-wide counters
    "stats",
    "FastpathStats",
    # destination memory
    "destinations",
    "reset_destinations",
    "set_destination_limit",
    "DestinationInfo",
    # adapters
    "FastpathAdapter",
    "FastpathPoolManager",
    "FastpathProxyManager",
    # process-wide opt-in (also HTTP_FASTPATH=tfo,mptcp)
    "install",
    "uninstall",
    "status",
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


# Lazy re-exports (name -> private module): ``import http_fastpath`` stays free of work
# and imports no HTTP client until one of these names is used.
_LAZY = {
    "probe": "_capabilities",
    "Capabilities": "_capabilities",
    "connection_info": "_proof",
    "stats": "_stats",
    "FastpathStats": "_stats",
    "destinations": "_destinations",
    "reset_destinations": "_destinations",
    "set_destination_limit": "_destinations",
    "DestinationInfo": "_destinations",
    "FastpathAdapter": "_requests",
    "FastpathPoolManager": "_urllib3",
    "FastpathProxyManager": "_urllib3",
    "install": "_autoinstall",
    "uninstall": "_autoinstall",
    "status": "_autoinstall",
    "HTTP3Transport": "_http3_httpx",
    "AsyncHTTP3Transport": "_http3_httpx",
    "HTTP3Adapter": "_http3_requests",
    "FastpathTransport": "_httpx",
    "AsyncFastpathTransport": "_httpx",
    "fastpath_client": "_httpx",
    "async_fastpath_client": "_httpx",
    "FastpathBackend": "_httpcore_backend",
    "AsyncFastpathBackend": "_httpcore_async",
}


__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
