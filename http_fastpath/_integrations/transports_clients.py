"""httpx-style clients that keep the environment's proxies on the fastpath transports.

``fastpath_client()`` (:mod:`.httpx`, :mod:`.httpx2`) builds its client with
:func:`make_client`: every route, direct and proxied, gets a fastpath transport, the
proxy routes read from the environment as a stock client reads them
(:func:`environment_proxies`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.request import getproxies

from .._core.exceptions import OptionError

__all__ = ["environment_proxies", "make_client"]

_TRANSPORT_KEYS = frozenset(
    {"verify", "cert", "trust_env", "http1", "http2", "limits", "uds", "local_address",
     "retries", "socket_options", "tfo", "mptcp", "tfo_policy", "options", "http3"}
)  # fmt: skip


def _is_ip(host: str, version: int) -> bool:
    import ipaddress

    try:
        address = ipaddress.ip_address(host.split("/")[0])
    except ValueError:
        return False
    return address.version == version


def environment_proxies() -> dict[str, str | None]:
    """The proxy routes a stock httpx client reads from the environment.

    ``{"http://": url, "https://": url, "all://": url, "all://*example.com": None, ...}``:
    the same table httpx builds from ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and
    ``NO_PROXY`` (``None`` means "connect directly"; ``NO_PROXY=*`` disables proxies).
    """
    info = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if info.get(scheme):
            url = info[scheme]
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for host in (h.strip() for h in info.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_ip(host, 4):
            mounts[f"all://{host}"] = None
        elif _is_ip(host, 6):
            mounts[f"all://[{host}]"] = None
        elif host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def make_client(client_cls: Callable[..., Any], transport_cls: type, kwargs: dict[str, Any]) -> Any:
    """``client_cls(**kwargs)`` whose every route (direct and proxied) uses ``transport_cls``.

    Proxies are chosen like a stock client: ``proxy=`` if given, else (with
    ``trust_env=True``) ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` minus ``NO_PROXY``;
    user ``mounts=`` come on top.
    """
    transport_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _TRANSPORT_KEYS}
    for shared in ("verify", "cert", "trust_env", "http1", "http2", "limits"):
        if shared in transport_kwargs:
            kwargs[shared] = transport_kwargs[shared]
    if "transport" in kwargs:
        raise OptionError("transport", kwargs["transport"], "not given (the helper builds it)")
    proxy = kwargs.pop("proxy", None)
    user_mounts: Mapping[str, Any] = kwargs.pop("mounts", None) or {}
    if proxy is not None:
        routes: dict[str, Any] = {"all://": proxy}
    elif kwargs.get("trust_env", True):
        routes = dict(environment_proxies())
    else:
        routes = {}
    mounts: dict[str, Any] = {
        pattern: None if url is None else transport_cls(proxy=url, **transport_kwargs)
        for pattern, url in routes.items()
    }
    mounts.update(user_mounts)
    kwargs["transport"] = transport_cls(**transport_kwargs)
    kwargs["mounts"] = mounts
    return client_cls(**kwargs)
