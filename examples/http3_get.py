"""EXPERIMENTAL: one HTTP/3 GET with httpx and one with requests, and which QUIC backend served it.

    pip install 'http_fastpath[http3]'
    python examples/http3_get.py https://your-h3-server.example/ [--backend auto|userspace|kernel]
        [--cafile ca.pem]

The server must speak HTTP/3 on UDP (there is no TCP fallback).
"""

from __future__ import annotations

import argparse

import httpx
import requests

from http_fastpath import HTTP3Adapter, HTTP3Transport, connection_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--backend", default="auto", choices=["auto", "userspace", "kernel"])
    parser.add_argument("--cafile", help="CA bundle to trust instead of certifi's")
    args = parser.parse_args()
    verify: bool | str = args.cafile or True

    with httpx.Client(transport=HTTP3Transport(backend=args.backend, verify=verify)) as client:
        response = client.get(args.url)
        info = connection_info(response)
        print(
            f"httpx:    {response.status_code} {response.http_version}, "
            f"{len(response.content)} bytes, backend={info.quic_backend if info else None}"
        )

    with requests.Session() as session:
        session.mount("https://", HTTP3Adapter(backend=args.backend))
        response = session.get(args.url, verify=verify)
        info = connection_info(response)
        print(
            f"requests: {response.status_code}, {len(response.content)} bytes, "
            f"backend={info.quic_backend if info else None}"
        )


if __name__ == "__main__":
    main()
