"""httpx with AsyncFastpathTransport under asyncio and trio: TFO + MPTCP, proof per response.

Run as root (or with user namespaces): ``python examples/httpx_async.py``. It enters a
private network namespace and starts its own servers on loopback.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

import httpx
import trustme

from http_fastpath import AsyncFastpathTransport, connection_info
from http_fastpath.netlab import Server, enter_private_netns, next_loopback


async def fetch(urls: list[str], verify: ssl.SSLContext, label: str) -> None:
    for url in urls:
        for attempt in range(3):  # fresh client = fresh connection each time
            async with httpx.AsyncClient(transport=AsyncFastpathTransport(verify=verify)) as client:
                resp = await client.get(url + "/")
            info = connection_info(resp)
            assert info is not None
            print(
                f"[{label}] {url} #{attempt}: {resp.status_code} tfo={info.tfo.value} "
                f"syn_data={info.syn_data_bytes}B transport={info.transport}"
            )


def main() -> int:
    reason = enter_private_netns()
    if reason is not None:
        print(f"cannot run the example: {reason}", file=sys.stderr)
        return 2
    ca = trustme.CA()
    host = next_loopback()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    with Server() as plain, Server(tls=server_ctx, host=host) as secure:
        urls = [plain.url, secure.url]
        asyncio.run(fetch(urls, client_ctx, "asyncio"))
        try:
            import trio
        except ImportError:
            print("trio is not installed: skipping the trio run")
        else:
            trio.run(fetch, urls, client_ctx, "trio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
