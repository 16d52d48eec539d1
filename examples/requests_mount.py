"""Mount FastpathAdapter on a requests Session and print the proof for each connection.

    python examples/requests_mount.py https://your.server/      # any URL you may reach
    sudo python examples/requests_mount.py                       # self-contained lab demo

Without a URL the script moves into a private network namespace (root or an unprivileged
user namespace), starts a loopback HTTP server there and makes three fresh connections:
the first asks the server for a TCP Fast Open cookie, the next two carry the request in
the SYN, as the server's kernel confirms.
"""

from __future__ import annotations

import sys

import requests

from http_fastpath import FastpathAdapter, connection_info


def fetch(url: str, fresh_connections: int = 3) -> None:
    for n in range(fresh_connections):
        with requests.Session() as session:  # a new Session: a new connection
            session.mount("http://", FastpathAdapter())
            session.mount("https://", FastpathAdapter())
            resp = session.get(url, timeout=10)
            info = connection_info(resp)
            assert info is not None
            print(
                f"#{n} {resp.status_code} transport={info.transport} tfo={info.tfo.value} "
                f"syn_data_bytes={info.syn_data_bytes} mptcp={info.mptcp} "
                f"rtt_ms={info.rtt_ms} fallbacks={list(info.fallbacks)}"
            )


def lab() -> None:
    from http_fastpath.netlab import Server, enter_private_netns

    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"cannot create a private network namespace: {reason} (pass a URL instead)")
    with Server(mptcp=True) as server:
        fetch(server.url + "/bytes?n=16")
        seen = [(r.syn_data, r.is_mptcp) for r in server.records]
    print("server kernel saw (syn_data, mptcp) per connection:", seen)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        fetch(sys.argv[1])
    else:
        lab()
