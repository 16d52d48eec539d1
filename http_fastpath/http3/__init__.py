"""EXPERIMENTAL HTTP/3 (extra ``http3``): QUIC in userspace (aioquic) or in the Linux kernel.

::

    from http_fastpath.http3 import AsyncHTTP3Transport, HTTP3Adapter, HTTP3Transport

The same classes are still importable from ``http_fastpath`` (and the httpx2 ones from
``http_fastpath.httpx2``). Importing this module does no work; each name loads on first use.
See docs/http3.md.
"""

from __future__ import annotations

import typing

from .._core import lazy as _lazy

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._httpx import AsyncHTTP3Transport, HTTP3Transport
    from ._requests import HTTP3Adapter

__all__ = ["HTTP3Transport", "AsyncHTTP3Transport", "HTTP3Adapter"]

_LAZY = {
    "HTTP3Transport": "http3._httpx",
    "AsyncHTTP3Transport": "http3._httpx",
    "HTTP3Adapter": "http3._requests",
}

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
