"""Kernel QUIC backend: PURE LOGIC tested against a SCRIPTED socket — no kernel QUIC here.

``tests/_scripted_kernel_quic.py`` enforces the kernel's rules from the project's notes
(KERNEL-QUIC.md) and runs a real ``aioquic.tls`` server as the TLS peer. These tests show
that the handshake driver, the stream shim and the struct packing follow those rules; they
do not show that a real ``IPPROTO_QUIC`` socket works (test_http3_kernel_real.py does
that, and is skipped where the module is missing — in CI, always).
"""

from __future__ import annotations

import errno
import struct
from typing import Any

import pytest
import trustme
from aioquic import tls
from aioquic.quic.events import (
    ConnectionTerminated,
    StreamReset,
)

from http_fastpath.http3 import _quic_kernel as k
from http_fastpath.http3._drivers import quic_configuration
from http_fastpath.http3._h3._client import H3_NO_ERROR, H3Client
from http_fastpath.http3._h3._errors import H3StreamError, H3TLSError

from .._scripted_kernel_quic import (
    ADDR,
    LOCAL_TP_EXT,
    PEER_TP_EXT,
    ScriptedQuicSocket,
    connected,
)


def _h3_start(
    ca: trustme.CA, ca_file: str, identity: str = "localhost", **kw: object
) -> tuple[H3Client, ScriptedQuicSocket]:
    """An H3Client on the kernel backend over a scripted socket, handshake attempted."""
    sock = ScriptedQuicSocket(ca, identity, **kw)  # type: ignore[arg-type]
    client = H3Client(
        k.KernelQuic(ADDR, quic_configuration("localhost", ca_file), sock=sock),
        host="localhost",
        port=4433,
    )
    client.start(0.0)
    for _ in range(10):
        client.step(0.0, True)
    return client, sock


def _h3_client(ca: trustme.CA, ca_file: str, **kw: Any) -> tuple[H3Client, ScriptedQuicSocket]:
    """An H3Client on the kernel backend over a scripted socket, handshake done."""
    client, sock = _h3_start(ca, ca_file, **kw)
    assert client.handshake_done
    return client, sock


# -- uapi tables -----------------------------------------------------------------------------


def test_struct_formats_agree_with_the_size_table() -> None:
    """Both tables are the module's own: this catches a typo in a struct format, not drift
    from the kernel's uapi (``check_config_size`` compares with the kernel at run time)."""
    for name, size in k.UAPI_SIZES.items():
        assert k.struct_size(name) == size, name


def test_struct_packing_offsets() -> None:
    secret = bytes(range(48))
    raw = k.pack_crypto_secret(True, k.QUIC_CRYPTO_HANDSHAKE, k.TLS_CIPHER_AES_GCM_256, secret)
    assert len(raw) == 56
    assert raw[0] == 1 and raw[1] == 2 and raw[2:4] == b"\0\0"
    assert struct.unpack_from("=I", raw, 4)[0] == 52
    assert raw[8:56] == secret
    short = k.pack_crypto_secret(False, k.QUIC_CRYPTO_APP, 51, b"\xaa" * 32)
    assert short[8:40] == b"\xaa" * 32 and short[40:] == bytes(16)  # zero-padded to 48
    with pytest.raises(ValueError):
        k.pack_crypto_secret(True, 0, 51, bytes(49))

    info = k.pack_stream_info(-1, k.MSG_QUIC_STREAM_NEW | k.MSG_QUIC_STREAM_UNI)
    assert len(info) == 16 and info[:8] == b"\xff" * 8
    assert struct.unpack_from("=I", info, 8)[0] == 0xC00
    assert k.unpack_stream_info(k.pack_stream_info(4, 0x200)) == (4, 0x200)

    close = k.pack_connection_close(0x100, 0, "bye")
    assert len(close) == 72 and struct.unpack_from("=I", close, 0)[0] == 0x100
    assert close[8:11] == b"bye" and close[11:] == bytes(61)
    assert k.unpack_connection_close(close) == (0x100, 0, "bye")
    assert k.pack_connection_close(1, 0, "x" * 100)[71] == 0  # phrase NUL-terminated

    assert k.pack_errinfo(8, 0x10C) == struct.pack("=qI", 8, 0x10C) + bytes(4)
    assert k.pack_event_option(5, True) == b"\x05\x01"
    update = k._STREAM_UPDATE.pack(4, 10, 0x102, 99)
    assert len(update) == 24 and k.unpack_stream_update(update) == (4, 10, 0x102, 99)
    # quic_transport_param: max_idle_timeout u32 @12, max_data u64 @24, last u64 @48
    tp = k._TRANSPORT_PARAM.pack(*range(8), 9, 10, 30_000_000, 25_000, 100, 100, 1, 2, 3, 4)
    assert struct.unpack_from("=I", tp, 12)[0] == 30_000_000
    assert struct.unpack_from("=Q", tp, 24)[0] == 1
    assert struct.unpack_from("=Q", tp, 48)[0] == 4
    # quic_config: payload_cipher_type u32 @12, congestion_control_algo u8 @16, keepalive @24
    cfg = k._CONFIG.pack(1, 2, 333000, 52, 1, 0, 0, 0, 0, 7)
    assert struct.unpack_from("=I", cfg, 12)[0] == 52 and cfg[16] == 1
    assert struct.unpack_from("=I", cfg, 24)[0] == 7


@pytest.mark.parametrize("suite", list(k.CIPHER_TO_TLS), ids=lambda s: s.name)
def test_each_cipher_suite_reaches_the_kernel_as_its_tls_cipher_type(
    suite: tls.CipherSuite, ca: trustme.CA, ca_file: str
) -> None:
    """The scripted socket checks the type and secret of each level against the TLS peer's
    (with its own copy of the uapi's numbers), so a wrong row in CIPHER_TO_TLS or
    EPOCH_TO_LEVEL fails here."""
    _, sock = connected(ca, ca_file, cipher_suite=suite)
    assert sock.server.key_schedule is not None
    assert sock.server.key_schedule.cipher_suite is suite
    assert sock.secrets_matched == {(True, 2), (False, 2), (True, 0), (False, 0)}


def test_runtime_uapi_size_check(ca: trustme.CA) -> None:
    assert k.check_config_size(ScriptedQuicSocket(ca)) is None
    reason = k.check_config_size(ScriptedQuicSocket(ca, config_size=32))
    assert reason is not None and "32-byte struct quic_config" in reason
    assert "03a9c7cdb2d5" in reason


# -- the handshake driver ----------------------------------------------------------------------


def test_handshake_follows_the_kernel_rules(ca: trustme.CA, ca_file: str) -> None:
    backend, sock = connected(ca, ca_file)
    assert sock.state == "established"
    assert sock.server.state == tls.State.SERVER_POST_HANDSHAKE  # the real TLS peer finished
    # every secret handed to the "kernel" equals the TLS peer's for that level and direction
    assert sock.secrets_matched == {(True, 2), (False, 2), (True, 0), (False, 0)}
    assert sock.peer_tp_ext == PEER_TP_EXT
    hs = backend._handshake
    assert (
        tls.ExtensionType.QUIC_TRANSPORT_PARAMETERS,
        LOCAL_TP_EXT,
    ) in hs.ctx.handshake_extensions
    # order: connect, our TP ext, ClientHello @INITIAL, HANDSHAKE keys, peer TP ext, APP keys,
    # client Finished @HANDSHAKE
    ops = [e for e in sock.log if e[0] in ("connect", "getsockopt", "setsockopt", "handshake")]
    assert ops[0][0] == "connect"
    assert ops[1] == ("getsockopt", k.QUIC_SOCKOPT_TRANSPORT_PARAM_EXT)
    assert ops[2][:2] == ("handshake", k.QUIC_CRYPTO_INITIAL)
    tp_at = ops.index(("setsockopt", k.QUIC_SOCKOPT_TRANSPORT_PARAM_EXT))
    secret_ops = [i for i, e in enumerate(ops) if e == ("setsockopt", k.QUIC_SOCKOPT_CRYPTO_SECRET)]
    assert len(secret_ops) == 4
    assert hs.installed[:2] in ([(2, True), (2, False)], [(2, False), (2, True)])
    assert sorted(hs.installed[2:]) == [(0, False), (0, True)]
    assert secret_ops[1] < tp_at < secret_ops[2]  # peer TP ext before the 1-RTT secrets
    sends = [i for i, e in enumerate(ops) if e[0] == "handshake"]
    assert len(sends) == 2  # ClientHello, client Finished
    assert ops[sends[-1]][1] == k.QUIC_CRYPTO_HANDSHAKE and sends[-1] > secret_ops[-1]
    assert hs.ctx.alpn_negotiated == "h3"


def test_untrusted_certificate_fails_the_handshake(ca: trustme.CA, tmp_path: object) -> None:
    other = trustme.CA()
    path = f"{tmp_path}/other.pem"
    other.cert_pem.write_to_path(path)
    client, sock = _h3_start(ca, path)
    assert isinstance(client.error, H3TLSError)
    assert "alert 42" in str(client.error)
    assert sock.state == "establishing"  # no 1-RTT keys were handed over


def test_wrong_hostname_fails_the_handshake(ca: trustme.CA, ca_file: str) -> None:
    client, _ = _h3_start(ca, ca_file, "other.example")
    assert isinstance(client.error, H3TLSError)
    assert "localhost" in str(client.error)


# -- the stream shim ---------------------------------------------------------------------------


def test_empty_non_fin_writes_are_dropped(ca: trustme.CA, ca_file: str) -> None:
    """The kernel refuses them (EMSGSIZE, test_scripted_kernel_quic.py): the shim skips them."""
    backend, sock = connected(ca, ca_file)
    backend.send_stream_data(2, b"")
    backend.transmit(0.0)
    assert sock.stream_writes == []
    assert backend.get_next_available_stream_id(True) == 6  # the ID is still used up
    backend.send_stream_data(0, b"", end_stream=True)  # an empty FIN is a real write
    backend.transmit(0.0)
    sid, data, flags = sock.stream_writes[-1]
    assert (sid, data) == (0, b"")
    assert flags & k.MSG_QUIC_STREAM_FIN and flags & k.MSG_QUIC_STREAM_NEW


def test_http3_request_over_the_scripted_kernel(ca: trustme.CA, ca_file: str) -> None:
    client, sock = _h3_client(ca, ca_file)
    assert client.alpn == "h3"
    state = client.send_request(b"GET", b"https", b"localhost", b"/", [(b"user-agent", b"t")], b"")
    for _ in range(10):
        client.step(0.0, True)
    assert state.status == 200 and state.ended
    assert b"".join(state.chunks) == b"hello from the scripted kernel"
    headers = dict(sock.requests[0])
    assert headers[b":authority"] == b"localhost" and headers[b":method"] == b"GET"
    # control stream (2) and QPACK streams (6, 10) opened as UNI, the request on 0 as bidi
    opened = {sid: flags for sid, _, flags in sock.stream_writes if flags & k.MSG_QUIC_STREAM_NEW}
    assert set(opened) >= {0, 2, 6, 10}
    assert all(bool(f & k.MSG_QUIC_STREAM_UNI) == bool(s & 2) for s, f in opened.items())
    assert all(data or flags & k.MSG_QUIC_STREAM_FIN for _, data, flags in sock.stream_writes)

    # a reset request stream is reported (kernel STREAM_UPDATE event -> StreamReset)
    reset = client.send_request(b"GET", b"https", b"localhost", b"/reset", [], b"")
    for _ in range(10):
        client.step(0.0, True)
    assert isinstance(reset.error, H3StreamError) and "0x102" in str(reset.error)

    # clean close: CONNECTION_CLOSE with H3_NO_ERROR before close()
    client.close(0.0)
    assert sock.close_info is not None
    assert k.unpack_connection_close(sock.close_info)[0] == H3_NO_ERROR == 0x100
    assert sock.log[-1] == ("close", None)
    assert {k.QUIC_EVENT_STREAM_UPDATE, k.QUIC_EVENT_CONNECTION_CLOSE} <= sock.events_on


def test_connection_close_event_terminates(ca: trustme.CA, ca_file: str) -> None:
    backend, sock = connected(ca, ca_file)
    sock.deliver_close(0x10C, "going away")
    sock.deliver_reset(4, 0x10C)
    events = []
    backend.receive(0.0)
    while (event := backend.next_event()) is not None:
        events.append(event)
    assert events[0] == ConnectionTerminated(
        error_code=0x10C, frame_type=0, reason_phrase="going away"
    )
    assert events[1] == StreamReset(error_code=0x10C, stream_id=4)


def test_end_of_connection_is_reported_once(ca: trustme.CA, ca_file: str) -> None:
    backend, sock = connected(ca, ca_file)
    sock._recv.append((b"", [], 0))  # recvmsg() == 0: the kernel has nothing more
    for _ in range(3):
        backend.receive(0.0)
    events = []
    while (event := backend.next_event()) is not None:
        events.append(event)
    assert [type(e) for e in events] == [ConnectionTerminated]


@pytest.mark.parametrize(
    ("stream_window", "conn_window"),
    [(64 * 1024, 16 * 1024 * 1024), (1024 * 1024, 256 * 1024)],
    ids=["stream-limited", "connection-limited"],
)
def test_upload_beyond_the_flow_control_window(
    ca: trustme.CA, ca_file: str, stream_window: int, conn_window: int
) -> None:
    """lxin/quic answers a stream write without credit with ENOSPC (stream cmsg given):
    the backend keeps the rest queued and sends it when credit returns."""
    import hashlib
    import os

    client, sock = _h3_client(ca, ca_file, stream_window=stream_window, conn_window=conn_window)
    body = os.urandom(2 * 1024 * 1024)  # several times either window
    state = client.send_request(b"POST", b"https", b"localhost", b"/", [], body)
    for _ in range(500):  # bounded: one window's worth of progress per cycle at least
        client.step(0.0, True)
        if state.ended or state.error is not None:
            break
    assert state.error is None, state.error
    assert state.status == 200 and state.ended
    assert sock.enospc > 0  # the limit was hit, and waited out
    (sid,) = [s for s, data in sock.bodies.items() if data]
    assert hashlib.sha256(sock.bodies[sid]).digest() == hashlib.sha256(body).digest()


def test_doctor_reports_the_uapi_check(ca: trustme.CA) -> None:
    """``doctor`` runs the runtime uapi check and says what differs."""
    from http_fastpath._cli.doctor_kernel import uapi_check

    good = uapi_check(k.check_config_size(ScriptedQuicSocket(ca)))
    assert (good.status, good.name) == ("ok", "kernel QUIC uapi")
    bad = uapi_check(k.check_config_size(ScriptedQuicSocket(ca, config_size=32)))
    assert bad.status == "no"
    assert "32-byte struct quic_config, 28 expected" in bad.detail
    assert "docs/http3.md" in (bad.enable or "")


def test_a_local_failure_closes_with_h3_internal_error(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a bare 0x0 (seen on a real kernel): the peer learns the client gave up."""
    from http_fastpath.http3._h3._client import H3_INTERNAL_ERROR

    client, sock = _h3_client(ca, ca_file)

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EIO, "the device went away")

    monkeypatch.setattr(sock, "sendmsg", broken)
    state = client.send_request(b"GET", b"https", b"localhost", b"/", [], b"")
    client.step(0.0, True)
    assert state.error is not None
    client.close(0.0)
    assert sock.close_info is not None
    assert k.unpack_connection_close(sock.close_info)[0] == H3_INTERNAL_ERROR == 0x102


def test_a_peer_close_is_not_answered_with_another_close(ca: trustme.CA, ca_file: str) -> None:
    client, sock = _h3_client(ca, ca_file)
    sock.deliver_close(0x10C, "going away")
    client.step(0.0, True)
    assert client.error is not None
    client.close(0.0)
    assert sock.close_info is None
