"""Print the kernel's proof for one request made with each client.

    python examples/connection_info.py URL [--cafile ca.pem]

For every client (requests adapter, httpx sync, httpx async) one fresh connection is
made twice: the first asks for a TCP Fast Open cookie, the second carries its first
flight in the SYN. ``ConnectionInfo`` says what the kernel did.
"""

from __future__ import annotations

import argparse
import asyncio

import httpx
import requests

from http_fastpath import (
    AsyncFastpathTransport,
    ConnectionInfo,
    FastpathAdapter,
    FastpathTransport,
    connection_info,
)


def show(client: str, n: int, info: ConnectionInfo | None) -> None:
    assert info is not None, "the response did not come through http_fastpath"
    print(
        f"{client:<12} #{n} tfo={info.tfo.value} syn_data_bytes={info.syn_data_bytes} "
        f"transport={info.transport} mptcp={info.mptcp} subflows={info.mptcp_subflows} "
        f"rtt_ms={info.rtt_ms} fallbacks={list(info.fallbacks)}"
    )


async def with_async_httpx(url: str, verify: bool | str) -> None:
    for n in range(2):
        async with httpx.AsyncClient(transport=AsyncFastpathTransport(verify=verify)) as c:
            show("httpx async", n, connection_info(await c.get(url)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--cafile", help="CA bundle to trust instead of the default")
    args = parser.parse_args()
    verify: bool | str = args.cafile or True
    for n in range(2):
        with requests.Session() as s:
            s.mount("http://", FastpathAdapter())
            s.mount("https://", FastpathAdapter())
            show("requests", n, connection_info(s.get(args.url, verify=verify, timeout=10)))
    for n in range(2):
        with httpx.Client(transport=FastpathTransport(verify=verify)) as c:
            show("httpx sync", n, connection_info(c.get(args.url)))
    asyncio.run(with_async_httpx(args.url, verify))


if __name__ == "__main__":
    main()
