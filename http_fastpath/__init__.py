"""http_fastpath: TCP Fast Open and Multipath TCP for requests and httpx.

Importing this package does no work: no socket is opened, no sysctl is read and no
HTTP client is imported until you use one of the names below.
"""

from __future__ import annotations

from ._exceptions import CapabilityError, DialError, DialTimeout, FastpathError, OptionError
from ._info import ConnectionInfo, TFOStatus
from ._options import FastpathOptions

__version__ = "0.1.0"

__all__ = [
    # options and proof
    "FastpathOptions",
    "ConnectionInfo",
    "TFOStatus",
    "probe",
    "Capabilities",
    # exceptions
    "FastpathError",
    "OptionError",
    "DialError",
    "DialTimeout",
    "CapabilityError",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Lazy re-exports: keep ``import http_fastpath`` free of work and of heavy imports.
    if name in ("probe", "Capabilities"):
        from . import _capabilities

        return getattr(_capabilities, name)
    raise AttributeError(f"module 'http_fastpath' has no attribute {name!r}")
