"""EXPERIMENTAL HTTP/3 core: the QUIC stream-layer interface and a sans-IO HTTP/3 client.

Nothing here does I/O. :mod:`._stream_layer` is the explicit interface between the HTTP/3
layer and a QUIC backend (userspace aioquic or Linux kernel QUIC); :mod:`._client` runs
``aioquic.h3.connection.H3Connection`` over any backend that implements it.
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["AIOQUIC_VERSION", "require_aioquic"]

#: The aioquic release the HTTP/3 backends were written and tested against (the ``http3``
#: extra pins it). The kernel backend drives ``aioquic.tls``, which is not a documented API.
AIOQUIC_VERSION = "1.7.2"


def require_aioquic() -> None:
    """Raise ImportError with the install hint unless the pinned aioquic is installed."""
    try:
        found = importlib.metadata.version("aioquic")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            "HTTP/3 needs aioquic: pip install 'http_fastpath[http3]'"
            f" (installs aioquic=={AIOQUIC_VERSION})"
        ) from None
    if found != AIOQUIC_VERSION:
        raise ImportError(
            f"HTTP/3 needs aioquic=={AIOQUIC_VERSION} exactly (found {found}): the kernel QUIC "
            "backend drives aioquic.tls internals that change between releases; "
            "pip install 'http_fastpath[http3]'"
        )
