"""Shared pieces of the command line: errors, colour and progress (stdlib only)."""

from __future__ import annotations

import os
import sys
from typing import IO, Any, Final

__all__ = [
    "EXIT_ERROR",
    "EXIT_HTTP",
    "EXIT_INTERRUPTED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CLIError",
    "Progress",
    "Style",
    "Target",
    "describe_error",
    "endpoint",
    "one_line",
    "parse_url",
    "ssl_context",
    "timeout_error",
]

#: Exit statuses (curl's numbers where curl has one): see docs/cli.md.
EXIT_ERROR: Final = 1  # anything else: refused, unresolvable, TLS, missing library
EXIT_USAGE: Final = 2  # bad command line: flag, value, URL
EXIT_HTTP: Final = 22  # -f/--fail and an HTTP status >= 400 (curl 22)
EXIT_TIMEOUT: Final = 28  # connect or read timeout (curl 28)
EXIT_INTERRUPTED: Final = 130  # Ctrl-C (128 + SIGINT)

_KINDS: Final = {
    EXIT_USAGE: "usage",
    EXIT_HTTP: "http_error",
    EXIT_TIMEOUT: "timeout",
    EXIT_INTERRUPTED: "interrupted",
}


class CLIError(Exception):
    """A user-facing failure: printed as one line on stderr, never as a traceback.

    ``kind`` names it in ``--json`` output (``usage``, ``connect_timeout``, ...);
    ``report`` is what a ``--json`` command had gathered before it failed.
    """

    def __init__(
        self,
        message: str,
        status: int = EXIT_ERROR,
        *,
        kind: str | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind or _KINDS.get(status, "error")
        self.report = report

    def as_json(self) -> dict[str, Any]:
        """``report`` plus an ``error`` object: what ``--json`` prints on failure."""
        error = {"kind": self.kind, "message": one_line(self), "exit_status": self.status}
        return {**(self.report or {}), "error": error}


def one_line(text: object) -> str:
    """Collapse whitespace so an error message stays on one line."""
    return " ".join(str(text).split())


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_CODES: Final = {"ok": "32", "no": "31", "warn": "33", "dim": "2", "bold": "1"}


class Style:
    """ANSI colour, only when ``stream`` is a terminal (and ``NO_COLOR`` is not set)."""

    def __init__(self, stream: IO[str]) -> None:
        self.enabled = (
            _is_tty(stream) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        )

    def __call__(self, kind: str, text: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{_CODES[kind]}m{text}\x1b[0m"


class Progress:
    """A single self-erasing status line on stderr, shown only on a terminal."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream)
        self._shown = False

    def update(self, message: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{message} ...")
            self.stream.flush()
            self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


class Target:
    """A parsed ``http://`` / ``https://`` URL as the command line needs it."""

    __slots__ = ("host", "port", "scheme", "target", "url")

    def __init__(self, url: str, scheme: str, host: str, port: int, target: str) -> None:
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.target = target

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def endpoint(address: tuple[Any, ...] | list[Any] | None) -> str:
    """``host:port`` of a socket address, an IPv6 host in brackets (``[::1]:443``)."""
    if not address:
        return "?"
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def timeout_error(where: str, phase: str, seconds: float) -> CLIError:
    """A timeout as one line and exit status 28, saying which wait ran out (like curl)."""
    what = {
        "connect": f"connect timed out after {seconds:g} s: no connection was established",
        "read": f"read timed out after {seconds:g} s: no data from the server",
        "write": f"write timed out after {seconds:g} s: the server took no data",
    }.get(phase, f"timed out after {seconds:g} s")
    kind = f"{phase}_timeout" if phase in ("connect", "read", "write") else "timeout"
    return CLIError(f"{where}: {what}", EXIT_TIMEOUT, kind=kind)


def parse_url(text: str) -> Target:
    """Parse an http(s) URL or raise :class:`CLIError` naming the value and what is allowed."""
    import urllib.parse

    allowed = "expected http://HOST[:PORT]/PATH or https://..."
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise CLIError(f"invalid URL {text!r}: {exc} ({allowed})", 2) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"invalid URL {text!r}: {allowed}", 2)
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(text, parts.scheme, parts.hostname, port, target)


def ssl_context(cacert: str | None, insecure: bool, alpn: list[str] | None = None) -> Any:
    """An ``ssl.SSLContext`` that verifies exactly like the stdlib default (or not, on request)."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=cacert)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise CLIError(f"--cacert {cacert!r}: cannot load CA certificates: {reason}", 2) from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def describe_error(exc: BaseException) -> str:
    """One line for a network/TLS failure, innermost cause first where it helps."""
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return one_line(exc.strerror) if exc.strerror else one_line(exc)
    return one_line(exc)
