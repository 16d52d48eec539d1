"""The HTTP clients behind ``http-fastpath get``: httpx or httpx2 + ``FastpathTransport``,
requests + ``FastpathAdapter`` (or the experimental HTTP/3 transport), one request each,
with timings.

The proof comes from ``http_fastpath.connection_info(response)``; the timings from
``http_fastpath.milestones()`` plus, for httpx, httpcore's ``trace`` extension. Like all of
the command line, it uses only the public API.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import time
from typing import Any, Final

from http_fastpath import ConnectionInfo

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

#: client name -> (library, extra that installs it)
_CLIENTS: Final = {
    "httpx": ("httpx", "httpx"),
    "requests": ("requests", "requests"),
    "httpx2": ("httpx2", "httpx2"),
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


def _fastpath_class(name: str) -> Any:
    """The adapter or transport ``--client name`` mounts (ImportError: it cannot load)."""
    if name == "httpx2":
        from http_fastpath.httpx2 import FastpathTransport as Httpx2Transport

        return Httpx2Transport
    if name == "requests":
        from http_fastpath import FastpathAdapter

        return FastpathAdapter
    from http_fastpath import FastpathTransport

    return FastpathTransport


def choose_client(wanted: str | None) -> tuple[str, Any]:
    """(client name, adapter/transport class) or a clear :class:`CLIError`."""
    order = [wanted] if wanted else list(CLIENTS)
    problems = []
    for name in order:
        library, extra = _CLIENTS[name]
        try:
            found = importlib.util.find_spec(library) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            problems.append(f"{library} is not installed (pip install 'http_fastpath[{extra}]')")
            continue
        try:
            return name, _fastpath_class(name)
        except ImportError as exc:  # e.g. httpx without httpcore: the hint names the extra
            problems.append(one_line(exc))
    raise CLIError("no HTTP client available: " + "; ".join(problems))


def http3_transport() -> Any:
    import http_fastpath

    if importlib.util.find_spec("httpx") is None:
        raise CLIError("--http3 needs httpx: pip install 'http_fastpath[httpx]'")
    try:
        return http_fastpath.HTTP3Transport
    except ImportError as exc:
        raise CLIError(f"--http3: the HTTP/3 transport cannot load: {exc}") from None


def _fastpath_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords selecting TFO/MPTCP (every adapter and transport takes them)."""
    chosen: dict[str, Any] = {"tfo": not args.no_tfo, "mptcp": not args.no_mptcp}
    if args.tfo_policy is not None:
        chosen["tfo_policy"] = args.tfo_policy
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

    from http_fastpath import connection_info, milestones

    kwargs: dict[str, Any]
    if args.http3:
        # The HTTP/3 transport takes httpx-style verify values (QUIC does not use ssl).
        kwargs = {"verify": False if args.insecure else (args.cacert or True)}
    else:
        kwargs = {"verify": ssl_context(args.cacert, args.insecure)}
        kwargs.update(_fastpath_kwargs(args))
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
        with milestones() as marks:
            start = time.perf_counter()
            response = client.send(request, stream=True)
            try:
                extra["first_byte"] = time.perf_counter()
                _look(connection_info(response))  # while the connection is open
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


def _look(info: ConnectionInfo | None) -> None:
    """Read the proof now, from the live socket: all of it, the local address included
    (a proof first read after the close has no local address)."""
    if info is not None:
        info.transport  # noqa: B018  (a field looked at: the whole proof is read)


def send_requests(cls: Any, req: Request, args: argparse.Namespace) -> Result:
    import requests

    from http_fastpath import connection_info, milestones

    if args.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    adapter = cls(**_fastpath_kwargs(args))
    extra: dict[str, float] = {}
    with requests.Session() as session:
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        verify: bool | str = False if args.insecure else (args.cacert or True)
        with milestones() as marks:
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
                _look(connection_info(response))  # while the connection is open
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
