"""The ``http-fastpath`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from .output import EXIT_INTERRUPTED, EXIT_USAGE, CLIError, one_line

_DEMO_DESCRIPTION = (
    "Show the fast path at work: build the network lab (client and server namespaces, "
    "50 ms round trip) and time cold requests from stock and fastpath clients, "
    "interleaved, with the SYN data each server kernel saw. Without a lab (no root, no "
    "user namespaces) it falls back to a loopback proof. Exit status 1 if a fastpath "
    "row saw no SYN data."
)


def _demo(args: argparse.Namespace) -> int:
    from http_fastpath.netlab import demo

    return demo()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import doctor as _cli_doctor
    from . import get as _cli_get
    from . import probe as _cli_probe

    parser = _Parser(
        prog="http-fastpath", description="TCP Fast Open and Multipath TCP for HTTP clients."
    )
    from http_fastpath import __version__

    parser.add_argument("--version", action="version", version=f"http-fastpath {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _cli_doctor.add_parser(sub)
    _cli_probe.add_parser(sub)
    _cli_get.add_parser(sub)
    demo = sub.add_parser(
        "demo",
        help="show the fast path working, verified by the kernel",
        description=_DEMO_DESCRIPTION,
    )
    demo.set_defaults(func=_demo)
    return parser


def _fail(args: argparse.Namespace, exc: CLIError) -> int:
    """One line on stderr; with ``--json`` also the JSON error object on stdout."""
    if exc.kind == "interrupted":
        sys.stderr.write(f"http-fastpath {args.command}: interrupted\n")
    else:
        sys.stderr.write(f"http-fastpath {args.command}: error: {one_line(exc)}\n")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(exc.as_json(), indent=2) + "\n")
        sys.stdout.flush()
    return exc.status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors are one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error or --help: argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        status: int = args.func(args)
    except CLIError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        return _fail(args, CLIError("interrupted", EXIT_INTERRUPTED))
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
