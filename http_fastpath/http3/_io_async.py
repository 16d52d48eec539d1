"""EXPERIMENTAL HTTP/3: the waits of :mod:`._async_drivers` (asyncio or trio, through anyio).

The same names as :mod:`._io_sync`, which :mod:`._sync_drivers` (generated) uses instead.
anyio is imported when first used, as before the drivers were split.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from .._core.addresses import Address

if TYPE_CHECKING:
    import anyio

__all__ = ["Chunks", "Lock", "resolve_first", "shield_cancellation", "wait_socket"]

#: What ``iter_body`` returns: the response body, chunk by chunk.
Chunks = AsyncGenerator[bytes, None]


class Lock:
    """An ``anyio.Lock``, made at first use (a pool may be built outside the event loop)."""

    def __init__(self) -> None:
        self._lock: anyio.Lock | None = None

    def _get(self) -> anyio.Lock:
        if self._lock is None:
            import anyio

            self._lock = anyio.Lock()
        return self._lock

    async def __aenter__(self) -> None:
        await self._get().acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._get().release()

    def acquire_nowait(self) -> bool:
        """Take the lock if it is free; False if it is not (never waits)."""
        import anyio

        lock = self._get()
        if lock.locked():
            return False
        try:
            lock.acquire_nowait()
        except anyio.WouldBlock:  # free, but tasks are queued for it
            return False
        return True

    def release(self) -> None:
        self._get().release()


def shield_cancellation() -> anyio.CancelScope:
    """A scope that outside cancellation does not reach (for a close that must finish)."""
    import anyio

    return anyio.CancelScope(shield=True)


async def resolve_first(host: str, port: int) -> Address:
    """The first address of ``host`` (an IPv6 literal may be in brackets), from anyio's
    resolver; raises ``socket.gaierror``."""
    import anyio

    plain = host[1:-1] if host.startswith("[") else host
    infos = await anyio.getaddrinfo(plain, port, type=socket.SOCK_DGRAM)
    family, _, _, _, sockaddr = infos[0]
    return (int(family), tuple(sockaddr))


async def wait_socket(fd: int, write: bool, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until ``fd`` is readable (writable, when ``write``);
    True if it became so."""
    import anyio

    with anyio.move_on_after(timeout):
        if write:
            await anyio.wait_writable(fd)
        else:
            await anyio.wait_readable(fd)
        return True
    return False
