"""The ``http-fastpath`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._cli_output import CLIError, one_line


def _demo(args: argparse.Namespace) -> int:
    from .netlab._demo import run

    return run()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import _cli_doctor, _cli_get, _cli_probe

    parser = _Parser(
        prog="http-fastpath", description="TCP Fast Open and Multipath TCP for HTTP clients."
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"http-fastpath {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _cli_doctor.add_parser(sub)
    _cli_probe.add_parser(sub)
    _cli_get.add_parser(sub)
    demo = sub.add_parser("demo", help="show the fast path working, verified by the kernel")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (errors are one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error or --help: argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status: int = args.func(args)
    except CLIError as exc:
        sys.stderr.write(f"http-fastpath {args.command}: error: {one_line(exc)}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write(f"http-fastpath {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
