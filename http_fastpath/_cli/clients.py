"""The HTTP clients behind ``http-fastpath get``: httpx or httpx2 + ``FastpathTransport``,
requests + ``FastpathAdapter`` (or the experimental HTTP/3 transport), one request each,
with timings.

The proof comes from ``http_fastpath.connection_info(response)``; the timings from the
dialer's milestones (:mod:`.._core.trace`) plus, for httpx, httpcore's ``trace`` extension.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import time
from typing import Any, Final

from .._core.info import ConnectionInfo
from .output import CLIError, describe_error, one_line, ssl_context

__all__ = [
    "CLIENTS",
    "Request",
    "Result",
    "choose_client",
    "describe_client_error",
    "http3_transport",
    "is_client_error",
    "send_httpx",
    "send_requests",
    "timeout_phase",
]

#: client name -> (library, module holding the fastpath class, class name, extra)
_CLIENTS: Final = {
    "httpx": ("httpx", "http_fastpath", "FastpathTransport", "httpx"),
    "requests": ("requests", "http_fastpath", "FastpathAdapter", "requests"),
    "httpx2": ("httpx2", "http_fastpath.httpx2", "FastpathTransport", "httpx2"),
}
#: ``--client`` choices; without one, the first installed in this order (httpx2 last:
#: earlier releases chose requests when httpx was missing).
CLIENTS: Final = ("httpx", "requests", "httpx2")


@dataclasses.dataclass
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


@dataclasses.dataclass
class Result:
    """One response: what ``get`` prints and reports."""

    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes
    info: ConnectionInfo | None
    timings: dict[str, float]

    def report(self) -> dict[str, object]:
        return {
            "status": self.status,
            "reason": self.reason,
            "http_version": self.http_version,
            "headers": [list(h) for h in self.headers],
            "body_bytes": len(self.body),
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            "connection": None if self.info is None else self.info.as_dict(),
        }


# -- choosing the client ------------------------------------------------------------------


def _fastpath_name(module_name: str, name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    if name not in getattr(module, "__all__", ()):
        return None
    try:
        return getattr(module, name)
    except (AttributeError, ImportError):
        return None


def choose_client(wanted: str | None) -> tuple[str, Any]:
    """(client name, adapter/transport class) or a clear :class:`CLIError`."""
    order = [wanted] if wanted else list(CLIENTS)
    problems = []
    for name in order:
        library, home, cls_name, extra = _CLIENTS[name]
        try:
            found = importlib.util.find_spec(library) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            problems.append(f"{library} is not installed (pip install 'http_fastpath[{extra}]')")
            continue
        cls = _fastpath_name(home, cls_name)
        if cls is None:
            problems.append(f"this build of http_fastpath has no {cls_name} for {library}")
            continue
        return name, cls
    raise CLIError("no HTTP client available: " + "; ".join(problems))


def http3_transport() -> Any:
    import http_fastpath

    if importlib.util.find_spec("httpx") is None:
        raise CLIError("--http3 needs httpx: pip install 'http_fastpath[httpx]'")
    try:
        return http_fastpath.HTTP3Transport
    except ImportError as exc:
        raise CLIError(f"--http3: the HTTP/3 transport cannot load: {exc}") from None


def _fastpath_kwargs(cls: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments selecting TFO/MPTCP, in whichever form ``cls`` accepts."""
    chosen: dict[str, Any] = {"tfo": not args.no_tfo, "mptcp": not args.no_mptcp}
    if args.tfo_policy is not None:
        chosen["tfo_policy"] = args.tfo_policy
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "tfo" not in params and "mptcp" not in params and "options" in params:
        from .._core.options import FastpathOptions

        return {"options": FastpathOptions(**chosen)}
    return chosen


# -- running one request -------------------------------------------------------------------


def _timings(start: float, marks: dict[str, float], extra: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    sources = {
        "dns": [marks.get("dns_done")],
        "connect": [marks.get("connect_done"), extra.get("connection.connect_tcp.complete")],
        "tls": [marks.get("tls_done"), extra.get("connection.start_tls.complete")],
        "first_byte": [
            extra.get("http11.receive_response_headers.complete"),
            extra.get("http2.receive_response_headers.complete"),
            extra.get("first_byte"),
        ],
        "total": [extra.get("total")],
    }
    for key, candidates in sources.items():
        value = next((v for v in candidates if v is not None), None)
        if value is not None:
            out[key] = value - start
    return out


def send_httpx(cls: Any, req: Request, args: argparse.Namespace, library: str = "httpx") -> Result:
    """One request through httpx (or httpx2: ``library``, the same API)."""
    httpx: Any = importlib.import_module(library)

    from .._core import trace as _trace
    from .._core.proof import connection_info

    kwargs: dict[str, Any]
    if args.http3:
        # The HTTP/3 transport takes httpx-style verify values (QUIC does not use ssl).
        kwargs = {"verify": False if args.insecure else (args.cacert or True)}
    else:
        kwargs = {"verify": ssl_context(args.cacert, args.insecure)}
        kwargs.update(_fastpath_kwargs(cls, args))
    extra: dict[str, float] = {}

    def trace(event: str, info: object) -> None:
        extra.setdefault(event, time.perf_counter())

    transport = cls(**kwargs)
    with httpx.Client(
        transport=transport, timeout=args.timeout, follow_redirects=args.location
    ) as client:
        request = client.build_request(
            req.method, req.url, headers=req.headers, content=req.body, extensions={"trace": trace}
        )
        with _trace.collect() as marks:
            start = time.perf_counter()
            response = client.send(request, stream=True)
            try:
                extra["first_byte"] = time.perf_counter()
                body = response.read()
                extra["total"] = time.perf_counter()
            finally:
                response.close()
    return Result(
        response.status_code,
        response.reason_phrase,
        response.http_version,
        list(response.headers.multi_items()),
        body,
        connection_info(response),
        _timings(start, marks, extra),
    )


def send_requests(cls: Any, req: Request, args: argparse.Namespace) -> Result:
    import requests

    from .._core import trace as _trace
    from .._core.proof import connection_info

    if args.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    adapter = cls(**_fastpath_kwargs(cls, args))
    extra: dict[str, float] = {}
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        verify: bool | str = False if args.insecure else (args.cacert or True)
        with _trace.collect() as marks:
            start = time.perf_counter()
            response = session.request(
                req.method,
                req.url,
                headers=dict(req.headers),
                data=req.body,
                verify=verify,
                timeout=args.timeout,
                allow_redirects=args.location,
                stream=True,
            )
            try:
                extra["first_byte"] = time.perf_counter()
                body = response.content
                extra["total"] = time.perf_counter()
            finally:
                response.close()
    raw_version = getattr(response.raw, "version", 11)
    version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(raw_version, "HTTP/1.1")
    raw_headers = getattr(response.raw, "headers", None)
    items = list(raw_headers.items()) if raw_headers is not None else list(response.headers.items())
    return Result(
        response.status_code,
        response.reason or "",
        version,
        items,
        body,
        connection_info(response),
        _timings(start, marks, extra),
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost OSError/SSL error behind a requests/httpx/urllib3 exception."""
    import ssl

    best: BaseException = exc
    for cur in _chain(exc):
        if isinstance(cur, (ssl.SSLError, OSError)) and not is_client_error(cur):
            best = cur
    return best


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, wrapped reasons), outer first."""
    seen: set[int] = set()
    out: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        for nxt in (
            cur.__cause__,
            cur.__context__,
            getattr(cur, "reason", None),
            *(a for a in cur.args if isinstance(a, BaseException)),
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return out


#: class names of the client libraries' timeouts -> which wait ran out
_TIMEOUT_NAMES: Final = (
    ("connect", ("ConnectTimeout", "ConnectTimeoutError", "DialTimeout")),
    ("read", ("ReadTimeout", "ReadTimeoutError")),
    ("write", ("WriteTimeout", "WriteTimeoutError")),
)


def timeout_phase(exc: BaseException) -> str | None:
    """``connect``, ``read``, ``write`` or ``timeout`` (unknown wait) if ``exc`` is a
    timeout of httpx/httpx2/requests/urllib3 or the socket, else None."""
    chain = _chain(exc)
    for cur in chain:  # the outermost precise answer wins (httpx.ReadTimeout over its cause)
        # The class itself, not its bases: urllib3's NewConnectionError (refused,
        # unreachable) subclasses ConnectTimeoutError.
        name = type(cur).__name__
        for phase, known in _TIMEOUT_NAMES:
            if name in known:
                return phase
    if any(
        isinstance(cur, TimeoutError) or type(cur).__name__.endswith("Timeout") for cur in chain
    ):
        return "timeout"
    return None


def is_client_error(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("requests", "urllib3", "httpx", "httpcore", "httpx2", "httpcore2")


def describe_client_error(exc: BaseException) -> str:
    root = _root_cause(exc)
    if root is exc:
        return f"{type(exc).__name__}: {one_line(exc)}"
    return describe_error(root)
