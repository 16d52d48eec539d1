"""EXPERIMENTAL HTTP/3 (extra ``http3``): QUIC in userspace (aioquic) or in the Linux kernel.

::

    from http_fastpath.http3 import AsyncHTTP3Transport, HTTP3Adapter, HTTP3Transport

``uapi_mismatch()`` says whether this host's kernel QUIC module speaks the uapi revision
the kernel backend was built for (None: it does; else why not): ``backend="auto"`` uses
the kernel only then, and ``backend="kernel"`` raises with that reason.

The same classes are still importable from ``http_fastpath`` (and the httpx2 ones from
``http_fastpath.httpx2``). Importing this module does no work; each name loads on first use.
See docs/http3.md.
"""

from __future__ import annotations

import typing

from .._core import lazy as _lazy

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._httpx import AsyncHTTP3Transport, HTTP3Transport
    from ._quic_kernel import uapi_mismatch
    from ._requests import HTTP3Adapter

__all__ = ["HTTP3Transport", "AsyncHTTP3Transport", "HTTP3Adapter", "uapi_mismatch"]

_LAZY = {
    "HTTP3Transport": "http3._httpx",
    "AsyncHTTP3Transport": "http3._httpx",
    "HTTP3Adapter": "http3._requests",
    "uapi_mismatch": "http3._quic_kernel",
}

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
