"""httpx2 transports on the fastpath dialer, and clients that keep environment proxies.

The implementation is shared with httpx (:mod:`.transports`); this module gives it
httpx2's base classes and types. ``http_fastpath.connection_info(response)`` reads the
proof every response carries.
"""

from __future__ import annotations

from typing import Any

import httpcore2
import httpx2

from .._backends.httpcore2_anyio import AsyncFastpathBackend
from .._backends.httpcore2_sync import FastpathBackend
from .transports import AsyncTransportImpl, ClientStack, SyncTransportImpl
from .transports_clients import environment_proxies, make_client

__all__ = [
    "AsyncFastpathTransport",
    "FastpathTransport",
    "async_fastpath_client",
    "environment_proxies",
    "fastpath_client",
]

STACK = ClientStack(httpx2, httpcore2, FastpathBackend, AsyncFastpathBackend)


class FastpathTransport(SyncTransportImpl[httpx2.Request, httpx2.Response], httpx2.BaseTransport):
    """``httpx2.HTTPTransport`` whose connections use TCP Fast Open and MPTCP when possible.

    Takes every ``httpx2.HTTPTransport`` argument (same meaning, same defaults) plus
    ``tfo``, ``mptcp`` and ``tfo_policy`` (see :class:`http_fastpath.FastpathOptions`;
    defaults ``True``, ``True``, ``"safe"``) or a ready ``options=FastpathOptions(...)``.
    Exceptions are httpx2's, exactly as with ``httpx2.HTTPTransport``. Every response
    carries its connection's proof: ``http_fastpath.connection_info(response)``.

    ``httpx2.Client(transport=...)`` ignores proxy environment variables; use
    :func:`fastpath_client` to keep them. ``proxy=`` given to the client
    is routed through a fastpath transport with the same options.

    ``http3="auto"`` (EXPERIMENTAL, extra ``http3``; default False): later requests to an
    origin that advertised ``Alt-Svc: h3`` go over HTTP/3, with a bounded fallback to
    TCP (docs/http3.md, "Alt-Svc upgrade").
    """

    _stack = STACK


class AsyncFastpathTransport(
    AsyncTransportImpl[httpx2.Request, httpx2.Response], httpx2.AsyncBaseTransport
):
    """``httpx2.AsyncHTTPTransport`` on the fastpath dialer; runs under asyncio and trio.

    Same arguments and behaviour as :class:`FastpathTransport`.
    """

    _stack = STACK


def fastpath_client(**kwargs: Any) -> httpx2.Client:
    """An ``httpx2.Client`` whose every route (direct and proxied) uses :class:`FastpathTransport`.

    Takes ``httpx2.Client`` arguments plus the transport-only ones (``uds``,
    ``local_address``, ``retries``, ``socket_options``, ``tfo``, ``mptcp``, ``tfo_policy``,
    ``options``, ``http3``). Proxies are chosen like a stock client: ``proxy=`` if given, else (with
    ``trust_env=True``) ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` minus ``NO_PROXY``;
    user ``mounts=`` come on top.
    """
    client: httpx2.Client = make_client(httpx2.Client, FastpathTransport, dict(kwargs))
    return client


def async_fastpath_client(**kwargs: Any) -> httpx2.AsyncClient:
    """The ``httpx2.AsyncClient`` counterpart of :func:`fastpath_client`."""
    client: httpx2.AsyncClient = make_client(
        httpx2.AsyncClient, AsyncFastpathTransport, dict(kwargs)
    )
    return client
