"""EXPERIMENTAL kernel QUIC backend: an ``IPPROTO_QUIC`` socket, TLS 1.3 handshake in userspace.

Linux kernel QUIC is the out-of-tree lxin/quic module (not in mainline, not in any
distribution kernel as of late 2026). The kernel does packet protection, loss recovery,
flow control and streams; the TLS handshake runs here, in ``aioquic.tls.Context``:

1. ``connect()`` (the kernel derives the Initial keys; nothing is sent yet);
2. ``getsockopt(QUIC_SOCKOPT_TRANSPORT_PARAM_EXT)`` gives our encoded transport
   parameters, which go into the ClientHello's ``quic_transport_parameters`` extension;
3. each TLS message is sent with a ``QUIC_HANDSHAKE_INFO{level}`` cmsg and each received
   one arrives with one; after every ``handle_message`` the peer's transport parameters
   are handed to the kernel *first*, then the queued traffic secrets (the kernel refuses
   ``TRANSPORT_PARAM_EXT`` once both 1-RTT secrets made it ESTABLISHED), then the output;
4. stream data then travels with ``QUIC_STREAM_INFO{stream_id, flags}`` cmsgs. Streams are
   opened implicitly (``MSG_QUIC_STREAM_NEW`` on the first write, client IDs counted here),
   so no in/out ``getsockopt`` (which CPython cannot pass input bytes to) is needed and this
   module needs no ``ctypes``. Empty non-FIN writes are dropped (the kernel says EMSGSIZE).

Constants and layouts are those of the pinned uapi revision :data:`UAPI_REVISION`
(``modules/include/uapi/linux/quic.h``); :func:`uapi_mismatch` checks at run time that the
running module returns the same ``struct quic_config`` size before anything is trusted.
Facts and sources: ``shared/notes/KERNEL-QUIC.md`` in the project's notes, docs/http3.md.
Out of scope: 0-RTT, session resumption, migration, datagrams, key update.
"""

from __future__ import annotations

import collections
import errno
import functools
import socket
import struct
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._h3 import require_aioquic

require_aioquic()

from aioquic import tls  # noqa: E402
from aioquic._buffer import Buffer  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.events import (  # noqa: E402
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)

from .._core import linux as _linux  # noqa: E402
from .._core.addresses import Address  # noqa: E402
from .._core.info import ConnectionInfo, TFOStatus  # noqa: E402
from .._core.sockets import new_socket  # noqa: E402

if TYPE_CHECKING:
    from ._h3._stream_layer import QuicBackend

__all__ = [
    "CIPHER_TO_TLS",
    "EPOCH_TO_LEVEL",
    "UAPI_REVISION",
    "UAPI_SIZES",
    "KernelHandshake",
    "KernelQuic",
    "KernelSocket",
    "uapi_mismatch",
]

#: The lxin/quic uapi header revision these constants and layouts were taken from.
UAPI_REVISION: Final = "lxin/quic 03a9c7cdb2d5 (2026-07-24) modules/include/uapi/linux/quic.h"

IPPROTO_QUIC: Final = _linux.IPPROTO_QUIC  # 261
SOL_QUIC: Final = 288

# cmsg types (cmsg_level SOL_QUIC)
QUIC_STREAM_INFO: Final = 0
QUIC_HANDSHAKE_INFO: Final = 1

# stream flags (aliases of MSG_* values) and msg_flags
MSG_QUIC_STREAM_NEW: Final = 0x400
MSG_QUIC_STREAM_FIN: Final = 0x200
MSG_QUIC_STREAM_UNI: Final = 0x800
MSG_QUIC_STREAM_DONTWAIT: Final = 0x10000
MSG_QUIC_DATAGRAM: Final = 0x1000
MSG_QUIC_NOTIFICATION: Final = 0x8000
MSG_MORE: Final = 0x8000
MSG_NOSIGNAL: Final = 0x4000
MSG_DONTWAIT: Final = 0x40

# enum quic_crypto_level
QUIC_CRYPTO_APP: Final = 0
QUIC_CRYPTO_INITIAL: Final = 1
QUIC_CRYPTO_HANDSHAKE: Final = 2
QUIC_CRYPTO_EARLY: Final = 3

# socket options (level SOL_QUIC)
QUIC_SOCKOPT_EVENT: Final = 0
QUIC_SOCKOPT_STREAM_OPEN: Final = 1
QUIC_SOCKOPT_STREAM_RESET: Final = 2
QUIC_SOCKOPT_STREAM_STOP_SENDING: Final = 3
QUIC_SOCKOPT_CONNECTION_ID: Final = 4
QUIC_SOCKOPT_CONNECTION_CLOSE: Final = 5
QUIC_SOCKOPT_CONNECTION_MIGRATION: Final = 6
QUIC_SOCKOPT_KEY_UPDATE: Final = 7
QUIC_SOCKOPT_TRANSPORT_PARAM: Final = 8
QUIC_SOCKOPT_CONFIG: Final = 9
QUIC_SOCKOPT_TOKEN: Final = 10
QUIC_SOCKOPT_ALPN: Final = 11
QUIC_SOCKOPT_SESSION_TICKET: Final = 12
QUIC_SOCKOPT_CRYPTO_SECRET: Final = 13
QUIC_SOCKOPT_TRANSPORT_PARAM_EXT: Final = 14

# enum quic_event_type
QUIC_EVENT_STREAM_UPDATE: Final = 1
QUIC_EVENT_CONNECTION_CLOSE: Final = 5
# stream states (quic_stream_update.state)
QUIC_STREAM_RECV_STATE_RESET_RECVD: Final = 10

# TLS_CIPHER_* from linux/tls.h
TLS_CIPHER_AES_GCM_128: Final = 51
TLS_CIPHER_AES_GCM_256: Final = 52
TLS_CIPHER_AES_CCM_128: Final = 53
TLS_CIPHER_CHACHA20_POLY1305: Final = 54

QUIC_CRYPTO_SECRET_BUFFER_SIZE: Final = 48
QUIC_CLOSE_PHRASE_BUFFER_SIZE: Final = 64
QUIC_TRANSPORT_PARAM_EXT_MAX: Final = 512

#: aioquic ``tls.Epoch`` -> ``enum quic_crypto_level``.
EPOCH_TO_LEVEL: Final = {
    tls.Epoch.INITIAL: QUIC_CRYPTO_INITIAL,
    tls.Epoch.ZERO_RTT: QUIC_CRYPTO_EARLY,
    tls.Epoch.HANDSHAKE: QUIC_CRYPTO_HANDSHAKE,
    tls.Epoch.ONE_RTT: QUIC_CRYPTO_APP,
}
#: TLS 1.3 cipher suite -> ``quic_crypto_secret.type`` (TLS_CIPHER_*).
CIPHER_TO_TLS: Final = {
    tls.CipherSuite.AES_128_GCM_SHA256: TLS_CIPHER_AES_GCM_128,
    tls.CipherSuite.AES_256_GCM_SHA384: TLS_CIPHER_AES_GCM_256,
    tls.CipherSuite.CHACHA20_POLY1305_SHA256: TLS_CIPHER_CHACHA20_POLY1305,
}

# Struct layouts (x86_64 and every LP64 Linux; host byte order). Sizes pinned in UAPI_SIZES.
_STREAM_INFO = struct.Struct("=qI4x")  # stream_id s64, stream_flags u32, tail padding
_HANDSHAKE_INFO = struct.Struct("=B")  # crypto_level
_CRYPTO_SECRET = struct.Struct(f"=BBHI{QUIC_CRYPTO_SECRET_BUFFER_SIZE}s")
_ERRINFO = struct.Struct("=qI4x")  # stream_id s64, errcode u32
_CONNECTION_CLOSE = struct.Struct(f"=IB3x{QUIC_CLOSE_PHRASE_BUFFER_SIZE}s")
_EVENT_OPTION = struct.Struct("=BB")
_STREAM_UPDATE = struct.Struct("=qB3xIQ")  # id, state, errcode, finalsz
_CONFIG = struct.Struct("=IIIIBBBBB3xI")
_TRANSPORT_PARAM = struct.Struct("=8BHHIIHHQQQQ")

#: ``sizeof`` of each uapi struct at :data:`UAPI_REVISION` (computed there with gcc, x86_64).
UAPI_SIZES: Final = {
    "quic_handshake_info": 1,
    "quic_stream_info": 16,
    "quic_transport_param": 56,
    "quic_config": 28,
    "quic_crypto_secret": 56,
    "quic_errinfo": 16,
    "quic_event_option": 2,
    "quic_stream_update": 24,
    "quic_connection_close": 72,
}
_STRUCTS: Final = {
    "quic_handshake_info": _HANDSHAKE_INFO,
    "quic_stream_info": _STREAM_INFO,
    "quic_transport_param": _TRANSPORT_PARAM,
    "quic_config": _CONFIG,
    "quic_crypto_secret": _CRYPTO_SECRET,
    "quic_errinfo": _ERRINFO,
    "quic_event_option": _EVENT_OPTION,
    "quic_stream_update": _STREAM_UPDATE,
    "quic_connection_close": _CONNECTION_CLOSE,
}
_ANC_SIZE: Final = socket.CMSG_SPACE(_STREAM_INFO.size) + socket.CMSG_SPACE(_HANDSHAKE_INFO.size)
_RECV_SIZE: Final = 65536


def pack_stream_info(stream_id: int, flags: int) -> bytes:
    return _STREAM_INFO.pack(stream_id, flags)


def unpack_stream_info(data: bytes) -> tuple[int, int]:
    stream_id, flags = _STREAM_INFO.unpack_from(data.ljust(_STREAM_INFO.size, b"\0"))
    return int(stream_id), int(flags)


def pack_handshake_info(level: int) -> bytes:
    return _HANDSHAKE_INFO.pack(level)


def pack_crypto_secret(send: bool, level: int, cipher: int, secret: bytes) -> bytes:
    if len(secret) > QUIC_CRYPTO_SECRET_BUFFER_SIZE:
        raise ValueError(f"traffic secret of {len(secret)} bytes (at most 48)")
    return _CRYPTO_SECRET.pack(int(send), level, 0, cipher, secret)


def pack_errinfo(stream_id: int, errcode: int) -> bytes:
    return _ERRINFO.pack(stream_id, errcode)


def pack_connection_close(errcode: int, frame: int, phrase: str) -> bytes:
    raw = phrase.encode("utf-8")[: QUIC_CLOSE_PHRASE_BUFFER_SIZE - 1]
    return _CONNECTION_CLOSE.pack(errcode, frame & 0xFF, raw)


def unpack_connection_close(data: bytes) -> tuple[int, int, str]:
    errcode, frame, phrase = _CONNECTION_CLOSE.unpack_from(
        data.ljust(_CONNECTION_CLOSE.size, b"\0")
    )
    return int(errcode), int(frame), phrase.split(b"\0", 1)[0].decode("utf-8", "replace")


def pack_event_option(event_type: int, on: bool) -> bytes:
    return _EVENT_OPTION.pack(event_type, int(on))


def unpack_stream_update(data: bytes) -> tuple[int, int, int, int]:
    sid, state, errcode, finalsz = _STREAM_UPDATE.unpack_from(
        data.ljust(_STREAM_UPDATE.size, b"\0")
    )
    return int(sid), int(state), int(errcode), int(finalsz)


def struct_size(name: str) -> int:
    """``struct.calcsize`` of our layout for uapi struct ``name``."""
    return _STRUCTS[name].size


class KernelSocket(Protocol):
    """The socket calls the kernel backend makes (a real ``IPPROTO_QUIC`` socket, or a
    scripted stand-in in the tests)."""

    def fileno(self) -> int: ...

    def connect(self, address: Any, /) -> None: ...

    def setblocking(self, flag: bool, /) -> None: ...

    def setsockopt(self, level: int, optname: int, value: bytes, /) -> None: ...

    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...

    def sendmsg(
        self, buffers: list[bytes], ancdata: list[tuple[int, int, bytes]], flags: int = 0, /
    ) -> int: ...

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]: ...

    def getsockname(self) -> Any: ...

    def close(self) -> None: ...


@functools.lru_cache(maxsize=1)
def uapi_mismatch() -> str | None:
    """None when the running quic module speaks our uapi revision, else why not.

    Checks that ``IPPROTO_QUIC`` sockets exist and that ``getsockopt(QUIC_SOCKOPT_CONFIG)``
    returns ``sizeof(struct quic_config)`` of :data:`UAPI_REVISION` (28 bytes).
    """
    if not _linux.is_linux(_linux.PLATFORM):
        return f"IPPROTO_QUIC is Linux's out-of-tree 'quic' module (not on {_linux.PLATFORM})"
    try:
        sock = new_socket(socket.AF_INET, socket.SOCK_DGRAM, IPPROTO_QUIC)
    except OSError as exc:
        return f"IPPROTO_QUIC sockets unavailable ({exc.strerror or exc})"
    with sock:
        return check_config_size(sock)


def check_config_size(sock: KernelSocket) -> str | None:
    """The runtime uapi check on one socket (see :func:`uapi_mismatch`)."""
    try:
        got = len(sock.getsockopt(SOL_QUIC, QUIC_SOCKOPT_CONFIG, 64))
    except OSError as exc:
        return f"getsockopt(QUIC_SOCKOPT_CONFIG) failed ({exc.strerror or exc})"
    want = UAPI_SIZES["quic_config"]
    if got != want:
        return (
            f"the quic module returned a {got}-byte struct quic_config, {want} expected: "
            f"its uapi differs from the pinned revision ({UAPI_REVISION})"
        )
    return None


class KernelHandshake:
    """Drives ``aioquic.tls.Context`` (client) for a kernel QUIC socket.

    Order after each ``handle_message`` (KERNEL-QUIC.md §3.3.1): peer transport parameters,
    then the traffic secrets in the order TLS produced them, then the handshake output
    (INITIAL before HANDSHAKE, ``MSG_MORE`` on all but the last message).
    """

    def __init__(self, sock: KernelSocket, config: QuicConfiguration) -> None:
        self._sock = sock
        self.ctx = tls.Context(
            is_client=True,
            alpn_protocols=list(config.alpn_protocols or ["h3"]),
            cadata=config.cadata,
            cafile=config.cafile,
            capath=config.capath,
            server_name=config.server_name,
            verify_mode=config.verify_mode,
        )
        self.ctx.update_traffic_key_cb = self._on_traffic_key
        self._secrets: list[tuple[tls.Direction, tls.Epoch, tls.CipherSuite, bytes]] = []
        self._peer_params_applied = False
        #: (level, send) of each secret handed to the kernel, in order (for the proof).
        self.installed: list[tuple[int, bool]] = []

    @property
    def complete(self) -> bool:
        return self.ctx.state == tls.State.CLIENT_POST_HANDSHAKE

    def start(self) -> None:
        """Fetch our transport parameters from the kernel and send the ClientHello."""
        local = self._sock.getsockopt(
            SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT, QUIC_TRANSPORT_PARAM_EXT_MAX
        )
        self.ctx.handshake_extensions = [
            (tls.ExtensionType.QUIC_TRANSPORT_PARAMETERS, bytes(local))
        ]
        self._run(b"")

    def feed(self, data: bytes) -> None:
        """Handshake bytes the kernel delivered (any level: aioquic's state machine decides)."""
        self._run(data)

    def _on_traffic_key(
        self, direction: tls.Direction, epoch: tls.Epoch, suite: tls.CipherSuite, secret: bytes
    ) -> None:
        self._secrets.append((direction, epoch, suite, secret))

    def _run(self, data: bytes) -> None:
        bufs = {
            epoch: Buffer(capacity=16384)
            for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT)
        }
        self.ctx.handle_message(data, bufs)
        self._apply_peer_params()
        self._apply_secrets()
        self._send_output(bufs)

    def _apply_peer_params(self) -> None:
        if self._peer_params_applied or self.ctx.received_extensions is None:
            return
        for ext_type, value in self.ctx.received_extensions:
            if ext_type == tls.ExtensionType.QUIC_TRANSPORT_PARAMETERS:
                self._sock.setsockopt(SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT, value)
                self._peer_params_applied = True
                return
        raise tls.AlertMissingExtension("the server sent no quic_transport_parameters")

    def _apply_secrets(self) -> None:
        secrets, self._secrets = self._secrets, []
        for direction, epoch, suite, secret in secrets:
            level = EPOCH_TO_LEVEL[epoch]
            cipher = CIPHER_TO_TLS.get(suite)
            if cipher is None:
                raise tls.AlertHandshakeFailure(f"cipher suite {suite!r} unknown to kernel QUIC")
            send = direction == tls.Direction.ENCRYPT
            if level == QUIC_CRYPTO_APP and not self._peer_params_applied:
                raise tls.AlertMissingExtension("1-RTT keys before the peer's transport parameters")
            self._sock.setsockopt(
                SOL_QUIC,
                QUIC_SOCKOPT_CRYPTO_SECRET,
                pack_crypto_secret(send, level, cipher, secret),
            )
            self.installed.append((level, send))

    def _send_output(self, bufs: dict[tls.Epoch, Buffer]) -> None:
        out = [
            (EPOCH_TO_LEVEL[epoch], bufs[epoch].data)
            for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE)
            if bufs[epoch].data
        ]
        for i, (level, data) in enumerate(out):
            flags = MSG_NOSIGNAL | (MSG_MORE if i < len(out) - 1 else 0)
            cmsg = [(SOL_QUIC, QUIC_HANDSHAKE_INFO, pack_handshake_info(level))]
            self._sock.sendmsg([data], cmsg, flags)


class _Configuration:
    is_client = True


class KernelQuic:
    """A :class:`~._h3._stream_layer.QuicBackend` over a Linux kernel QUIC socket."""

    name = "kernel"

    def __init__(
        self, address: Address, config: QuicConfiguration, *, sock: KernelSocket | None = None
    ) -> None:
        family, sockaddr = address
        self._addr = sockaddr
        self._config = config
        if sock is None and not _linux.is_linux(_linux.PLATFORM):
            raise OSError(errno.EPROTONOSUPPORT, "kernel QUIC (IPPROTO_QUIC) needs Linux")
        self._sock: KernelSocket = (
            sock if sock is not None else new_socket(family, socket.SOCK_DGRAM, IPPROTO_QUIC)
        )
        self._handshake = KernelHandshake(self._sock, config)
        self._events: collections.deque[QuicEvent] = collections.deque()
        self._out: collections.deque[tuple[int, bytes, bool]] = collections.deque()
        self._opened: set[int] = set()
        self._next_id = {False: 0, True: 2}  # client-initiated bidi 0,4,8..; uni 2,6,10..
        self._established = False
        self._closed = False
        self._closed_by_peer = False

    # -- QuicStreamLayer -----------------------------------------------------------------

    @property
    def configuration(self) -> _Configuration:
        return _Configuration()

    @property
    def _quic_logger(self) -> None:
        return None

    @property
    def _remote_max_datagram_frame_size(self) -> int | None:
        return None

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int:
        return self._next_id[is_unidirectional]

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        uni = bool(stream_id & 0x2)
        if stream_id >= self._next_id[uni]:
            self._next_id[uni] = stream_id + 4
        if not data and not end_stream:
            return  # the kernel rejects an empty non-FIN stream write with EMSGSIZE
        self._out.append((stream_id, bytes(data), end_stream))

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self._sock.setsockopt(
            SOL_QUIC, QUIC_SOCKOPT_STREAM_RESET, pack_errinfo(stream_id, error_code)
        )

    def close(
        self, error_code: int = 0, frame_type: int | None = None, reason_phrase: str = ""
    ) -> None:
        # An application close (e.g. H3_NO_ERROR) is sent by the kernel at close().
        self._sock.setsockopt(
            SOL_QUIC,
            QUIC_SOCKOPT_CONNECTION_CLOSE,
            pack_connection_close(error_code, frame_type or 0, reason_phrase),
        )

    def send_datagram_frame(self, data: bytes) -> None:
        raise OSError(errno.EOPNOTSUPP, "QUIC datagrams are not supported by the kernel backend")

    # -- QuicBackend ---------------------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def start(self, now: float) -> None:
        self._sock.connect(self._addr)
        self._sock.setblocking(False)
        try:
            self._handshake.start()
        except tls.Alert as exc:
            self._tls_failed(exc)

    def early_data_ready(self) -> bool:
        return False  # 0-RTT and resumption are not wired for kernel QUIC (docs/http3.md)

    def receive(self, now: float) -> None:
        while not self._closed and not self._closed_by_peer:
            try:
                data, ancdata, msg_flags, _ = self._sock.recvmsg(_RECV_SIZE, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            if msg_flags & MSG_QUIC_NOTIFICATION:
                self._on_notification(data)
                continue
            handshake_level: int | None = None
            stream: tuple[int, int] | None = None
            for level, kind, payload in ancdata:
                if level != SOL_QUIC:
                    continue
                if kind == QUIC_HANDSHAKE_INFO:
                    handshake_level = payload[0]
                elif kind == QUIC_STREAM_INFO:
                    stream = unpack_stream_info(payload)
            if handshake_level is not None:
                self._on_handshake_data(data)
            elif stream is not None:
                sid, flags = stream
                fin = bool(flags & MSG_QUIC_STREAM_FIN)
                self._events.append(StreamDataReceived(data=data, end_stream=fin, stream_id=sid))
            elif not data:
                self._closed_by_peer = True
                self._terminated(0, "the kernel reported end of connection")
                return

    def transmit(self, now: float) -> None:
        while self._out and self._established and not self._closed:
            sid, data, fin = self._out[0]
            flags = MSG_QUIC_STREAM_DONTWAIT | (MSG_QUIC_STREAM_FIN if fin else 0)
            if sid not in self._opened:
                flags |= MSG_QUIC_STREAM_NEW | (MSG_QUIC_STREAM_UNI if sid & 0x2 else 0)
            cmsg = [(SOL_QUIC, QUIC_STREAM_INFO, pack_stream_info(sid, flags))]
            try:
                sent = self._sock.sendmsg([data], cmsg, MSG_DONTWAIT | MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return  # the socket buffer is full: wants_write() waits for POLLOUT
            except OSError as exc:
                # No stream or connection credit from the peer: with a QUIC_STREAM_INFO cmsg
                # lxin/quic says ENOSPC, not EAGAIN. Keep the data queued and wait likewise.
                if exc.errno != errno.ENOSPC:
                    raise
                return
            self._opened.add(sid)
            if sent < len(data):
                self._out[0] = (sid, data[sent:], fin)
            else:
                self._out.popleft()

    def wants_write(self) -> bool:
        return bool(self._out) and self._established

    def next_timer(self) -> float | None:
        return None  # the kernel runs QUIC's timers

    def handle_timer(self, now: float) -> None:
        return None

    def next_event(self) -> QuicEvent | None:
        return self._events.popleft() if self._events else None

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        self._sock.setsockopt(
            SOL_QUIC, QUIC_SOCKOPT_STREAM_STOP_SENDING, pack_errinfo(stream_id, error_code)
        )

    def connection_info(self) -> ConnectionInfo:
        try:
            local = self._sock.getsockname()
        except OSError:
            local = None
        return ConnectionInfo(
            transport="quic",
            tfo=TFOStatus.NOT_APPLICABLE,
            socket_protocol="quic",
            local_address=_addr(local),
            peer_address=_addr(self._addr),
            quic_backend=self.name,
        )

    def close_socket(self) -> None:
        self._closed = True
        self._sock.close()

    # -- internals -----------------------------------------------------------------------

    def _on_handshake_data(self, data: bytes) -> None:
        if self._established:
            return  # post-handshake TLS messages (NewSessionTicket): resumption is out of scope
        try:
            self._handshake.feed(data)
        except tls.Alert as exc:
            self._tls_failed(exc)
            return
        if self._handshake.complete:
            self._established = True
            for event_type in (QUIC_EVENT_STREAM_UPDATE, QUIC_EVENT_CONNECTION_CLOSE):
                try:
                    self._sock.setsockopt(
                        SOL_QUIC, QUIC_SOCKOPT_EVENT, pack_event_option(event_type, True)
                    )
                except OSError:
                    pass  # events only make errors more precise
            self._events.append(
                HandshakeCompleted(
                    alpn_protocol=self._handshake.ctx.alpn_negotiated,
                    early_data_accepted=False,
                    session_resumed=False,
                )
            )

    def _on_notification(self, data: bytes) -> None:
        if not data:
            return
        kind, body = data[0], data[1:]
        if kind == QUIC_EVENT_CONNECTION_CLOSE:
            code, frame, phrase = unpack_connection_close(body)
            self._terminated(code, phrase, frame)
        elif kind == QUIC_EVENT_STREAM_UPDATE:
            sid, state, errcode, _ = unpack_stream_update(body)
            if state == QUIC_STREAM_RECV_STATE_RESET_RECVD:
                self._events.append(StreamReset(error_code=errcode, stream_id=sid))

    def _tls_failed(self, exc: tls.Alert) -> None:
        self._terminated(0x100 + int(exc.description), str(exc) or type(exc).__name__)

    def _terminated(self, code: int, reason: str, frame: int | None = None) -> None:
        self._events.append(
            ConnectionTerminated(error_code=code, frame_type=frame, reason_phrase=reason)
        )


def _addr(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


if TYPE_CHECKING:

    def _implements_backend(backend: KernelQuic) -> QuicBackend:
        return backend

    def _real_socket(sock: socket.socket) -> KernelSocket:
        return sock
