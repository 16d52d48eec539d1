"""The test double's own rules (``tests/_scripted_kernel_quic.py``), not product code.

test_http3_kernel_logic.py trusts the scripted socket to refuse what a kernel QUIC socket
refuses; these tests show that it does. If one fails, the double stopped enforcing a rule
and the kernel backend's tests prove less than they say.
"""

from __future__ import annotations

import errno

import pytest
import trustme
from aioquic import tls

from http_fastpath.http3 import _quic_kernel as k
from http_fastpath.http3._drivers import quic_configuration

from .._scripted_kernel_quic import ADDR, ScriptedQuicSocket, connected, drain


def test_secrets_before_the_peers_transport_parameters_are_refused(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrong order (1-RTT secrets, then the peer's transport parameters) fails."""

    def wrong_order(self: k.KernelHandshake, data: bytes) -> None:
        from aioquic._buffer import Buffer

        bufs = {
            e: Buffer(capacity=16384)
            for e in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ONE_RTT)
        }
        self.ctx.handle_message(data, bufs)
        self._peer_params_applied = True  # skip the driver's own guard
        self._apply_secrets()
        self._peer_params_applied = False
        self._apply_peer_params()
        self._send_output(bufs)

    monkeypatch.setattr(k.KernelHandshake, "_run", wrong_order)
    sock = ScriptedQuicSocket(ca, "localhost")
    backend = k.KernelQuic(ADDR, quic_configuration("localhost", ca_file), sock=sock)
    backend.start(0.0)
    with pytest.raises(OSError) as info:
        drain(backend)
    assert info.value.errno == errno.EINVAL
    assert "TRANSPORT_PARAM_EXT set while established" in str(info.value)


def test_stream_data_before_the_handshake_and_initial_secrets_are_refused(
    ca: trustme.CA,
) -> None:
    sock = ScriptedQuicSocket(ca)
    sock.connect(("127.0.0.1", 1))
    with pytest.raises(OSError) as info:
        sock.sendmsg(
            [b"x"], [(k.SOL_QUIC, k.QUIC_STREAM_INFO, k.pack_stream_info(0, k.MSG_QUIC_STREAM_NEW))]
        )
    assert info.value.errno == errno.ENOTCONN
    with pytest.raises(OSError):  # and Initial secrets are the kernel's business
        sock.setsockopt(
            k.SOL_QUIC, k.QUIC_SOCKOPT_CRYPTO_SECRET, k.pack_crypto_secret(True, 1, 51, bytes(32))
        )


def test_an_empty_write_without_fin_is_refused(ca: trustme.CA, ca_file: str) -> None:
    _, sock = connected(ca, ca_file)
    with pytest.raises(OSError) as info:
        flags = k.MSG_QUIC_STREAM_NEW | k.MSG_QUIC_STREAM_UNI
        sock.sendmsg([b""], [(k.SOL_QUIC, k.QUIC_STREAM_INFO, k.pack_stream_info(2, flags))])
    assert info.value.errno == errno.EMSGSIZE


def test_a_secret_at_the_wrong_level_or_cipher_type_is_refused(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The double checks the backend's level and cipher tables against the uapi's numbers
    (its own copy), so test_http3_kernel_logic's handshakes catch a wrong table."""
    wrong_level = {**k.EPOCH_TO_LEVEL, tls.Epoch.HANDSHAKE: k.QUIC_CRYPTO_EARLY}
    monkeypatch.setattr(k, "EPOCH_TO_LEVEL", wrong_level)
    with pytest.raises((OSError, AssertionError)):
        connected(ca, ca_file)
    monkeypatch.undo()
    suites = list(k.CIPHER_TO_TLS)
    wrong_cipher = {s: k.CIPHER_TO_TLS[suites[(i + 1) % 3]] for i, s in enumerate(suites)}
    monkeypatch.setattr(k, "CIPHER_TO_TLS", wrong_cipher)
    with pytest.raises((OSError, AssertionError)):
        connected(ca, ca_file)
