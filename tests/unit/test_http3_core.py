"""HTTP/3 core pieces without a network: the QuicStreamLayer interface, header mapping,
TLS settings mapping and the aioquic pin check."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import ssl
import types

import pytest
import trustme
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.events import StreamDataReceived

from http_fastpath import OptionError
from http_fastpath._core.capabilities import Feature
from http_fastpath.http3 import _config, _quic_kernel
from http_fastpath.http3._drivers import quic_configuration
from http_fastpath.http3._h3 import AIOQUIC_VERSION, require_aioquic
from http_fastpath.http3._h3._client import request_headers
from http_fastpath.http3._h3._stream_layer import QuicStreamLayer


class _Layer:
    """Implements exactly QuicStreamLayer (slots: nothing else can be read or set)."""

    __slots__ = ("_is_client", "_next", "peer", "sent")

    class _Config:
        def __init__(self, is_client: bool) -> None:
            self.is_client = is_client

    def __init__(self, is_client: bool) -> None:
        self._is_client = is_client
        self._next = {False: 0 if is_client else 1, True: 2 if is_client else 3}
        self.sent: list[tuple[int, bytes, bool]] = []
        self.peer: H3Connection | None = None

    @property
    def configuration(self) -> _Layer._Config:
        return _Layer._Config(self._is_client)

    @property
    def _quic_logger(self) -> None:
        return None

    @property
    def _remote_max_datagram_frame_size(self) -> int | None:
        return None

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int:
        return self._next[is_unidirectional]

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        uni = bool(stream_id & 2)
        self._next[uni] = max(self._next[uni], stream_id + 4)
        self.sent.append((stream_id, data, end_stream))

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        raise AssertionError("unexpected reset")

    def close(
        self, error_code: int = 0, frame_type: int | None = None, reason_phrase: str = ""
    ) -> None:
        raise AssertionError(f"unexpected close {error_code:#x} {reason_phrase}")

    def send_datagram_frame(self, data: bytes) -> None:
        raise AssertionError("unexpected datagram")


def _pump(src: _Layer, dst: H3Connection) -> list[object]:
    events: list[object] = []
    sent, src.sent = src.sent, []
    for sid, data, fin in sent:
        events += dst.handle_event(StreamDataReceived(data=data, end_stream=fin, stream_id=sid))
    return events


def test_the_stream_layer_protocol_is_all_h3connection_needs() -> None:
    """Two H3Connections talk through layers that implement only QuicStreamLayer."""
    client_layer, server_layer = _Layer(True), _Layer(False)
    client = H3Connection(client_layer)  # type: ignore[arg-type]
    server = H3Connection(server_layer)  # type: ignore[arg-type]
    sid = client_layer.get_next_available_stream_id()
    client.send_headers(sid, request_headers(b"POST", b"https", b"h", b"/x", [(b"X-A", b"1")]))
    client.send_data(sid, b"body", end_stream=True)
    got = _pump(client_layer, server)
    headers = [e for e in got if isinstance(e, HeadersReceived)]
    assert headers and dict(headers[0].headers)[b"x-a"] == b"1"
    assert b"".join(e.data for e in got if isinstance(e, DataReceived)) == b"body"
    server.send_headers(sid, [(b":status", b"201")])
    server.send_data(sid, b"done", end_stream=True)
    back = _pump(server_layer, client)
    assert any(isinstance(e, HeadersReceived) and (b":status", b"201") in e.headers for e in back)
    assert any(isinstance(e, DataReceived) and e.stream_ended for e in back)


def test_protocols_name_exactly_what_h3connection_calls() -> None:
    """Every attribute aioquic's H3Connection reads off its QUIC object is in the Protocol."""
    source = inspect.getsource(H3Connection)
    declared = {n for n in dir(QuicStreamLayer) if not n.startswith("__")} - {"_is_protocol"}
    calls = set(re.findall(r"self\._quic\.(\w+)", source)) | set(
        re.findall(r"(?<![\w.])quic\.(\w+)", source)
    )
    assert calls <= declared, calls - declared


def test_request_headers() -> None:
    out = request_headers(
        b"GET",
        b"https",
        b"example.com:8443",
        b"/a?b=1",
        [
            (b"Host", b"example.com:8443"),
            (b"Connection", b"keep-alive"),
            (b"Keep-Alive", b"300"),
            (b"Transfer-Encoding", b"chunked"),
            (b"TE", b"gzip"),
            (b"Accept", b"*/*"),
            (b"te", b"trailers"),
        ],
    )
    assert out == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.com:8443"),
        (b":path", b"/a?b=1"),
        (b"accept", b"*/*"),
        (b"te", b"trailers"),
    ]


def test_quic_configuration_verify_mapping(
    ca: trustme.CA, ca_file: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    cfg = quic_configuration("example.com", True)
    assert cfg.verify_mode == ssl.CERT_REQUIRED and cfg.server_name == "example.com"
    assert cfg.alpn_protocols == ["h3"] and (cfg.cafile, cfg.capath, cfg.cadata) == (
        None,
        None,
        None,
    )
    assert quic_configuration("[::1]", True).server_name == "::1"
    assert quic_configuration("h", False).verify_mode == ssl.CERT_NONE
    assert quic_configuration("h", ca_file).cafile == ca_file
    assert quic_configuration("h", str(tmp_path)).capath == str(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    assert quic_configuration("h", True).cafile == ca_file
    assert quic_configuration("h", True, trust_env=False).cafile is None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(ctx)
    cadata = quic_configuration("h", ctx).cadata
    assert cadata is not None and cadata.decode().strip() == ca.cert_pem.bytes().decode().strip()
    off = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    off.check_hostname = False
    off.verify_mode = ssl.CERT_NONE
    assert quic_configuration("h", off).verify_mode == ssl.CERT_NONE
    with pytest.raises(OptionError, match="no such file"):
        quic_configuration("h", "/does/not/exist")
    with pytest.raises(OptionError, match="verify"):
        quic_configuration("h", 3)  # type: ignore[arg-type]


def test_require_aioquic_names_the_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    require_aioquic()  # the installed one is the pinned one
    assert importlib.metadata.version("aioquic") == AIOQUIC_VERSION
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.9.0")
    with pytest.raises(ImportError, match=r"aioquic==1\.7\.2 exactly \(found 0\.9\.0\)"):
        require_aioquic()

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(ImportError, match=r"http_fastpath\[http3\]"):
        require_aioquic()


def test_missing_aioquic_is_a_clear_import_error(tmp_path: object) -> None:
    """With aioquic absent, importing an HTTP/3 name says what to install."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import importlib.metadata, sys
        real = importlib.metadata.version
        def version(name):
            if name == "aioquic":
                raise importlib.metadata.PackageNotFoundError(name)
            return real(name)
        importlib.metadata.version = version
        sys.modules["aioquic"] = None  # import aioquic -> ImportError
        try:
            from http_fastpath import HTTP3Transport
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ImportError: HTTP/3 needs aioquic: pip install 'http_fastpath[http3]'" in out.stdout, (
        out.stdout + out.stderr
    )


@pytest.mark.parametrize(
    ("kernel_quic", "uapi_mismatch", "expected"),
    [
        (True, None, "kernel"),
        (True, "struct quic_config is 32 bytes here", "userspace"),
        (False, None, "userspace"),
    ],
)
def test_auto_backend_follows_the_probe(
    kernel_quic: bool, uapi_mismatch: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``backend="auto"`` with a faked probe, both ways (the loopback test sees only this
    machine's answer)."""
    caps = types.SimpleNamespace(kernel_quic=Feature("kernel_quic", kernel_quic, "faked"))
    monkeypatch.setattr(_config, "probe", lambda: caps)
    monkeypatch.setattr(_quic_kernel, "uapi_mismatch", lambda: uapi_mismatch)
    assert _config.select_backend("auto") == expected
    assert _config.select_backend("userspace") == "userspace"
