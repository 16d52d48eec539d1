"""``http-fastpath get URL``."""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    return 0


def add_parser(sub: Any) -> None:
    get = sub.add_parser("get", help="one request through the fastpath")
    get.add_argument("url", metavar="URL")
    get.set_defaults(func=run)
