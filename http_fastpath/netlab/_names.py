"""A name with several addresses, on loopback (for Happy Eyeballs).

Put :func:`._servers.full_backlog` (a silent address: the kernel drops its SYNs) on
``[::1]:PORT`` next to a live server on ``127.0.0.x:PORT`` (or the other way round) and
:func:`resolving` makes a name resolve to both: every client (stock and ours, sync,
asyncio and trio) asks ``socket.getaddrinfo``, which is patched for that name only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["resolving"]


_lock = threading.Lock()


@contextlib.contextmanager
def resolving(names: dict[str, Sequence[str]]) -> Iterator[None]:
    """Within the block, ``socket.getaddrinfo(name, port, ...)`` answers ``names[name]``.

    The addresses (``"::1"``, ``"127.0.0.2"``) come back in the given order (the
    resolver's order), for the family asked (``AF_UNSPEC``: all). Other names go to the
    real resolver. Process-wide (threads of the asyncio and trio resolvers included).
    """
    real = socket.getaddrinfo

    def fake(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host not in names:
            return real(host, port, family, type, proto, flags)
        number = 0 if port is None else int(port)
        out = []
        for address in names[host]:
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family not in (0, fam):
                continue
            sockaddr: tuple[Any, ...] = (
                (address, number, 0, 0) if fam == socket.AF_INET6 else (address, number)
            )
            out.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not out:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return out

    with _lock:
        socket.getaddrinfo = fake
    try:
        yield
    finally:
        with _lock:
            socket.getaddrinfo = real
