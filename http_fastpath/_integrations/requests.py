"""``FastpathAdapter``: a requests transport adapter on the fastpath dialer.

A thin shell over :mod:`.urllib3`: it only swaps the pool managers requests builds for
ours, so everything ``HTTPAdapter`` does (TLS settings per request, env proxies resolved
by the Session, retries, streaming, exception mapping) stays requests' own code.
"""

from __future__ import annotations

from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, HTTPAdapter
from urllib3.poolmanager import PoolManager

from .._core.log import log_fallback_once
from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .urllib3 import FastpathPoolManager, FastpathProxyManager, ensure_stock_urllib3

__all__ = ["FastpathAdapter"]

_SOCKS_FALLBACK = (
    "proxy: SOCKS proxies use urllib3's stock SOCKS connections (no TFO/MPTCP on that hop)"
)


class FastpathAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections use TCP Fast Open and Multipath TCP.

    ::

        import requests
        from http_fastpath import FastpathAdapter

        s = requests.Session()
        s.mount("https://", FastpathAdapter())            # TFO + MPTCP
        s.mount("http://", FastpathAdapter(mptcp=False))  # TFO only

    Arguments: every ``HTTPAdapter`` argument (``pool_connections``, ``pool_maxsize``,
    ``max_retries``, ``pool_block``), plus either ``options`` (a
    :class:`~http_fastpath.FastpathOptions`) or the keywords ``tfo`` (default True),
    ``mptcp`` (default True) and ``tfo_policy`` (default ``"safe"``). HTTP and HTTPS
    proxies (forwarding and CONNECT tunnels) get the fastpath on the client→proxy hop;
    SOCKS proxies work through urllib3's stock SOCKS support, without the fastpath.
    Raises :class:`~http_fastpath.FastpathError` if ``urllib3`` is urllib3-future.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "fastpath_options"]

    fastpath_options: FastpathOptions

    def __init__(
        self,
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        max_retries: Any = DEFAULT_RETRIES,
        pool_block: bool = DEFAULT_POOLBLOCK,
        *,
        options: FastpathOptions | None = None,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        super().__init__(pool_connections, pool_maxsize, max_retries, pool_block)

    def __repr__(self) -> str:
        return f"<FastpathAdapter {self.fastpath_options!r}>"

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = DEFAULT_POOLBLOCK,
        **pool_kwargs: Any,
    ) -> None:
        """Build the pool manager (a :class:`FastpathPoolManager`); forwards ``pool_kwargs``."""
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = FastpathPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            options=self.fastpath_options,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        """The (cached) manager for ``proxy``: ours for HTTP(S) proxies, stock for SOCKS."""
        cached: PoolManager | None = self.proxy_manager.get(proxy)
        if cached is not None:
            return cached
        if proxy.lower().startswith("socks"):
            log_fallback_once(_SOCKS_FALLBACK)
            stock: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
            return stock
        manager = FastpathProxyManager(
            proxy,
            proxy_headers=self.proxy_headers(proxy),
            num_pools=self._pool_connections,
            maxsize=self._pool_maxsize,
            block=self._pool_block,
            options=self.fastpath_options,
            **proxy_kwargs,
        )
        self.proxy_manager[proxy] = manager
        return manager
