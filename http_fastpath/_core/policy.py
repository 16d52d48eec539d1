"""Replay safety: may this first flight ride in a SYN?

RFC 7413 section 6.3: data in a SYN can be delivered twice (a retransmitted or replayed
SYN), so only first flights whose duplication is harmless go early. A TLS ClientHello
is always safe (the server's handshake state does not survive a duplicate); a cleartext
HTTP/1.x request is safe when its method is idempotent (RFC 9110 section 9.2.2) or it is
a proxy ``CONNECT`` (a duplicate only opens an idle tunnel).
"""

from __future__ import annotations

from typing import Final

SAFE_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE", b"CONNECT"}
)
_TLS_HANDSHAKE: Final = 0x16
_CLIENT_HELLO: Final = 0x01


def is_tls_client_hello(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts with a TLS handshake record holding a ClientHello."""
    head = bytes(data[:6])
    return (
        len(head) == 6
        and head[0] == _TLS_HANDSHAKE
        and head[1] == 0x03
        and head[5] == _CLIENT_HELLO
    )


def request_method(data: bytes | bytearray | memoryview) -> bytes | None:
    """The method token of a cleartext HTTP/1.x request line, or None."""
    head = bytes(data[:16])
    method, sep, _ = head.partition(b" ")
    if not sep or not method.isalpha() or not method.isupper():
        return None
    return method


def is_replay_safe(data: bytes | bytearray | memoryview) -> bool:
    """True when sending ``data`` in a SYN is harmless if the SYN is duplicated.

    :func:`is_tls_client_hello`, else :func:`request_method` in :data:`SAFE_METHODS`, on
    one copy of the first 16 bytes (it runs for every first flight).
    """
    head = bytes(data[:16])
    if head.startswith(_SAFE_REQUESTS):
        return True
    return len(head) >= 6 and head[0] == _TLS_HANDSHAKE and head[1] == 0x03 and head[5] == 1


#: "GET ", "HEAD ", ...: a request line starting with one is a safe method's
_SAFE_REQUESTS: Final = tuple(method + b" " for method in sorted(SAFE_METHODS))
