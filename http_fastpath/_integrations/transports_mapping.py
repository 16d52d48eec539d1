"""What an httpx-style transport does between the client and httpcore (see :mod:`.transports`).

The stock transport's mapping, written once for httpx and httpx2: the client's request as
an httpcore request (:func:`_core_request`), the response extensions with our
:class:`ConnectionInfo` (:func:`_extensions`), the response bodies (sync and async, each
a few lines of I/O) and httpcore's exceptions as the client's (:class:`_ExceptionMap`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from .._core.proof import INFO_EXTENSION

if TYPE_CHECKING:
    from .transports import ClientStack

__all__: list[str] = []

#: the exception classes of httpx's own transport table (httpcore name -> httpx name)
_EXC_NAMES = (
    "TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
    "NetworkError", "ConnectError", "ReadError", "WriteError", "ProxyError",
    "UnsupportedProtocol", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
)  # fmt: skip


class _ExceptionMap:
    """``with``: re-raise an httpcore exception as the client's (most specific class wins).

    What the stock transport's ``map_httpcore_exceptions`` does, as a plain class: no
    generator per use, and one instance serves every request (it keeps no state).
    """

    __slots__ = ("_map",)

    def __init__(self, exc_map: dict[type[Exception], type[Exception]]) -> None:
        self._map = exc_map

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(exc, Exception):
            return  # (None: the exception, if any, goes on)
        mapped: type[Exception] | None = None
        for from_exc, to_exc in self._map.items():
            if isinstance(exc, from_exc) and (mapped is None or issubclass(to_exc, mapped)):
                mapped = to_exc
        if mapped is not None:
            raise mapped(str(exc)) from exc


def _core_request(core: ModuleType, request: Any) -> Any:
    url = request.url
    return core.Request(
        method=request.method,
        url=core.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _extensions(resp: Any) -> dict[str, Any]:
    """The response extensions plus our :class:`ConnectionInfo` (when the stream has one).

    httpcore makes a new dict per response: the key is added to it (no copy). The proof
    is a deferred :class:`ConnectionInfo`, read from the kernel when first looked at.
    """
    extensions: dict[str, Any] = resp.extensions
    stream = extensions.get("network_stream")
    if stream is not None:
        info = stream.get_extra_info(INFO_EXTENSION)
        if info is not None:
            extensions[INFO_EXTENSION] = info
    return extensions


class _Stream:
    """A response body: the httpcore stream, its exceptions mapped to the client's."""

    __slots__ = ("_core_stream", "_stack")

    def __init__(self, stack: ClientStack, core_stream: Any) -> None:
        self._stack = stack
        self._core_stream = core_stream


class _ResponseStream(_Stream):
    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:
        with self._stack.mapped_exceptions():
            yield from self._core_stream

    def close(self) -> None:
        close = getattr(self._core_stream, "close", None)
        if close is not None:
            close()


class _AsyncResponseStream(_Stream):
    __slots__ = ()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self._stack.mapped_exceptions():
            async for part in self._core_stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._core_stream, "aclose", None)
        if aclose is not None:
            await aclose()
