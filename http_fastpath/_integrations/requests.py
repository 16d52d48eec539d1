"""``FastpathAdapter``: a requests transport adapter on the fastpath dialer.

A thin shell over :mod:`.urllib3`: it only swaps the pool managers requests builds for
ours, so everything ``HTTPAdapter`` does (TLS settings per request, env proxies resolved
by the Session, retries, streaming, exception mapping) stays requests' own code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import requests
import urllib3
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, HTTPAdapter
from urllib3.poolmanager import PoolManager

from .._core.log import log_fallback_once
from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .._core.upgrade import check_files, check_http3
from .urllib3 import FastpathPoolManager, FastpathProxyManager, ensure_stock_urllib3

if TYPE_CHECKING:
    from ..http3._upgrade import RequestsUpgrade

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

    ``http3="auto"`` (EXPERIMENTAL, extra ``http3``; default False): an ``Alt-Svc: h3``
    advertised by a verified ``https://`` origin is remembered, and later requests to it
    go over HTTP/3; when QUIC does not complete within a short bound they go over TCP
    (see docs/http3.md, "Alt-Svc upgrade"). With it, ``alt_svc_file`` (a path) keeps the
    advertised alternatives across processes, and ``ticket_file`` (a path; secrets, 0600)
    the TLS session tickets, so a new process resumes with 0-RTT (docs/http3.md,
    "Persistence").
    Raises :class:`~http_fastpath.FastpathError` if ``urllib3`` is urllib3-future.
    """

    __attrs__ = [
        *HTTPAdapter.__attrs__,
        "fastpath_options",
        "fastpath_http3",
        "fastpath_alt_svc_file",
        "fastpath_ticket_file",
    ]

    fastpath_options: FastpathOptions
    fastpath_http3: Literal[False, "auto"]
    fastpath_alt_svc_file: str | None
    fastpath_ticket_file: str | None

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
        http3: Literal[False, "auto"] = False,
        alt_svc_file: str | os.PathLike[str] | None = None,
        ticket_file: str | os.PathLike[str] | None = None,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        self.fastpath_http3 = "auto" if check_http3(http3) else False
        files = check_files(self.fastpath_http3 == "auto", alt_svc_file, ticket_file)
        self.fastpath_alt_svc_file, self.fastpath_ticket_file = files
        self._upgrade = _upgrade(self.fastpath_http3, *files)
        super().__init__(pool_connections, pool_maxsize, max_retries, pool_block)

    def __setstate__(self, state: dict[str, Any]) -> None:
        HTTPAdapter.__setstate__(self, state)  # type: ignore[attr-defined]
        self.fastpath_http3 = "auto" if getattr(self, "fastpath_http3", False) == "auto" else False
        files = (
            getattr(self, "fastpath_alt_svc_file", None),
            getattr(self, "fastpath_ticket_file", None),
        )
        self.fastpath_alt_svc_file, self.fastpath_ticket_file = files
        self._upgrade = _upgrade(self.fastpath_http3, *files)

    def __repr__(self) -> str:
        return f"<FastpathAdapter {self.fastpath_options!r}>"

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: None | float | tuple[float, float] | tuple[float, None] | urllib3.Timeout = None,
        verify: bool | str = True,
        cert: None | bytes | str | tuple[bytes | str, bytes | str] = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """``HTTPAdapter.send``; with ``http3="auto"``, over HTTP/3 when the origin offered it."""
        if self._upgrade is None:  # (HTTPAdapter's, called directly: no super() per request)
            return HTTPAdapter.send(self, request, stream, timeout, verify, cert, proxies)  # type: ignore[arg-type]
        response: requests.Response = self._upgrade.send(
            self, request, super().send, stream, timeout, verify, cert, proxies
        )
        return response

    def close(self) -> None:
        if self._upgrade is not None:
            self._upgrade.close()
        super().close()

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


def _upgrade(
    http3: object, alt_svc_file: str | None, ticket_file: str | None
) -> RequestsUpgrade | None:
    """The Alt-Svc upgrade's shell for ``http3="auto"`` (imports the HTTP/3 extra)."""
    if http3 != "auto":
        return None
    from ..http3._persist import kept
    from ..http3._upgrade import RequestsUpgrade

    return RequestsUpgrade(*kept(alt_svc_file, ticket_file))
