"""``http-fastpath probe URL``: what *this server* supports, with the kernel's evidence.

Three fresh connections, each made by the fastpath dialer:

1. TCP with TCP Fast Open: asks the server for a cookie (or already uses a cached one);
   ``https``: TLS offering ALPN ``h2, http/1.1``.
2. The same again: with a cookie cached, the first flight rides in the SYN and the client
   kernel's ``TCP_INFO`` says whether the server acknowledged it (``TCPI_OPT_SYN_DATA``).
3. MPTCP without TFO: ``TCP_IS_MPTCP`` says whether the server answered ``MP_CAPABLE``;
   a ``GET`` over HTTP/1.1 on it fetches the response head (``Alt-Svc`` for HTTP/3).

Only the standard library and :func:`http_fastpath.connect` (the fastpath dialer and its
TLS, no HTTP client) are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from typing import Any, Final

from http_fastpath import ConnectionInfo, TFOStatus

from .output import (
    CLIError,
    Progress,
    Style,
    Target,
    describe_error,
    parse_url,
    ssl_context,
    timeout_error,
)

__all__ = ["Finding", "ResponseHead", "add_parser", "read_head", "run"]

_HEAD_LIMIT: Final = 65536


@dataclasses.dataclass(frozen=True)
class ResponseHead:
    """Status line and headers of an HTTP/1.x response."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


def read_head(conn: Any, limit: int = _HEAD_LIMIT) -> ResponseHead:
    """Read an HTTP/1.x response head from ``conn`` (anything with ``recv``)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > limit:
            raise CLIError(f"response head larger than {limit} bytes")
        chunk = conn.recv(16384)
        if not chunk:
            raise CLIError("the server closed the connection before sending a response head")
        data += chunk
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    match = re.fullmatch(r"(HTTP/\d(?:\.\d)?) (\d{3})(?: (.*))?", status_line)
    if match is None:
        raise CLIError(f"not an HTTP/1.x response: {status_line[:60]!r}")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return ResponseHead(match[1], int(match[2]), match[3] or "", headers)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One feature's verdict (``yes``/``no``/``unknown``/``n/a``) and its evidence."""

    feature: str
    verdict: str
    evidence: str
    enable: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Conn:
    info: ConnectionInfo
    alpn: str | None = None
    head: ResponseHead | None = None


def _request(target: Target) -> bytes:
    from http_fastpath import __version__

    return (
        f"GET {target.target} HTTP/1.1\r\nHost: {target.authority}\r\n"
        f"User-Agent: http-fastpath/{__version__} (probe)\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")


def _connect(
    target: Target, *, tfo: bool, mptcp: bool, alpn: list[str], args: argparse.Namespace
) -> _Conn:
    from http_fastpath import DialTimeout, FastpathOptions, connect

    options = FastpathOptions(tfo=tfo, mptcp=mptcp)
    ctx = ssl_context(args.cacert, args.insecure, alpn) if target.scheme == "https" else None
    try:  # the TLS handshake counts as the connect
        conn = connect(
            target.host, target.port, options=options, timeout=args.timeout, ssl_context=ctx
        )
    except TimeoutError:
        raise timeout_error(target.authority, "connect", args.timeout) from None
    phase = "connect"  # with TCP Fast Open and no TLS, the request's write connects
    try:
        tls = conn.ssl_object
        chosen = None if tls is None else tls.selected_alpn_protocol()
        head = None
        if chosen in (None, "http/1.1"):
            conn.sendall(_request(target))
            phase = "read"
            head = read_head(conn)
        return _Conn(conn.connection_info(), chosen, head)
    except TimeoutError as exc:
        phase = "connect" if isinstance(exc, DialTimeout) else phase
        raise timeout_error(target.authority, phase, args.timeout) from None
    finally:
        conn.close()


def _cookie(peer: tuple[str, int] | None) -> str | None:
    """The TFO cookie the kernel cached for ``peer`` (``ip tcp_metrics``), if visible."""
    if peer is None:
        return None
    try:
        out = subprocess.run(
            ["ip", "tcp_metrics", "show", peer[0]],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"fo_cookie (\w+)", out)
    return match[1] if match else None


_TFO_WORDS: Final = {
    TFOStatus.COOKIE_REQUESTED: "no cookie cached yet, the SYN asked for one",
    TFOStatus.SYN_DATA_ACKED: "{n} bytes rode in the SYN and the server acknowledged them",
    TFOStatus.DATA_NOT_ACKED: "{n} bytes rode in the SYN but the server acknowledged only the SYN",
    TFOStatus.SYN_RETRANSMITTED: "the SYN with data was lost and retransmitted without data",
    TFOStatus.NOT_ATTEMPTED: "plain SYN (nothing was sent first)",
    TFOStatus.UNKNOWN: "the kernel reports no TFO outcome",
}


def _tfo_finding(first: ConnectionInfo, second: ConnectionInfo, cookie: str | None) -> Finding:
    if TFOStatus.UNAVAILABLE in (first.tfo, second.tfo):
        return Finding(
            "TFO",
            "unknown",
            "this host's kernel refused TCP_FASTOPEN_CONNECT (client bit of "
            "net.ipv4.tcp_fastopen off), so the server could not be tested",
            "sysctl -w net.ipv4.tcp_fastopen=1",
        )

    def words(n: int, info: ConnectionInfo) -> str:
        return _TFO_WORDS.get(info.tfo, info.tfo.value).format(n=info.syn_data_bytes)

    cookie_text = (
        f"then the kernel held a cookie (ip tcp_metrics: fo_cookie {cookie})"
        if cookie
        else "then the kernel held no cookie for it"
    )
    evidence = f"connection 1: {words(1, first)}; {cookie_text}; connection 2: {words(2, second)}"
    if first.tfo_used or second.tfo_used:
        return Finding("TFO", "yes", evidence + " (TCP_INFO: TCPI_OPT_SYN_DATA)")
    if any(
        i.tfo in (TFOStatus.DATA_NOT_ACKED, TFOStatus.SYN_RETRANSMITTED) for i in (first, second)
    ):
        return Finding("TFO", "no", evidence)
    if second.tfo is TFOStatus.COOKIE_REQUESTED:
        return Finding("TFO", "no", evidence + ": the server never sent a cookie")
    reasons = [f for f in (*first.fallbacks, *second.fallbacks) if f.startswith("tfo")]
    if reasons:
        evidence += " (" + "; ".join(dict.fromkeys(reasons)) + ")"
    return Finding("TFO", "unknown", evidence)


def _mptcp_finding(info: ConnectionInfo) -> Finding:
    if info.socket_protocol != "mptcp":
        why = "; ".join(f for f in info.fallbacks if f.startswith("mptcp")) or "no MPTCP socket"
        return Finding(
            "MPTCP",
            "unknown",
            f"this host could not open an MPTCP socket ({why}), so the server could not be tested",
            "sysctl -w net.mptcp.enabled=1",
        )
    if info.mptcp:
        subflows = f", {info.mptcp_subflows} subflow(s)" if info.mptcp_subflows else ""
        return Finding(
            "MPTCP",
            "yes",
            f"the server answered MP_CAPABLE: TCP_IS_MPTCP=1 on the IPPROTO_MPTCP socket{subflows}",
        )
    if info.mptcp is False:
        return Finding(
            "MPTCP",
            "no",
            "the server answered without MP_CAPABLE: TCP_IS_MPTCP=0, the IPPROTO_MPTCP socket "
            "fell back to plain TCP",
        )
    return Finding("MPTCP", "unknown", "the kernel cannot tell (no TCP_IS_MPTCP nor MPTCP_INFO)")


def _h2_finding(target: Target, alpn: str | None) -> Finding:
    if target.scheme != "https":
        return Finding("HTTP/2", "n/a", "cleartext URL: ALPN needs https (h2c is not probed)")
    if alpn == "h2":
        return Finding("HTTP/2", "yes", "ALPN: the server selected h2 (offered h2, http/1.1)")
    chosen = alpn or "no protocol"
    return Finding("HTTP/2", "no", f"ALPN: the server selected {chosen} (offered h2, http/1.1)")


def _h3_finding(target: Target, head: ResponseHead | None) -> Finding:
    if head is None:
        return Finding("HTTP/3", "unknown", "no HTTP/1.1 response to read Alt-Svc from")
    request = f"GET {target.target} -> {head.status}"
    alt_svc = head.get("Alt-Svc")
    if alt_svc is None:
        return Finding("HTTP/3", "no", f"no Alt-Svc header ({request})")
    if re.search(r"(^|[\s,])h3(-\d+)?=", alt_svc):
        return Finding("HTTP/3", "yes", f"Alt-Svc: {alt_svc} ({request})")
    return Finding("HTTP/3", "no", f"Alt-Svc without h3: {alt_svc} ({request})")


def probe_url(target: Target, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Run the three connections and return the report as a dict."""
    alpn = ["h2", "http/1.1"]
    progress.update(f"probing {target.authority}: TFO connection 1/3")
    first = _connect(target, tfo=True, mptcp=False, alpn=alpn, args=args)
    cookie = _cookie(first.info.peer_address)
    progress.update(f"probing {target.authority}: TFO connection 2/3")
    second = _connect(target, tfo=True, mptcp=False, alpn=alpn, args=args)
    progress.update(f"probing {target.authority}: MPTCP connection 3/3")
    third = _connect(target, tfo=False, mptcp=True, alpn=["http/1.1"], args=args)
    progress.done()
    findings = [
        _tfo_finding(first.info, second.info, cookie),
        _mptcp_finding(third.info),
        _h2_finding(target, first.alpn),
        _h3_finding(target, third.head),
    ]
    head = third.head
    return {
        "url": target.url,
        "peer": list(third.info.peer_address) if third.info.peer_address else None,
        "response": None
        if head is None
        else {"status": head.status, "reason": head.reason, "server": head.get("Server")},
        "findings": [f.as_dict() for f in findings],
        "connections": [c.info.as_dict() for c in (first, second, third)],
    }


def _render(report: dict[str, Any], style: Style) -> str:
    peer = report["peer"]
    where = f" ({peer[0]} port {peer[1]})" if peer else ""
    lines = [style("bold", f"probe {report['url']}{where}")]
    colours = {"yes": "ok", "no": "no", "unknown": "warn", "n/a": "dim"}
    for item in report["findings"]:
        verdict = f"{item['verdict']:<7}"
        lines.append(
            f"  {item['feature']:<7} {style(colours[item['verdict']], verdict)} {item['evidence']}"
        )
        if item["enable"]:
            lines.append(f"  {'':<7} {'':<7} enable on this host: {style('bold', item['enable'])}")
    response = report["response"]
    if response:
        server = f", Server: {response['server']}" if response["server"] else ""
        lines.append(f"  {'HTTP':<7} {response['status']:<7} {response['reason']}{server}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import socket
    import ssl

    target = parse_url(args.url)
    if args.cacert is not None or args.insecure:
        ssl_context(args.cacert, args.insecure)  # bad --cacert fails before any connection
    progress = Progress()
    partial = {"url": target.url}  # what --json prints with the error object
    try:
        report = probe_url(target, args, progress)
    except (OSError, ssl.SSLError, socket.gaierror) as exc:
        progress.done()
        raise CLIError(f"{target.authority}: {describe_error(exc)}", report=partial) from None
    except CLIError as exc:
        progress.done()
        if exc.kind.endswith("timeout"):  # already names the server
            exc.report = partial
            raise
        raise CLIError(
            f"{target.authority}: {exc}", exc.status, kind=exc.kind, report=partial
        ) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_render(report, Style(sys.stdout)))
    return 0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: a number of seconds > 0")
    return value


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cacert", metavar="FILE", help="trust the CA certificates in FILE (PEM)")
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server certificate"
    )
    parser.add_argument(
        "--timeout", type=_timeout, default=10.0, metavar="SECONDS", help="per connection (10)"
    )


def add_parser(sub: Any) -> None:
    probe = sub.add_parser(
        "probe",
        help="does this server support TFO, MPTCP, HTTP/2, HTTP/3 (with evidence)",
        description=(
            "Does this server do TCP Fast Open, Multipath TCP, HTTP/2 and HTTP/3? Three fresh "
            "connections through the fastpath dialer (two with TFO, one MPTCP), one line per "
            "feature with the kernel's evidence. Needs only the base package."
        ),
        epilog="exit status: 0 done, 1 error, 2 usage error, 28 timeout, 130 interrupted",
    )
    probe.add_argument("url", metavar="URL", help="http:// or https:// URL")
    probe.add_argument("--json", action="store_true", help="machine-readable output")
    add_tls_arguments(probe)
    probe.set_defaults(func=run)
