"""EXPERIMENTAL HTTP/3 transports for httpx2 (the implementation: :mod:`._transports`)."""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

import httpx2

from ._transports import AsyncH3TransportImpl, H3TransportImpl

__all__ = ["AsyncHTTP3Transport", "HTTP3Transport"]


class HTTP3Transport(H3TransportImpl[httpx2.Request, httpx2.Response], httpx2.BaseTransport):
    __doc__ = H3TransportImpl.__doc__
    _client: ClassVar[ModuleType] = httpx2


class AsyncHTTP3Transport(
    AsyncH3TransportImpl[httpx2.Request, httpx2.Response], httpx2.AsyncBaseTransport
):
    __doc__ = AsyncH3TransportImpl.__doc__
    _client: ClassVar[ModuleType] = httpx2
