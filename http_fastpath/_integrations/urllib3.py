"""urllib3 pools and pool managers whose connections come from the fastpath dialer.

:class:`FastpathPoolManager` / :class:`FastpathProxyManager` install the pools on a *new*
``pool_classes_by_scheme`` dict (urllib3's module-level dict is never touched) and hand
the options to each pool outside the pool key. The connections they make
(:class:`FastpathHTTPConnection`, :class:`FastpathHTTPSConnection`: TCP Fast Open and
MPTCP, the request or ClientHello in the SYN, stock exceptions) are in
:mod:`.urllib3_connection` and re-exported here; their TLS over memory buffers and shared
contexts are in :mod:`.urllib3_tls`.
"""

from __future__ import annotations

from typing import Any

from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager

from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .urllib3_connection import (
    FastpathHTTPConnection,
    FastpathHTTPSConnection,
    _stock_str,
    ensure_stock_urllib3,
    urllib3_future_problem,
)

__all__ = [
    "FastpathHTTPConnection",
    "FastpathHTTPConnectionPool",
    "FastpathHTTPSConnection",
    "FastpathHTTPSConnectionPool",
    "FastpathPoolManager",
    "FastpathProxyManager",
    "ensure_stock_urllib3",
    "urllib3_future_problem",
]


# -- pools and managers ---------------------------------------------------------------------


class FastpathHTTPConnectionPool(HTTPConnectionPool):
    """``HTTPConnectionPool`` making :class:`FastpathHTTPConnection` connections."""

    ConnectionCls = FastpathHTTPConnection

    def __str__(self) -> str:
        return _stock_str(self, super().__str__())


class FastpathHTTPSConnectionPool(HTTPSConnectionPool):
    """``HTTPSConnectionPool`` making :class:`FastpathHTTPSConnection` connections."""

    ConnectionCls = FastpathHTTPSConnection

    def __str__(self) -> str:
        return _stock_str(self, super().__str__())


def _pool_classes() -> dict[str, type[HTTPConnectionPool]]:
    return {"http": FastpathHTTPConnectionPool, "https": FastpathHTTPSConnectionPool}


def _with_options(
    context: dict[str, Any] | None, default: dict[str, Any], options: FastpathOptions
) -> dict[str, Any]:
    # After the pool key was computed: the options never reach PoolKey(**...).
    out = dict(default if context is None else context)
    out["fastpath_options"] = options
    return out


class _FastpathPools(PoolManager):
    """Hands the fastpath options to every new pool, after the pool key was computed."""

    fastpath_options: FastpathOptions

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        context = _with_options(request_context, self.connection_pool_kw, self.fastpath_options)
        return super()._new_pool(scheme, host, port, context)


class FastpathPoolManager(_FastpathPools):
    """A ``urllib3.PoolManager`` whose connections use TCP Fast Open and MPTCP.

    ``FastpathPoolManager(num_pools=10, headers=None, *, options=None, tfo=None,
    mptcp=None, tfo_policy=None, **connection_pool_kw)``: give either ``options`` (a
    :class:`~http_fastpath.FastpathOptions`) or the keywords (defaults: ``tfo=True``,
    ``mptcp=True``, ``tfo_policy="safe"``); every other argument is ``PoolManager``'s::

        pm = FastpathPoolManager(mptcp=False)
        resp = pm.request("GET", "https://example.test/")
        http_fastpath.connection_info(resp)
    """

    def __init__(
        self,
        num_pools: int = 10,
        headers: Any = None,
        *,
        options: FastpathOptions | None = None,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        **connection_pool_kw: Any,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        super().__init__(num_pools, headers, **connection_pool_kw)
        self.pool_classes_by_scheme = _pool_classes()


class FastpathProxyManager(_FastpathPools, ProxyManager):
    """A ``urllib3.ProxyManager`` on the fastpath: the client→proxy hop uses TFO/MPTCP.

    Same arguments as ``ProxyManager`` plus the fastpath keywords of
    :class:`FastpathPoolManager`. Plain ``http://`` requests are forwarded (the request
    rides in the SYN when replay-safe); ``https://`` requests go through a CONNECT tunnel
    (the CONNECT request rides in the SYN).
    """

    def __init__(
        self,
        proxy_url: str,
        num_pools: int = 10,
        headers: Any = None,
        *,
        options: FastpathOptions | None = None,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        super().__init__(proxy_url, num_pools, headers, **kwargs)
        self.pool_classes_by_scheme = _pool_classes()
