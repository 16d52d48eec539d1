"""The fastpath dialer: :func:`dial`, :func:`open_pending` and :func:`open_plain`.

A connection is made in two steps:

1. :func:`open_pending` creates the socket for the first resolved address, with the
   protocol chosen at ``socket()`` time (``IPPROTO_MPTCP`` or ``IPPROTO_TCP``) and every
   option set *before* ``connect`` — then stops. The socket is *pending*.
2. The first write completes the connection (:meth:`.sockets.FastpathSocket.sendall` and
   friends, or :func:`.connect.connect_steps` for async drivers). When TCP Fast Open is
   on and the first flight is replay-safe (:mod:`.policy`), ``TCP_FASTOPEN_CONNECT`` is
   set and the first flight rides in the SYN; otherwise a plain SYN is sent. Either way
   the dialer then waits until the handshake is over (poll for writable, ``SO_ERROR``),
   so a refused, unreachable or silent server is reported as a *connect* error
   (:class:`.exceptions.DialError` / :class:`.exceptions.DialTimeout`) and the next
   address is tried, exactly as a blocking ``connect()`` would.

A host with several addresses is dialled with Happy Eyeballs (RFC 8305): :func:`open_pending`
puts the addresses in order and :mod:`.race` races them (:mod:`.eyeballs` decides).

The dialer's modules, from the bottom up:

- :mod:`.addresses` -- :func:`~.addresses.resolve`, IP literals resolved once;
- :mod:`.record` -- :class:`~.record.DialRecord` (what the dialer did for one connection)
  and ``_learn`` (what the kernel reported, into the destination memory and the counters);
- :mod:`.handshake` -- one attempt's syscalls: ``TCP_FASTOPEN_CONNECT``, ``connect``, the
  first flight, the wait for the handshake;
- :mod:`.sockets` -- the package's one socket factory (``new_socket`` and each
  connection's socket) and the pending :class:`~.sockets.FastpathSocket`;
- :mod:`.connect` -- the connect state machine (:func:`~.connect.connect_steps`, a
  generator that never blocks, so the sync socket and the async backends drive the same
  code) and the blocking drivers (:func:`~.connect.complete_sync`);
- this module -- the entry points.

The connection's proof (:func:`.proof.new_proof`) is read from the kernel when someone looks
at it; what the connect itself had to read (``TCP_INFO`` for the TCP Fast Open outcome,
``TCP_IS_MPTCP``) is kept on the :class:`~.record.DialRecord` and not read again.

The fast paths use Linux's option and protocol numbers. The platform (``sys.platform``,
kept on the :class:`~.record.DialRecord`) goes into every decision (:mod:`.decide`), so on
macOS, Windows or FreeBSD no Linux number reaches the kernel: the connection is plain TCP
and ``ConnectionInfo.fallbacks`` says why.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from time import monotonic as _monotonic
from time import time as _time

from .addresses import Address, resolve
from .options import FastpathOptions
from .reasons import Now
from .record import DialRecord
from .sockets import _S, FastpathSocket, SocketOption, _create

__all__ = ["dial", "open_pending", "open_plain"]

_tuple_new = tuple.__new__


def open_pending(
    addresses: Sequence[Address],
    *,
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
) -> FastpathSocket:
    """Create the socket for ``addresses[0]`` and leave it pending (not yet connected)."""
    if not addresses:
        raise ValueError("open_pending needs at least one address")
    return _open_pending(addresses, options, timeout, source_address, socket_options)


def _open_pending(
    addresses: Sequence[Address],
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None,
    socket_options: Sequence[SocketOption],
) -> FastpathSocket:
    """:func:`open_pending` (``addresses`` not empty), its arguments by position."""
    now = _tuple_new(Now, (_monotonic(), _time()))
    record = DialRecord(options, None, addresses, timeout, socket_options, source_address, now)
    if len(addresses) == 1:
        sock = _create(addresses[0], record, socket_options, source_address, FastpathSocket, now)
    else:
        sock, record.addresses = _create_first(
            addresses, record, socket_options, source_address, FastpathSocket, now
        )
    sock.fastpath_record = sock._fp_pending = record
    if sock.gettimeout() != timeout:  # (a new socket already blocks: no syscall for None)
        sock.settimeout(timeout)
    return sock


def _create_first(
    addresses: Sequence[Address],
    record: DialRecord,
    socket_options: Sequence[SocketOption],
    source_address: tuple[str, int] | None,
    cls: type[_S],
    now: Now,
) -> tuple[_S, Sequence[Address]]:
    """The socket for the first address, and the addresses from there on.

    Several addresses are put in Happy Eyeballs order first (:func:`.race.race_order`);
    an address whose socket cannot be made here (IPv6 disabled) is skipped.
    """
    if len(addresses) > 1 and record.options.happy_eyeballs_delay is not None:
        from .race import race_order

        addresses = race_order(addresses)
    while True:
        try:
            return _create(addresses[0], record, socket_options, source_address, cls, now), (
                addresses
            )
        except OSError:  # no socket of this family here: the next address
            if len(addresses) == 1:
                raise
            addresses = addresses[1:]


def open_plain(
    addresses: Sequence[Address],
    *,
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
) -> tuple[socket.socket, DialRecord]:
    """:func:`open_pending` for a driver that keeps the pending state itself.

    Returns a plain ``socket.socket`` (not connected yet) and its
    :class:`~.record.DialRecord` (what finishing the connect takes); finish with
    :func:`.connect.complete_sync` or by driving :func:`.connect.connect_steps`.
    """
    if not addresses:
        raise ValueError("open_plain needs at least one address")
    now = _tuple_new(Now, (_monotonic(), _time()))
    record = DialRecord(options, None, addresses, timeout, socket_options, source_address, now)
    sock: socket.socket
    if len(addresses) == 1:
        sock = _create(addresses[0], record, socket_options, source_address, socket.socket, now)
    else:
        sock, record.addresses = _create_first(
            addresses, record, socket_options, source_address, socket.socket, now
        )
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)
    return sock, record


def dial(
    host: str,
    port: int,
    *,
    options: FastpathOptions,
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
    family: int = socket.AF_UNSPEC,
) -> FastpathSocket:
    """Resolve ``host`` and return a :class:`FastpathSocket` for it.

    With TCP Fast Open on, the socket is returned *pending*: its first write connects it
    (see the module docstring). Otherwise it is connected before this returns. Errors:
    ``socket.gaierror`` (resolution), :class:`.exceptions.DialTimeout`,
    :class:`.exceptions.DialError`.
    """
    addresses = resolve(host, port, family)  # (never empty)
    sock = _open_pending(addresses, options, timeout, source_address, socket_options)
    if not options.tfo:
        sock.complete(None)
    return sock
