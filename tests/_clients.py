"""One way to drive every client the reliability matrix compares.

``run(kind, impl, calls)`` makes the requests in ``calls`` through one client (so later
calls may reuse a kept-alive connection) and returns one :class:`Outcome` per call that was
made; the first exception ends the run and is recorded. ``kind`` is ``"requests"``,
``"httpx"`` (sync) or ``"httpx-async"`` (asyncio); ``impl`` is ``"stock"`` (plain
requests/httpx) or ``"fast"`` (our adapter/transports with ``options``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ssl
import time
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
import requests
from requests.adapters import HTTPAdapter

from http_fastpath import (
    ConnectionInfo,
    FastpathAdapter,
    connection_info,
)

from ._stack import AsyncFastpathTransport, FastpathTransport, httpx

KINDS = ("requests", "httpx", "httpx-async")
IMPLS = ("stock", "fast")
ALL = [(kind, impl) for kind in KINDS for impl in IMPLS]
ALL_IDS = [f"{kind}-{impl}" for kind, impl in ALL]
FAST = [kind for kind in KINDS]

#: parametrize over every client kind, stock and fastpath
BOTH = pytest.mark.parametrize(("kind", "impl"), ALL, ids=ALL_IDS)
#: parametrize over every client kind, fastpath only
EACH_FAST = pytest.mark.parametrize("kind", KINDS)

Call = tuple[str, str] | tuple[str, str, bytes]


@dataclasses.dataclass
class Outcome:
    status: int | None = None
    body: bytes = b""
    info: ConnectionInfo | None = None
    error: BaseException | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def run(
    kind: str,
    impl: str,
    calls: Sequence[Call],
    *,
    options: dict[str, Any] | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 5.0,
    retries: int = 0,
    verify: Any = True,
    pause: float = 0.0,
) -> list[Outcome]:
    """Make ``calls`` (method, url[, body]) through one client of ``kind``/``impl``.

    ``pause``: seconds to wait between calls (the connection idles in the pool meanwhile).
    """
    opts = dict(options or {})
    if kind == "requests":
        return _run_requests(
            impl, calls, opts, (connect_timeout, read_timeout), retries, verify, pause
        )
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    if isinstance(verify, str):  # a CA file: httpx wants a context
        verify = ssl.create_default_context(cafile=verify)
    if kind == "httpx":
        return _run_httpx(impl, calls, opts, timeout, retries, verify, pause)
    if kind == "httpx-async":
        return asyncio.run(_run_httpx_async(impl, calls, opts, timeout, retries, verify, pause))
    if kind == "httpx-trio":
        import trio

        return trio.run(_run_httpx_async, impl, calls, opts, timeout, retries, verify, pause)
    raise ValueError(kind)


def _split(call: Call) -> tuple[str, str, bytes | None]:
    return (call[0], call[1], call[2] if len(call) == 3 else None)


def _run_requests(
    impl: str,
    calls: Sequence[Call],
    opts: dict[str, Any],
    timeout: tuple[float, float],
    retries: int,
    verify: Any,
    pause: float,
) -> list[Outcome]:
    adapter = (
        FastpathAdapter(max_retries=retries, **opts)
        if impl == "fast"
        else HTTPAdapter(max_retries=retries)
    )
    out: list[Outcome] = []
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        for index, call in enumerate(calls):
            if index and pause:
                time.sleep(pause)
            method, url, body = _split(call)
            try:
                resp = session.request(method, url, data=body, timeout=timeout, verify=verify)
            except Exception as exc:
                out.append(Outcome(error=exc))
                break
            out.append(Outcome(resp.status_code, resp.content, connection_info(resp)))
    return out


def _run_httpx(
    impl: str,
    calls: Sequence[Call],
    opts: dict[str, Any],
    timeout: httpx.Timeout,
    retries: int,
    verify: Any,
    pause: float,
) -> list[Outcome]:
    transport: httpx.BaseTransport = (
        FastpathTransport(retries=retries, verify=verify, **opts)
        if impl == "fast"
        else httpx.HTTPTransport(retries=retries, verify=verify)
    )
    out: list[Outcome] = []
    with httpx.Client(transport=transport, timeout=timeout) as client:
        for index, call in enumerate(calls):
            if index and pause:
                time.sleep(pause)
            method, url, body = _split(call)
            try:
                resp = client.request(method, url, content=body)
            except Exception as exc:
                out.append(Outcome(error=exc))
                break
            out.append(Outcome(resp.status_code, resp.content, connection_info(resp)))
    return out


async def _run_httpx_async(
    impl: str,
    calls: Sequence[Call],
    opts: dict[str, Any],
    timeout: httpx.Timeout,
    retries: int,
    verify: Any,
    pause: float,
) -> list[Outcome]:
    transport: httpx.AsyncBaseTransport = (
        AsyncFastpathTransport(retries=retries, verify=verify, **opts)
        if impl == "fast"
        else httpx.AsyncHTTPTransport(retries=retries, verify=verify)
    )
    out: list[Outcome] = []
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        for index, call in enumerate(calls):
            if index and pause:
                await anyio.sleep(pause)
            method, url, body = _split(call)
            try:
                resp = await client.request(method, url, content=body)
            except Exception as exc:
                out.append(Outcome(error=exc))
                break
            out.append(Outcome(resp.status_code, resp.content, connection_info(resp)))
    return out


def ok(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Assert every call succeeded (re-raising the first error) and return the outcomes."""
    for outcome in outcomes:
        if outcome.error is not None:
            raise AssertionError(f"request failed: {outcome.error!r}") from outcome.error
    return list(outcomes)
