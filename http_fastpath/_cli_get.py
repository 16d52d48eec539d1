"""``http-fastpath get URL``: one request through the fastpath adapter or transport.

The client is httpx with ``FastpathTransport`` or requests with ``FastpathAdapter``
(``--httpx`` / ``--requests``; by default whichever is installed, httpx first); see
:mod:`._cli_clients`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

from ._cli_clients import (
    Request,
    Result,
    choose_client,
    describe_client_error,
    http3_transport,
    is_client_error,
    send_httpx,
    send_requests,
)
from ._cli_output import CLIError, Progress, Style, Target, describe_error, parse_url, ssl_context
from ._info import ConnectionInfo, TFOStatus

__all__ = ["add_parser", "run"]

_TIMING_ORDER: Final = ("dns", "connect", "tls", "first_byte", "total")
#: ConnectionInfo fields -v prints by name; any other (newer) field is listed as is.
_SHOWN_FIELDS: Final = frozenset(
    {
        "transport",
        "socket_protocol",
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
    if info.socket_protocol != "mptcp":
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
    sock = info.socket_protocol
    on = f" (on an {sock.upper()} socket)" if sock != info.transport else ""
    out.write(f"{star} connection: {info.transport}{on} {local} -> {peer}\n")
    if info.transport in ("tcp", "mptcp"):
        out.write(f"{star}   TFO       {_tfo_text(info)}\n")
        out.write(f"{star}   MPTCP     {_mptcp_text(info)}\n")
    else:
        out.write(f"{star}   TFO/MPTCP n/a over {info.transport}\n")
    rtt = f"{info.rtt_ms:.3f} ms" if info.rtt_ms is not None else "n/a"
    out.write(f"{star}   RTT       {rtt}\n")
    for reason in info.fallbacks or ("none",):
        out.write(f"{star}   fallback  {reason}\n")
    if info.peer_address is not None and info.transport in ("tcp", "mptcp"):
        from ._destinations import destinations

        for dest in destinations(*info.peer_address):
            out.write(f"{star}   memory    {dest}\n")
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
            "-"
            if info.socket_protocol != "mptcp"
            else {True: "yes", False: "no", None: "?"}[info.mptcp]
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
        client, cls = "httpx (HTTP/3, experimental)", http3_transport()
        send: Callable[[Any, Request, argparse.Namespace], Result] = send_httpx
    else:
        client, cls = choose_client(args.client)
        send = send_httpx if client == "httpx" else send_requests
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
            if is_client_error(exc):
                raise CLIError(f"{target.authority}: {describe_client_error(exc)}") from None
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
