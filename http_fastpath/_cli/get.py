"""``http-fastpath get URL``: one request through the fastpath adapter or transport.

The client is httpx or httpx2 with ``FastpathTransport`` or requests with
``FastpathAdapter`` (``--client NAME``; by default whichever is installed, httpx first);
see :mod:`.clients`. This module reads the command line, sends and writes the body or the
JSON report; the lines about each response (``-v``, ``--repeat``, ``-i``) are
:mod:`.get_report`'s.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from .clients import (
    CLIENTS,
    Request,
    Result,
    choose_client,
    describe_client_error,
    http3_transport,
    is_client_error,
    send_httpx,
    send_requests,
    timeout_phase,
)
from .get_report import summary, verbose, write_head
from .output import (
    EXIT_HTTP,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    Progress,
    Style,
    Target,
    describe_error,
    parse_url,
    ssl_context,
    timeout_error,
)

__all__ = ["add_parser", "run"]

#: RFC 9110 section 5.6.2: a method is a token (``M-SEARCH``, ``BASELINE-CONTROL``, ...).
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TFO_POLICIES: Final = {
    "safe": "only replay-safe requests ride in the SYN",
    "always": "any request may ride in the SYN",
}
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
    if args.method is None:
        method = "POST" if body is not None else "GET"
    elif _TOKEN.fullmatch(args.method):
        method = args.method.upper()
    else:
        raise CLIError(
            f"-X {args.method!r}: a method is an RFC 9110 token: letters, digits and "
            "!#$%&'*+-.^_`|~ (GET, POST, M-SEARCH, ...)",
            EXIT_USAGE,
        )
    headers = list(args.headers or [])
    if body is not None and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return Request(method, target.url, headers, body)


# -- command ------------------------------------------------------------------------------


def _check_combinations(target: Target, args: argparse.Namespace) -> None:
    """Usage errors no single option shows: they fail before any connection."""
    if args.repeat < 1:
        raise CLIError(f"--repeat {args.repeat}: must be at least 1", EXIT_USAGE)
    if args.http3 and target.scheme != "https":
        raise CLIError(
            f"--http3 needs an https:// URL (HTTP/3 runs over QUIC with TLS), not {args.url!r}",
            EXIT_USAGE,
        )
    if args.http3 and args.tfo_policy is not None:
        raise CLIError("--tfo-policy has no effect with --http3 (QUIC uses no TCP)", EXIT_USAGE)


def _send_one(
    send: Callable[..., Result], cls: Any, req: Request, args: argparse.Namespace, target: Target
) -> Result:
    import socket
    import ssl

    try:
        return send(cls, req, args)
    except CLIError:
        raise
    except Exception as exc:
        phase = timeout_phase(exc) if is_client_error(exc) or isinstance(exc, OSError) else None
        if phase is not None:
            raise timeout_error(target.authority, phase, args.timeout) from None
        if is_client_error(exc):
            raise CLIError(f"{target.authority}: {describe_client_error(exc)}") from None
        if isinstance(exc, (OSError, ssl.SSLError, socket.gaierror)):
            raise CLIError(f"{target.authority}: {describe_error(exc)}") from None
        raise


def run(args: argparse.Namespace) -> int:
    target = parse_url(args.url)
    _check_combinations(target, args)
    if args.cacert is not None or args.insecure:
        ssl_context(args.cacert, args.insecure)
    send: Callable[..., Result]
    if args.http3:
        client, cls = "httpx (HTTP/3, experimental)", http3_transport()
        send = send_httpx
    else:
        client, cls = choose_client(args.client)
        send = (
            send_requests if client == "requests" else functools.partial(send_httpx, library=client)
        )
    req = _build_request(target, args)
    progress = Progress()
    results: list[Result] = []
    style = Style(sys.stderr)

    def report() -> dict[str, Any]:
        return {"client": client, "url": args.url, "responses": [r.report() for r in results]}

    try:
        for index in range(1, args.repeat + 1):
            progress.update(f"{req.method} {target.authority} ({index}/{args.repeat}) via {client}")
            try:
                result = _send_one(send, cls, req, args, target)
            finally:
                progress.done()
            results.append(result)
            if args.repeat > 1 and not args.json:
                sys.stderr.write(summary(index, result) + "\n")
            if args.verbose and not args.json:
                verbose(result, client, sys.stderr, style)
    except CLIError as exc:
        exc.report = report()  # --json keeps the responses that completed
        raise
    except KeyboardInterrupt:
        raise CLIError(
            "interrupted", EXIT_INTERRUPTED, kind="interrupted", report=report()
        ) from None
    failed = [r for r in results if r.status >= 400] if args.fail else []
    _output(results, report, args)
    if failed:
        raise CLIError(
            f"the server answered {failed[-1].status} {failed[-1].reason} (--fail)",
            EXIT_HTTP,
            report=report(),
        )
    return 0


def _output(
    results: list[Result], report: Callable[[], dict[str, Any]], args: argparse.Namespace
) -> None:
    """The last response's body (or the JSON report), except where ``-f`` suppresses it."""
    last = results[-1]
    if args.fail and any(r.status >= 400 for r in results):
        if args.json or last.status >= 400:
            return  # like curl -f: no error body; with --json, main prints the error report
    if args.output:
        try:
            Path(args.output).write_bytes(last.body)
        except OSError as exc:
            raise CLIError(f"-o {args.output!r}: {exc.strerror or exc}", EXIT_USAGE) from None
    if args.json:
        sys.stdout.write(json.dumps(report(), indent=2) + "\n")
        return
    out = sys.stdout.buffer
    if args.include:
        write_head(last, out)
    if not args.output:
        out.write(last.body)
    out.flush()


def _tfo_policy(text: str) -> str:
    if text not in _TFO_POLICIES:
        allowed = ", ".join(f"{k!r} ({v})" for k, v in _TFO_POLICIES.items())
        raise argparse.ArgumentTypeError(f"invalid TFO policy {text!r}: {allowed}")
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: a number of seconds > 0")
    return value


def add_parser(sub: Any) -> None:
    get = sub.add_parser(
        "get",
        help="one request through the fastpath, with proof and timings",
        description=(
            "One request through the fastpath adapter or transport, like curl: the body on "
            "stdout, the kernel's proof (TCP Fast Open, MPTCP) and the timings with -v."
        ),
        epilog=(
            "exit status: 0 done, 1 error (refused, unresolvable, TLS, no client library), "
            "2 usage error, 22 HTTP status >= 400 with -f, 28 timeout, 130 interrupted"
        ),
    )
    get.add_argument("url", metavar="URL", help="http:// or https:// URL")
    which = get.add_mutually_exclusive_group()
    which.add_argument(
        "--client",
        choices=CLIENTS,
        help="the HTTP client: httpx or httpx2 with FastpathTransport, requests with "
        "FastpathAdapter (default: the first installed of " + ", ".join(CLIENTS) + ")",
    )
    for name, what in (
        ("httpx", "httpx with FastpathTransport"),
        ("requests", "requests with FastpathAdapter"),
        ("httpx2", "httpx2 with http_fastpath.httpx2.FastpathTransport"),
    ):
        which.add_argument(
            f"--{name}",
            dest="client",
            action="store_const",
            const=name,
            help=f"use {what} (--client {name})",
        )
    which.add_argument(
        "--http3",
        action="store_true",
        help="use the experimental HTTP/3 transport (httpx; https:// URLs only)",
    )
    get.add_argument("--no-tfo", action="store_true", help="switch TCP Fast Open off")
    get.add_argument("--no-mptcp", action="store_true", help="switch Multipath TCP off")
    get.add_argument(
        "--tfo-policy",
        type=_tfo_policy,
        metavar="POLICY",
        help="which requests may ride in the SYN: safe (default: idempotent methods and TLS "
        "ClientHellos) or always (any, even a POST: only for servers that tolerate a "
        "duplicated request)",
    )
    get.add_argument(
        "-X",
        "--request",
        dest="method",
        metavar="METHOD",
        help="request method, any RFC 9110 token (default GET, or POST with -d)",
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
        "-f",
        "--fail",
        action="store_true",
        help="HTTP status >= 400: no body, exit status 22 (like curl -f)",
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
        help="connect timeout, and read timeout between bytes (30); exit status 28",
    )
    get.set_defaults(func=run, client=None)
