"""``http-fastpath get URL``: one request through the fastpath adapter or transport.

The client is httpx with ``FastpathTransport`` or requests with ``FastpathAdapter``
(``--httpx`` / ``--requests``; by default whichever is installed, httpx first). The
proof comes from ``http_fastpath.connection_info(response)``; the timings from the
dialer's milestones (:mod:`._trace`) plus, for httpx, httpcore's ``trace`` extension.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

from ._cli_output import (
    CLIError,
    Progress,
    Style,
    Target,
    describe_error,
    one_line,
    parse_url,
    ssl_context,
)
from ._info import ConnectionInfo, TFOStatus

__all__ = ["Result", "add_parser", "run"]

_CLIENTS: Final = {
    "httpx": ("httpx", "FastpathTransport", "httpx"),
    "requests": ("requests", "FastpathAdapter", "requests"),
}
_TIMING_ORDER: Final = ("dns", "connect", "tls", "first_byte", "total")
#: ConnectionInfo fields -v prints by name; any other (newer) field is listed as is.
_SHOWN_FIELDS: Final = frozenset(
    {
        "transport",
        "tfo",
        "tfo_used",
        "syn_data_bytes",
        "mptcp",
        "mptcp_subflows",
        "fallbacks",
        "rtt_ms",
        "local_address",
        "peer_address",
        "early_data_safe",
    }
)


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


def _fastpath_name(name: str) -> Any:
    import http_fastpath

    if name not in getattr(http_fastpath, "_LAZY", {}) and not hasattr(http_fastpath, name):
        return None
    try:
        return getattr(http_fastpath, name)
    except (AttributeError, ImportError):
        return None


def choose_client(wanted: str | None) -> tuple[str, Any]:
    """(client name, adapter/transport class) or a clear :class:`CLIError`."""
    order = [wanted] if wanted else ["httpx", "requests"]
    problems = []
    for name in order:
        module, cls_name, extra = _CLIENTS[name]
        if importlib.util.find_spec(module) is None:
            problems.append(f"{module} is not installed (pip install 'http_fastpath[{extra}]')")
            continue
        cls = _fastpath_name(cls_name)
        if cls is None:
            problems.append(f"this build of http_fastpath has no {cls_name} for {module}")
            continue
        return name, cls
    raise CLIError("no HTTP client available: " + "; ".join(problems))


def _http3_transport() -> Any:
    import http_fastpath

    names = [n for n in getattr(http_fastpath, "_LAZY", {}) if "3" in n and "Transport" in n]
    sync = [n for n in names if not n.startswith("Async")]
    if not sync:
        raise CLIError("--http3: this build of http_fastpath has no HTTP/3 transport")
    if importlib.util.find_spec("httpx") is None:
        raise CLIError("--http3 needs httpx: pip install 'http_fastpath[httpx]'")
    try:
        return getattr(http_fastpath, sync[0])
    except ImportError as exc:
        raise CLIError(f"--http3: the HTTP/3 transport cannot load: {exc}") from None


def _fastpath_kwargs(cls: Any, tfo: bool, mptcp: bool) -> dict[str, Any]:
    """Keyword arguments selecting TFO/MPTCP, in whichever form ``cls`` accepts."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "tfo" in params or "mptcp" in params:
        return {"tfo": tfo, "mptcp": mptcp}
    if "options" in params:
        from ._options import FastpathOptions

        return {"options": FastpathOptions(tfo=tfo, mptcp=mptcp)}
    return {"tfo": tfo, "mptcp": mptcp}


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


def _send_httpx(cls: Any, req: Request, args: argparse.Namespace) -> Result:
    import httpx

    from . import _trace
    from ._proof import connection_info

    kwargs: dict[str, Any]
    if args.http3:
        # The HTTP/3 transport takes httpx-style verify values (QUIC does not use ssl).
        kwargs = {"verify": False if args.insecure else (args.cacert or True)}
    else:
        kwargs = {"verify": ssl_context(args.cacert, args.insecure)}
        kwargs.update(_fastpath_kwargs(cls, not args.no_tfo, not args.no_mptcp))
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


def _send_requests(cls: Any, req: Request, args: argparse.Namespace) -> Result:
    import requests

    from . import _trace
    from ._proof import connection_info

    if args.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    adapter = cls(**_fastpath_kwargs(cls, not args.no_tfo, not args.no_mptcp))
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

    seen: set[int] = set()
    best: BaseException = exc
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, (ssl.SSLError, OSError)) and not _is_client_error(cur):
            best = cur
        for nxt in (
            cur.__cause__,
            cur.__context__,
            getattr(cur, "reason", None),
            *(a for a in cur.args if isinstance(a, BaseException)),
        ):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return best


def _is_client_error(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("requests", "urllib3", "httpx", "httpcore")


def _describe_client_error(exc: BaseException) -> str:
    root = _root_cause(exc)
    if root is exc:
        return f"{type(exc).__name__}: {one_line(exc)}"
    return describe_error(root)


# -- input --------------------------------------------------------------------------------


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def _read_data(value: str) -> bytes:
    if not value.startswith("@"):
        return value.encode("utf-8")
    name = value[1:]
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise CLIError(f"-d {value!r}: cannot read {name!r}: {exc.strerror or exc}", 2) from None


def _build_request(target: Target, args: argparse.Namespace) -> Request:
    body = _read_data(args.data) if args.data is not None else None
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    if not method.isalpha():
        raise CLIError(f"-X {args.method!r}: a method is letters only (GET, POST, ...)", 2)
    headers = list(args.headers or [])
    if body is not None and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return Request(method, target.url, headers, body)


# -- output -------------------------------------------------------------------------------


def _tfo_text(info: ConnectionInfo) -> str:
    if info.tfo is TFOStatus.SYN_DATA_ACKED:
        return f"{info.tfo.value} ({info.syn_data_bytes} bytes rode in the SYN, acked)"
    if info.tfo is TFOStatus.COOKIE_REQUESTED:
        return f"{info.tfo.value} (no cookie yet: the next connection can use it)"
    return str(info.tfo.value)


def _mptcp_text(info: ConnectionInfo) -> str:
    if info.transport != "mptcp":
        return "not used (plain TCP socket)"
    if info.mptcp:
        return f"yes ({info.mptcp_subflows or 1} subflow(s))"
    if info.mptcp is False:
        return "no (the server did not answer MP_CAPABLE: fell back to TCP)"
    return "unknown (the kernel cannot tell)"


def _verbose(result: Result, client: str, out: IO[str], style: Style) -> None:
    star = style("dim", "*")
    out.write(f"{star} client: {client}\n")
    out.write(f"{star} timings (seconds since the request started, like curl -w):\n")
    for key in _TIMING_ORDER:
        value = result.timings.get(key)
        shown = f"{value:.6f}" if value is not None else "n/a"
        out.write(f"{star}   {key.replace('_', ' '):<11} {shown}\n")
    info = result.info
    if info is None:
        out.write(
            f"{star} connection: no ConnectionInfo (the response did not come through the fastpath)\n"
        )
        return
    local = "{}:{}".format(*info.local_address) if info.local_address else "?"
    peer = "{}:{}".format(*info.peer_address) if info.peer_address else "?"
    out.write(f"{star} connection: {info.transport} {local} -> {peer}\n")
    if info.transport in ("tcp", "mptcp"):
        out.write(f"{star}   TFO       {_tfo_text(info)}\n")
        out.write(f"{star}   MPTCP     {_mptcp_text(info)}\n")
    else:
        out.write(f"{star}   TFO/MPTCP n/a over {info.transport}\n")
    rtt = f"{info.rtt_ms:.3f} ms" if info.rtt_ms is not None else "n/a"
    out.write(f"{star}   RTT       {rtt}\n")
    for reason in info.fallbacks or ("none",):
        out.write(f"{star}   fallback  {reason}\n")
    for key, field in info.as_dict().items():
        if key not in _SHOWN_FIELDS and field is not None:
            out.write(f"{star}   {key:<9} {field}\n")


def _summary(index: int, result: Result) -> str:
    info = result.info
    parts = [f"#{index}", str(result.status)]
    if info is not None and info.transport not in ("tcp", "mptcp"):
        parts.append(f"transport={info.transport}")
    elif info is not None:
        syn = f" ({info.syn_data_bytes} B in SYN)" if info.syn_data_bytes else ""
        mptcp = (
            "-" if info.transport != "mptcp" else {True: "yes", False: "no", None: "?"}[info.mptcp]
        )
        parts += [f"tfo={info.tfo.value}{syn}", f"mptcp={mptcp}"]
        if info.rtt_ms is not None:
            parts.append(f"rtt={info.rtt_ms:.3f}ms")
    for key in ("connect", "tls", "first_byte", "total"):
        if key in result.timings:
            parts.append(f"{key.replace('_', '-')}={result.timings[key] * 1000:.2f}ms")
    return "  ".join(parts)


def _write_head(result: Result, out: IO[bytes]) -> None:
    lines = [f"{result.http_version} {result.status} {result.reason}".rstrip()]
    lines += [f"{k}: {v}" for k, v in result.headers]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))


# -- command ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import socket
    import ssl

    target = parse_url(args.url)
    if args.repeat < 1:
        raise CLIError(f"--repeat {args.repeat}: must be at least 1", 2)
    if args.cacert is not None or args.insecure:
        ssl_context(args.cacert, args.insecure)
    if args.http3:
        client, cls = "httpx (HTTP/3, experimental)", _http3_transport()
        send: Callable[[Any, Request, argparse.Namespace], Result] = _send_httpx
    else:
        client, cls = choose_client(args.client)
        send = _send_httpx if client == "httpx" else _send_requests
    req = _build_request(target, args)
    progress = Progress()
    results: list[Result] = []
    style = Style(sys.stderr)
    for index in range(1, args.repeat + 1):
        progress.update(f"{req.method} {target.authority} ({index}/{args.repeat}) via {client}")
        try:
            result = send(cls, req, args)
        except CLIError:
            progress.done()
            raise
        except Exception as exc:
            progress.done()
            if _is_client_error(exc):
                raise CLIError(f"{target.authority}: {_describe_client_error(exc)}") from None
            if isinstance(exc, (OSError, ssl.SSLError, socket.gaierror)):
                raise CLIError(f"{target.authority}: {describe_error(exc)}") from None
            raise
        progress.done()
        results.append(result)
        if args.repeat > 1 and not args.json:
            sys.stderr.write(_summary(index, result) + "\n")
        if args.verbose and not args.json:
            _verbose(result, client, sys.stderr, style)
    _output(results, client, args)
    failed = [r for r in results if r.status >= 400]
    if args.fail and failed:
        sys.stderr.write(
            f"http-fastpath get: error: the server answered {failed[-1].status} "
            f"{failed[-1].reason} (--fail)\n"
        )
        return 22
    return 0


def _output(results: list[Result], client: str, args: argparse.Namespace) -> None:
    last = results[-1]
    if args.output:
        try:
            Path(args.output).write_bytes(last.body)
        except OSError as exc:
            raise CLIError(f"-o {args.output!r}: {exc.strerror or exc}", 2) from None
    if args.json:
        payload = {"client": client, "url": args.url, "responses": [r.report() for r in results]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out = sys.stdout.buffer
    if args.include:
        _write_head(last, out)
    if not args.output:
        out.write(last.body)
    out.flush()


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: a number of seconds > 0")
    return value


def add_parser(sub: Any) -> None:
    get = sub.add_parser("get", help="one request through the fastpath, with proof and timings")
    get.add_argument("url", metavar="URL", help="http:// or https:// URL")
    which = get.add_mutually_exclusive_group()
    which.add_argument(
        "--httpx",
        dest="client",
        action="store_const",
        const="httpx",
        help="use httpx with FastpathTransport (default when installed)",
    )
    which.add_argument(
        "--requests",
        dest="client",
        action="store_const",
        const="requests",
        help="use requests with FastpathAdapter",
    )
    which.add_argument(
        "--http3", action="store_true", help="use the experimental HTTP/3 transport (httpx)"
    )
    get.add_argument("--no-tfo", action="store_true", help="switch TCP Fast Open off")
    get.add_argument("--no-mptcp", action="store_true", help="switch Multipath TCP off")
    get.add_argument(
        "-X",
        "--request",
        dest="method",
        metavar="METHOD",
        help="request method (GET, or POST with -d)",
    )
    get.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        type=_parse_header,
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    get.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin"
    )
    get.add_argument("-i", "--include", action="store_true", help="print the response head too")
    get.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    get.add_argument(
        "-f", "--fail", action="store_true", help="exit status 22 when the HTTP status is >= 400"
    )
    get.add_argument("-L", "--location", action="store_true", help="follow redirects")
    get.add_argument(
        "-v", "--verbose", action="store_true", help="timings and the connection proof on stderr"
    )
    get.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="N requests, each on a fresh connection, each reported",
    )
    get.add_argument("--json", action="store_true", help="print a JSON report instead of the body")
    get.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE (PEM)")
    get.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server certificate"
    )
    get.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="connect/read timeout (30)",
    )
    get.set_defaults(func=run, client=None)
