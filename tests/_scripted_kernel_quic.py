"""A SCRIPTED stand-in for a Linux kernel QUIC socket (no kernel involved).

It enforces the kernel's rules as documented in the project's KERNEL-QUIC.md notes
(lxin/quic uapi at 03a9c7c), so the kernel backend's pure logic can be tested in CI where
the module cannot be loaded. Its TLS peer is a real ``aioquic.tls.Context`` server with a
trustme certificate, so the handshake bytes, the certificate check and the traffic
secrets are real; only QUIC packet protection and the wire are absent. It is not a model
of the kernel's QUIC implementation and passing against it proves nothing about one.

Rules enforced (errno as the kernel would return, or EINVAL where the notes give none):

* ``connect()`` installs the Initial keys; nothing else works before it.
* ``TRANSPORT_PARAM_EXT`` get/set only while establishing (after connect, before both
  1-RTT secrets); at most 512 bytes.
* ``CRYPTO_SECRET`` only while establishing, only for levels HANDSHAKE, EARLY and APP,
  56-byte struct, a known TLS_CIPHER_* type; the secret must equal the peer's secret for
  that level and direction. Both APP secrets make the socket ESTABLISHED.
* handshake ``sendmsg`` (``QUIC_HANDSHAKE_INFO``): not at EARLY; only once that level's
  send key exists. Handshake data for the client is delivered by ``recvmsg`` only once
  the matching receive key is installed (the kernel buffers it until then).
* stream ``sendmsg`` (``QUIC_STREAM_INFO``): only when ESTABLISHED; a zero-length write
  without FIN fails with EMSGSIZE; a stream not yet opened needs MSG_QUIC_STREAM_NEW;
  flags limited to the ones the kernel accepts.
* send-side flow control (``stream_window=`` / ``conn_window=``, off by default): a write
  takes what the peer's stream and connection credit allow (a partial count); with no
  credit left it fails with ENOSPC, as lxin/quic does when a ``QUIC_STREAM_INFO`` cmsg is
  given (it turns ENOSPC into EAGAIN only without one; KERNEL-QUIC-VM.md). The peer grants
  credit back -- windows slide to what was sent plus the window -- each time the client
  reads (``recvmsg``), i.e. one driver cycle later, like MAX_DATA frames a round trip
  later. ``poll`` is not modelled (the kernel reports POLLOUT from connection credit only).
"""

from __future__ import annotations

import collections
import errno
from typing import Any

import trustme
from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from http_fastpath.http3 import _quic_kernel as k
from http_fastpath.http3._drivers import quic_configuration

# The uapi's numbers, written here from the headers rather than read from the module under
# test, so that a wrong table there fails the handshake tests: SOL_QUIC and enum
# quic_crypto_level (lxin/quic include/uapi/linux/quic.h), TLS_CIPHER_* (linux/tls.h).
_SOL_QUIC = 288
_APP, _INITIAL, _HANDSHAKE, _EARLY = 0, 1, 2, 3
_LEVEL = {
    tls.Epoch.ONE_RTT: _APP,
    tls.Epoch.INITIAL: _INITIAL,
    tls.Epoch.HANDSHAKE: _HANDSHAKE,
    tls.Epoch.ZERO_RTT: _EARLY,
}
_CIPHER = {
    tls.CipherSuite.AES_128_GCM_SHA256: 51,  # TLS_CIPHER_AES_GCM_128
    tls.CipherSuite.AES_256_GCM_SHA384: 52,  # TLS_CIPHER_AES_GCM_256
    tls.CipherSuite.CHACHA20_POLY1305_SHA256: 54,  # TLS_CIPHER_CHACHA20_POLY1305
}
_SECRET_LEN = {51: 32, 52: 48, 54: 32}
_STREAM_FLAGS = (
    k.MSG_QUIC_STREAM_NEW
    | k.MSG_QUIC_STREAM_FIN
    | k.MSG_QUIC_STREAM_UNI
    | k.MSG_QUIC_STREAM_DONTWAIT
    | 0x2000  # MSG_QUIC_STREAM_SNDBLOCK
)
_SENDMSG_FLAGS = k.MSG_MORE | k.MSG_DONTWAIT | k.MSG_NOSIGNAL | 0x100 | 0x40000  # WAITALL, BATCH
LOCAL_TP_EXT = bytes(range(65))  # what getsockopt(TRANSPORT_PARAM_EXT) returns (opaque here)
PEER_TP_EXT = b"\x01\x04\x80\x00\x75\x30"  # the server's extension body (opaque here)


def _err(code: int, what: str) -> OSError:
    return OSError(code, f"{errno.errorcode[code]} (scripted kernel rule): {what}")


class _PeerLayer:
    """The server side's QuicStreamLayer: its writes become the client's recvmsg messages."""

    class configuration:  # noqa: N801
        is_client = False

    _quic_logger = None
    _remote_max_datagram_frame_size = None

    def __init__(self, sock: ScriptedQuicSocket) -> None:
        self._sock = sock
        self._next = {False: 1, True: 3}

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int:
        return self._next[is_unidirectional]

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        uni = bool(stream_id & 2)
        if stream_id >= self._next[uni]:
            self._next[uni] = stream_id + 4
        if data or end_stream:
            self._sock.deliver_stream(stream_id, data, end_stream)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self._sock.deliver_reset(stream_id, error_code)

    def close(
        self, error_code: int = 0, frame_type: int | None = None, reason_phrase: str = ""
    ) -> None:
        self._sock.deliver_close(error_code, reason_phrase)

    def send_datagram_frame(self, data: bytes) -> None:
        raise AssertionError("no datagrams")


class ScriptedQuicSocket:
    """See the module docstring. ``log`` records every call in order."""

    def __init__(
        self,
        ca: trustme.CA,
        *identities: str,
        config_size: int = 28,
        h3_routes: dict[str, tuple[int, bytes]] | None = None,
        stream_window: int | None = None,
        conn_window: int | None = None,
        cipher_suite: tls.CipherSuite | None = None,
    ) -> None:
        cert = ca.issue_cert(*(identities or ("localhost",)))
        suites = None if cipher_suite is None else [cipher_suite]  # None: aioquic's choice
        self.server = tls.Context(is_client=False, alpn_protocols=["h3"], cipher_suites=suites)
        self.server.certificate = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
        key = load_pem_private_key(cert.private_key_pem.bytes(), None)
        self.server.certificate_private_key = key  # type: ignore[assignment]
        self.server.handshake_extensions = [
            (tls.ExtensionType.QUIC_TRANSPORT_PARAMETERS, PEER_TP_EXT)
        ]
        self.server.update_traffic_key_cb = self._server_key
        # (client_sends, level) -> (secret, TLS_CIPHER_* type)
        self._server_secrets: dict[tuple[bool, int], tuple[bytes, int]] = {}
        self._client_secrets: dict[tuple[bool, int], tuple[bytes, int]] = {}
        self.secrets_matched: set[tuple[bool, int]] = set()
        self._config_size = config_size
        self.state = "new"
        self.log: list[tuple[Any, ...]] = []
        self.send_keys: set[int] = set()
        self.recv_keys: set[int] = set()
        self.peer_tp_ext: bytes | None = None
        self.close_info: bytes | None = None
        self.events_on: set[int] = set()
        self.closed = False
        self._pending_handshake: dict[int, bytearray] = collections.defaultdict(bytearray)
        self._recv: collections.deque[tuple[bytes, list[tuple[int, int, bytes]], int]] = (
            collections.deque()
        )
        self.opened: set[int] = set()
        self.stopped: list[tuple[int, int]] = []
        self.stream_writes: list[tuple[int, bytes, int]] = []
        self.routes = h3_routes or {"/": (200, b"hello from the scripted kernel")}
        self._peer = _PeerLayer(self)
        self.server_h3: H3Connection | None = None
        self.requests: list[list[tuple[bytes, bytes]]] = []
        self.bodies: dict[int, bytearray] = collections.defaultdict(bytearray)
        # send-side flow control (None: unlimited)
        self._stream_window, self._conn_window = stream_window, conn_window
        self._stream_sent: dict[int, int] = collections.defaultdict(int)
        self._stream_limit: dict[int, int] = {}
        self._conn_sent = 0
        self._conn_limit = conn_window
        self.enospc = 0  # writes refused for want of credit

    # -- the TLS peer ------------------------------------------------------------------

    def _server_key(
        self, direction: tls.Direction, epoch: tls.Epoch, suite: tls.CipherSuite, secret: bytes
    ) -> None:
        client_sends = direction == tls.Direction.DECRYPT  # the server decrypts what we send
        self._server_secrets[(client_sends, _LEVEL[epoch])] = (secret, _CIPHER[suite])
        self._check_secrets()

    def _check_secrets(self) -> None:
        for key, secret in self._client_secrets.items():
            peer = self._server_secrets.get(key)
            if peer is not None and peer != secret:
                raise AssertionError(f"secret {key} or its cipher type does not match the peer's")
            if peer is not None:
                self.secrets_matched.add(key)

    def _to_server(self, data: bytes) -> None:
        bufs = {
            e: Buffer(capacity=16384)
            for e in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT)
        }
        self.server.handle_message(data, bufs)
        for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE):
            if bufs[epoch].data:
                self._pending_handshake[_LEVEL[epoch]].extend(bufs[epoch].data)

    # -- socket API (KernelSocket) -------------------------------------------------------

    def fileno(self) -> int:
        return -1

    def setblocking(self, flag: bool) -> None:
        self.log.append(("setblocking", flag))

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    def connect(self, address: Any) -> None:
        if self.state != "new":
            raise _err(errno.EISCONN, "connect() twice")
        self.log.append(("connect", address))
        self.state = "establishing"
        self.send_keys.add(_INITIAL)  # Initial keys are derived in-kernel
        self.recv_keys.add(_INITIAL)

    def getsockopt(self, level: int, optname: int, buflen: int) -> bytes:
        assert level == _SOL_QUIC, level
        self.log.append(("getsockopt", optname))
        if optname == k.QUIC_SOCKOPT_TRANSPORT_PARAM_EXT:
            if self.state != "establishing":
                raise _err(errno.EINVAL, f"TRANSPORT_PARAM_EXT get while {self.state}")
            return LOCAL_TP_EXT[:buflen]
        if optname == k.QUIC_SOCKOPT_CONFIG:
            return bytes(min(buflen, self._config_size))
        raise _err(errno.ENOPROTOOPT, f"getsockopt {optname} not scripted")

    def setsockopt(self, level: int, optname: int, value: bytes) -> None:
        assert level == _SOL_QUIC, level
        self.log.append(("setsockopt", optname))
        if optname == k.QUIC_SOCKOPT_TRANSPORT_PARAM_EXT:
            if self.state != "establishing":
                raise _err(errno.EINVAL, f"TRANSPORT_PARAM_EXT set while {self.state}")
            if len(value) > k.QUIC_TRANSPORT_PARAM_EXT_MAX:
                raise _err(errno.EINVAL, "TRANSPORT_PARAM_EXT longer than 512 bytes")
            self.peer_tp_ext = bytes(value)
        elif optname == k.QUIC_SOCKOPT_CRYPTO_SECRET:
            self._crypto_secret(value)
        elif optname == k.QUIC_SOCKOPT_CONNECTION_CLOSE:
            if len(value) != k.UAPI_SIZES["quic_connection_close"]:
                raise _err(errno.EINVAL, "struct quic_connection_close size")
            self.close_info = bytes(value)
        elif optname == k.QUIC_SOCKOPT_EVENT:
            if len(value) != 2:
                raise _err(errno.EINVAL, "struct quic_event_option size")
            if value[1]:
                self.events_on.add(value[0])
        elif optname in (k.QUIC_SOCKOPT_STREAM_RESET, k.QUIC_SOCKOPT_STREAM_STOP_SENDING):
            if self.state != "established":
                raise _err(errno.EINVAL, "STREAM_RESET / STOP_SENDING before established")
            if len(value) != k.UAPI_SIZES["quic_errinfo"]:
                raise _err(errno.EINVAL, "struct quic_errinfo size")
            self.stopped.append(k._ERRINFO.unpack(value))
        else:
            raise _err(errno.ENOPROTOOPT, f"setsockopt {optname} not scripted")

    def _crypto_secret(self, value: bytes) -> None:
        if self.state != "establishing":
            raise _err(errno.EINVAL, f"CRYPTO_SECRET while {self.state}")
        if len(value) != k.UAPI_SIZES["quic_crypto_secret"]:
            raise _err(errno.EINVAL, f"struct quic_crypto_secret of {len(value)} bytes")
        send, level, cipher = value[0], value[1], int.from_bytes(value[4:8], "little")
        if level not in (_HANDSHAKE, _EARLY, _APP):
            raise _err(errno.EINVAL, f"CRYPTO_SECRET for level {level} (Initial is in-kernel)")
        if cipher not in _SECRET_LEN:
            raise _err(errno.EINVAL, f"unknown cipher type {cipher}")
        secret = value[8 : 8 + _SECRET_LEN[cipher]]
        # Checked against the peer's secret now, or when the peer derives it (the server
        # installs its 1-RTT decrypt key only after the client Finished arrives).
        self._client_secrets[(bool(send), level)] = (bytes(secret), cipher)
        self._check_secrets()
        (self.send_keys if send else self.recv_keys).add(level)
        if _APP in self.send_keys and _APP in self.recv_keys:
            self.state = "established"

    def sendmsg(
        self, buffers: list[bytes], ancdata: list[tuple[int, int, bytes]], flags: int = 0
    ) -> int:
        if self.closed:
            raise _err(errno.EBADF, "closed")
        if flags & ~_SENDMSG_FLAGS:
            raise _err(errno.EINVAL, f"sendmsg flags {flags:#x}")
        data = b"".join(buffers)
        assert len(ancdata) == 1, ancdata
        level, kind, payload = ancdata[0]
        assert level == _SOL_QUIC
        if kind == k.QUIC_HANDSHAKE_INFO:
            if len(payload) != 1:
                raise _err(errno.EINVAL, "struct quic_handshake_info size")
            crypto_level = payload[0]
            if crypto_level == _EARLY:
                raise _err(errno.EINVAL, "handshake data at the EARLY level")
            if crypto_level not in self.send_keys:
                raise _err(errno.EINVAL, f"handshake data at level {crypto_level} before its key")
            self.log.append(("handshake", crypto_level, len(data)))
            self._to_server(data)
            return len(data)
        if kind == k.QUIC_STREAM_INFO:
            if len(payload) != k.UAPI_SIZES["quic_stream_info"]:
                raise _err(errno.EINVAL, "struct quic_stream_info size")
            sid, sflags = k.unpack_stream_info(payload)
            if self.state != "established":
                raise _err(errno.ENOTCONN, "stream data before the handshake completed")
            if sflags & ~_STREAM_FLAGS:
                raise _err(errno.EINVAL, f"stream flags {sflags:#x}")
            fin = bool(sflags & k.MSG_QUIC_STREAM_FIN)
            if not data and not fin:
                raise _err(errno.EMSGSIZE, "zero-length stream write without FIN")
            if sid not in self.opened:
                if not sflags & k.MSG_QUIC_STREAM_NEW:
                    raise _err(errno.EINVAL, f"stream {sid} not opened")
                if bool(sflags & k.MSG_QUIC_STREAM_UNI) != bool(sid & 2):
                    raise _err(errno.EINVAL, f"UNI flag does not match stream {sid}")
                self.opened.add(sid)
            room = self._credit(sid)
            if data and room <= 0:
                self.enospc += 1
                raise _err(errno.ENOSPC, "no flow-control credit (stream cmsg given)")
            if len(data) > room:
                data, fin = data[:room], False  # a partial write; FIN goes with the last byte
            self._stream_sent[sid] += len(data)
            self._conn_sent += len(data)
            self.stream_writes.append((sid, data, sflags))
            self._to_server_h3(sid, data, fin)
            return len(data)
        raise _err(errno.EINVAL, f"cmsg type {kind}")

    def _credit(self, sid: int) -> int:
        """Bytes the peer lets this stream send now (a large number when unlimited)."""
        room = 1 << 62
        if self._stream_window is not None:
            limit = self._stream_limit.setdefault(sid, self._stream_window)
            room = min(room, limit - self._stream_sent[sid])
        if self._conn_limit is not None:
            room = min(room, self._conn_limit - self._conn_sent)
        return room

    def _grant_credit(self) -> None:
        """The peer read everything: its windows slide (MAX_STREAM_DATA / MAX_DATA)."""
        if self._stream_window is not None:
            for sid, sent in self._stream_sent.items():
                self._stream_limit[sid] = sent + self._stream_window
        if self._conn_window is not None:
            self._conn_limit = self._conn_sent + self._conn_window

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        self._grant_credit()
        for level in (_INITIAL, _HANDSHAKE):
            pending = self._pending_handshake[level]
            if pending and level in self.recv_keys:  # buffered until the key is there
                data = bytes(pending[:bufsize])
                del pending[: len(data)]
                info = [(_SOL_QUIC, k.QUIC_HANDSHAKE_INFO, k.pack_handshake_info(level))]
                return data, info, 0x80, None  # MSG_EOR
        if self._recv:
            data, anc, msg_flags = self._recv.popleft()
            return data, anc, msg_flags, None
        raise BlockingIOError(errno.EAGAIN, "no data")

    def close(self) -> None:
        self.closed = True
        self.log.append(("close", None))

    # -- the HTTP/3 peer -------------------------------------------------------------------

    def deliver_stream(self, sid: int, data: bytes, fin: bool) -> None:
        flags = k.MSG_QUIC_STREAM_FIN if fin else 0
        self._recv.append(
            (data, [(_SOL_QUIC, k.QUIC_STREAM_INFO, k.pack_stream_info(sid, flags))], 0)
        )

    def deliver_reset(self, sid: int, code: int) -> None:
        body = k._STREAM_UPDATE.pack(sid, k.QUIC_STREAM_RECV_STATE_RESET_RECVD, code, 0)
        self._recv.append((bytes([k.QUIC_EVENT_STREAM_UPDATE]) + body, [], k.MSG_QUIC_NOTIFICATION))

    def deliver_close(self, code: int, phrase: str) -> None:
        body = k.pack_connection_close(code, 0, phrase)
        self._recv.append(
            (bytes([k.QUIC_EVENT_CONNECTION_CLOSE]) + body, [], k.MSG_QUIC_NOTIFICATION)
        )

    def _to_server_h3(self, sid: int, data: bytes, fin: bool) -> None:
        if self.server_h3 is None:
            # QuicStreamLayer is all H3Connection needs: the peer layer implements only that.
            self.server_h3 = H3Connection(self._peer)  # type: ignore[arg-type]
        event = StreamDataReceived(data=data, end_stream=fin, stream_id=sid)
        for h3_event in self.server_h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self.requests.append(list(h3_event.headers))
                if h3_event.stream_ended:
                    self._respond(h3_event.stream_id, h3_event.headers)
            elif isinstance(h3_event, DataReceived):
                self.bodies[h3_event.stream_id] += h3_event.data
                if h3_event.stream_ended:
                    self._respond(h3_event.stream_id, self.requests[-1])

    def _respond(self, sid: int, headers: Any) -> None:
        assert self.server_h3 is not None
        path = dict(headers)[b":path"].decode()
        if path == "/reset":
            self._peer.reset_stream(sid, 0x102)
            return
        status, body = self.routes.get(path, (404, b"not found"))
        self.server_h3.send_headers(sid, [(b":status", str(status).encode())])
        self.server_h3.send_data(sid, body, end_stream=True)


__all__ = ["LOCAL_TP_EXT", "PEER_TP_EXT", "ScriptedQuicSocket"]


# -- driving the kernel backend over the double ------------------------------------------------

ADDR = (2, ("127.0.0.1", 4433))


def drain(backend: k.KernelQuic) -> list[QuicEvent]:
    """Run ``backend`` against its scripted socket until the handshake ends (bounded)."""
    events = []
    for _ in range(20):  # bounded: the scripted peer answers synchronously
        backend.receive(0.0)
        backend.transmit(0.0)
        while (event := backend.next_event()) is not None:
            events.append(event)
        if any(isinstance(e, (HandshakeCompleted, ConnectionTerminated)) for e in events):
            break
    return events


def connected(ca: trustme.CA, ca_file: str, **kw: Any) -> tuple[k.KernelQuic, ScriptedQuicSocket]:
    """A kernel backend over a scripted socket, handshake completed."""
    sock = ScriptedQuicSocket(ca, "localhost", **kw)
    backend = k.KernelQuic(ADDR, quic_configuration("localhost", ca_file), sock=sock)
    backend.start(0.0)
    events = drain(backend)
    assert any(isinstance(e, HandshakeCompleted) for e in events), events
    return backend, sock
