"""httpx with FastpathTransport: TFO + MPTCP, proof per response (sync).

Run as root (or with user namespaces): ``python examples/httpx_sync.py``. It enters a
private network namespace and starts its own servers on loopback, so it touches nothing
outside.
"""

from __future__ import annotations

import ssl
import sys

import httpx
import trustme

from http_fastpath import FastpathTransport, connection_info, fastpath_client
from http_fastpath.netlab import Server, enter_private_netns, next_loopback


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

    with Server(mptcp=True) as plain, Server(tls=server_ctx, host=host) as secure:
        for url in (plain.url, secure.url):
            for attempt in range(3):  # fresh client = fresh connection each time
                transport = FastpathTransport(verify=client_ctx)
                with httpx.Client(transport=transport) as client:
                    resp = client.get(url + "/")
                info = connection_info(resp)
                assert info is not None
                print(
                    f"{url} #{attempt}: {resp.status_code} tfo={info.tfo.value} "
                    f"syn_data={info.syn_data_bytes}B transport={info.transport} "
                    f"mptcp={info.mptcp}"
                )
        # Keeps HTTP(S)_PROXY / NO_PROXY from the environment, like httpx.Client().
        with fastpath_client(verify=client_ctx) as client:
            print("fastpath_client:", client.get(secure.url + "/").text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
