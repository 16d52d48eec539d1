"""Addresses: ``getaddrinfo`` for a stream connection, IP literals resolved once.

:func:`resolve` is the first step of :func:`.dialer.dial`; :func:`literal_addresses`
answers for an IP literal without a resolver, so an event loop may call it inline.
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

from . import trace as _trace
from .memory import DestinationKey

__all__ = ["Address", "literal_addresses", "resolve"]

Address = tuple[int, tuple[Any, ...]]  # (family, sockaddr)


def _key(address: Address) -> DestinationKey:
    """The destination memory's key of ``address``."""
    sockaddr = address[1]
    return (address[0], sockaddr[0], sockaddr[1])


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[Address]:
    """``getaddrinfo`` for a stream connection; raises ``socket.gaierror`` like the stdlib."""
    found = _NUMERIC.get((host, port, family))  # an IP literal seen before (never bracketed)
    if found is not None and _trace.collecting() is None:
        return found
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    tracing = _trace.collecting() is not None
    if tracing:
        _trace.mark("dns_start")
    found = literal_addresses(host, port, family)
    if found is not None:
        if tracing:
            _trace.mark("dns_done")
        return found
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    if tracing:
        _trace.mark("dns_done")
    if not infos:
        raise OSError("getaddrinfo returns an empty list")
    return [(fam, sockaddr) for fam, _, _, _, sockaddr in infos]


#: IP literals already resolved (numeric resolution never changes); read-only lists
_NUMERIC: dict[tuple[str, int, int], list[Address]] = {}


def literal_addresses(host: str, port: int, family: int = 0) -> list[Address] | None:
    """The addresses of an IP literal (cached), or None when ``host`` is not one.

    No resolver is asked (``AI_NUMERICHOST``), so an event loop may call it inline.
    """
    if not host or not (host[-1].isdigit() or ":" in host):  # a name (cheap test first)
        return None
    found = _NUMERIC.get((host, port, family))
    if found is not None:
        return found
    try:
        infos = _socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, _NUMERICHOST)
    except (OSError, UnicodeError, TypeError, ValueError):
        return None
    found = [(fam, sockaddr) for fam, _, _, _, sockaddr in infos]
    if found and "%" not in host:  # (a scope names an interface, which may change)
        if len(_NUMERIC) >= 256:
            _NUMERIC.clear()
        _NUMERIC[(host, port, family)] = found
    return found or None


_NUMERICHOST = socket.AI_NUMERICHOST
