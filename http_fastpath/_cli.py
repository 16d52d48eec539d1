"""The ``http-fastpath`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _doctor(args: argparse.Namespace) -> int:
    from ._capabilities import probe

    caps = probe()
    if args.json:
        print(json.dumps(caps.as_dict(), indent=2))
    else:
        print(f"platform {caps.platform}, kernel {caps.kernel}")
        for feature in caps.features():
            mark = "yes" if feature.available else "no "
            line = f"  {feature.name:<13} {mark}  {feature.detail}"
            if not feature.available and feature.enable:
                line += f"\n  {'':<13}      enable: {feature.enable}"
            print(line)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .netlab._demo import run

    return run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="http-fastpath", description="TCP Fast Open and Multipath TCP for HTTP clients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="what this host's kernel offers")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_doctor)
    demo = sub.add_parser("demo", help="show the fast path working, verified by the kernel")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
