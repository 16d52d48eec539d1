"""``http-fastpath demo``: show TFO and MPTCP working, verified from the server's kernel.

This first version runs on loopback inside a private network namespace: it proves what
the fast path does (SYN data, MPTCP) but makes no timing claim, since loopback has no
round trip worth saving.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .._dialer import dial
from .._options import FastpathOptions
from . import _netns
from ._servers import Server

_REQUEST = b"GET /bytes?n=64 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"


def _fetch(server: Server, options: FastpathOptions) -> str:
    with dial(server.host, server.port, options=options, timeout=5) as sock:
        sock.sendall(_REQUEST)
        while sock.recv(65536):
            pass
        info = sock.connection_info()
    return info.tfo.value + (f", mptcp={info.mptcp}" if info.mptcp is not None else "")


def run(out: TextIO = sys.stdout, connections: int = 5) -> int:
    """Run the loopback proof; return the process exit status."""
    reason = _netns.enter()
    if reason is not None:
        out.write(f"cannot create a private network namespace ({reason});\n")
        out.write("the demo needs one to set net.ipv4.tcp_fastopen without touching this host.\n")
        return 1
    out.write("private network namespace ready: net.ipv4.tcp_fastopen=3, net.mptcp.enabled=1\n\n")
    rows = [
        ("stock TCP", FastpathOptions(tfo=False, mptcp=False)),
        ("fastpath TFO", FastpathOptions(tfo=True, mptcp=False)),
        ("fastpath TFO+MPTCP", FastpathOptions(tfo=True, mptcp=True)),
    ]
    out.write(
        f"{'client':<20} {'conn':>4}  {'server saw SYN data':<20} {'server saw MPTCP':<17} client ConnectionInfo\n"
    )
    total_syn = 0
    for label, options in rows:
        with Server(tfo=True, mptcp=True) as server:
            for i in range(connections):
                status = _fetch(server, options)
                rec = server.records[-1]
                total_syn += rec.syn_data and options.tfo
                out.write(
                    f"{label:<20} {i + 1:>4}  {str(rec.syn_data):<20} {str(rec.is_mptcp):<17} {status}\n"
                )
                out.flush()
    out.write(
        f"\nfastpath connections whose SYN carried the request: {total_syn} "
        f"of {2 * connections} (the first to each server fetches the TFO cookie)\n"
    )
    return 0 if total_syn > 0 else 1
