"""Errors of the EXPERIMENTAL HTTP/3 transport (mapped to httpx/requests classes by the shells).

::

    DialError (FastpathError, OSError)
    ├── H3ConnectError            the QUIC connection could not be established
    │   └── H3TLSError            ...because the TLS handshake failed (certificate, hostname, ALPN)
    └── DialTimeout
        └── H3ConnectTimeout      ...within the connect timeout
    H3StreamError (FastpathError, OSError)     the connection or stream broke after connecting
    H3ReadTimeout (FastpathError, TimeoutError) no response data within the read timeout
"""

from __future__ import annotations

from ..._core.exceptions import DialError, DialTimeout, FastpathError

__all__ = ["H3ConnectError", "H3ConnectTimeout", "H3ReadTimeout", "H3StreamError", "H3TLSError"]


class H3ConnectError(DialError):
    """The QUIC connection could not be established (refused, closed during the handshake)."""


class H3TLSError(H3ConnectError):
    """The TLS handshake failed: certificate not trusted, wrong hostname, or no ``h3`` ALPN."""


class H3ConnectTimeout(DialTimeout):
    """The QUIC handshake did not complete within the connect timeout."""


class H3StreamError(FastpathError, OSError):
    """The connection was closed or the request stream reset after the connection was up."""


class H3ReadTimeout(FastpathError, TimeoutError):
    """No response data arrived within the read timeout."""
