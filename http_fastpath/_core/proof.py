"""``connection_info(response)``: the proof attached to a response by our adapters."""

from __future__ import annotations

from collections.abc import Mapping

from .info import ConnectionInfo

__all__ = ["INFO_ATTR", "INFO_EXTENSION", "connection_info"]

#: httpx responses: ``response.extensions[INFO_EXTENSION]`` (set by our transports).
INFO_EXTENSION = "http_fastpath.connection_info"
#: requests responses: ``response.raw.<INFO_ATTR>`` on the urllib3 response (set by our pools).
INFO_ATTR = "_http_fastpath_info"


def connection_info(response: object) -> ConnectionInfo | None:
    """The :class:`ConnectionInfo` of the connection that served ``response``.

    Works for requests, httpx, urllib3 and httpcore responses; it is captured when
    the response headers arrive, so it is still there after the body was read and the
    connection went back to the pool. Returns None when the response did not come
    through an http_fastpath adapter or transport.
    """
    extensions = getattr(response, "extensions", None)
    if isinstance(extensions, Mapping):
        info = extensions.get(INFO_EXTENSION)
        if isinstance(info, ConnectionInfo):
            return info
        # httpcore used directly: the stream keeps the proof (captured by close at the latest).
        get_extra_info = getattr(extensions.get("network_stream"), "get_extra_info", None)
        if get_extra_info is not None:
            try:
                info = get_extra_info(INFO_EXTENSION)
            except OSError:
                info = None
            if isinstance(info, ConnectionInfo):
                return info
    for holder in (response, getattr(response, "raw", None)):
        info = getattr(holder, INFO_ATTR, None)
        if isinstance(info, ConnectionInfo):
            return info
    return None
