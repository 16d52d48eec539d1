"""An API SDK on the fastpath: the OpenAI Python SDK (v3, built on httpx2).

SDKs built on httpx2 take ``http_client=``; hand them a fastpath client and every
connection they open uses TCP Fast Open (and MPTCP where the server speaks it), with
proxies, TLS verification, retries and timeouts exactly as before.

Run as root (or with user namespaces): ``python examples/openai_sdk.py``. It enters a
private network namespace and serves an OpenAI-style ``/v1/models`` on loopback itself,
so it touches nothing outside. Needs ``pip install openai http_fastpath[httpx2]``.
"""

from __future__ import annotations

import ssl
import sys

import openai
import trustme

from http_fastpath import connection_info
from http_fastpath.httpx2 import fastpath_client
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

    with Server(tls=server_ctx, host=host, mptcp=True) as api:
        for attempt in range(3):  # a new SDK client each time: a fresh connection
            client = openai.OpenAI(
                base_url=f"{api.url}/v1",
                api_key="not-a-real-key",
                http_client=fastpath_client(verify=client_ctx),
            )
            with client:
                raw = client.models.with_raw_response.list()
                models = raw.parse()
            info = connection_info(raw.http_response)
            assert info is not None
            print(
                f"#{attempt}: models={[m.id for m in models.data]} tfo={info.tfo.value} "
                f"syn_data={info.syn_data_bytes}B mptcp={info.mptcp}"
            )
        print("server kernel saw SYN data:", [r.syn_data for r in api.records])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
