"""EXPERIMENTAL HTTP/3: backend selection, the QUIC/TLS settings, the trust key and the errors.

No I/O but the kernel-QUIC probe (:func:`select_backend`) and the backend's socket
(:func:`open_backend`): what the sync and async drivers (:mod:`._drivers`) share before
they wait on anything.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import os
import ssl
from typing import TYPE_CHECKING, Literal

from ._h3 import require_aioquic

require_aioquic()

from aioquic.quic.configuration import QuicConfiguration  # noqa: E402

from .._core.addresses import Address  # noqa: E402
from .._core.capabilities import probe  # noqa: E402
from .._core.exceptions import CapabilityError, OptionError  # noqa: E402
from .._core.log import log_fallback_once  # noqa: E402
from ._h3._errors import H3ConnectError, H3ConnectTimeout, H3ReadTimeout  # noqa: E402
from ._h3._resumption import TicketKey, TicketStore  # noqa: E402

if TYPE_CHECKING:
    from aioquic.tls import SessionTicket

    from ._h3._client import H3Client, StreamState
    from ._h3._stream_layer import QuicBackend

__all__ = [
    "BACKENDS",
    "BackendName",
    "PoolKey",
    "Resumption",
    "VerifyType",
    "connect_error",
    "connect_timeout_error",
    "open_backend",
    "quic_configuration",
    "read_timeout_error",
    "select_backend",
    "trust_key",
    "verify_key",
]

BackendName = Literal["auto", "userspace", "kernel"]
VerifyType = bool | str | os.PathLike[str] | ssl.SSLContext
BACKENDS = ("auto", "userspace", "kernel")


def select_backend(backend: str) -> str:
    """Resolve ``backend`` to ``"kernel"`` or ``"userspace"`` (raises CapabilityError)."""
    if backend not in BACKENDS:
        raise OptionError("backend", backend, "'auto', 'userspace' or 'kernel'")
    if backend == "userspace":
        return backend
    feature = probe().kernel_quic
    if backend == "kernel":
        if not feature.available:
            raise CapabilityError(
                f"backend='kernel' needs Linux kernel QUIC (IPPROTO_QUIC, the out-of-tree "
                f"'quic' kernel module): {feature.detail}. To enable: {feature.enable}. "
                "`http-fastpath doctor` shows what this kernel offers."
            )
        from ._quic_kernel import uapi_mismatch

        mismatch = uapi_mismatch()
        if mismatch is not None:
            raise CapabilityError(f"backend='kernel': {mismatch}")
        return "kernel"
    if feature.available:
        from ._quic_kernel import uapi_mismatch

        mismatch = uapi_mismatch()
        if mismatch is None:
            return "kernel"
        log_fallback_once(f"http3: kernel QUIC not used: {mismatch}")
    return "userspace"


def quic_configuration(
    host: str, verify: VerifyType, *, trust_env: bool = True
) -> QuicConfiguration:
    """A client ``QuicConfiguration`` with ALPN ``h3`` and verification as requests/httpx do.

    ``verify``: True (the default CA bundle: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when
    ``trust_env``, else certifi's, as httpx does), a CA bundle file or directory path,
    an ``ssl.SSLContext`` (its loaded CA certificates and its ``verify_mode``), or False
    (no certificate or hostname check).
    """
    server_name = host[1:-1] if host.startswith("[") else host
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=server_name)
    config.verify_mode = ssl.CERT_REQUIRED
    allowed = "True, False, a CA bundle file or directory path, or an ssl.SSLContext"
    if verify is False:
        config.verify_mode = ssl.CERT_NONE
    elif verify is True:
        if trust_env:
            cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
            if cafile and os.path.isfile(cafile):
                config.cafile = cafile
            elif capath and os.path.isdir(capath):
                config.capath = capath
    elif isinstance(verify, ssl.SSLContext):
        if verify.verify_mode == ssl.CERT_NONE:
            config.verify_mode = ssl.CERT_NONE
        else:
            ders = verify.get_ca_certs(binary_form=True)
            if ders:
                pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders)
                config.cadata = pem.encode("ascii")
            else:
                paths = ssl.get_default_verify_paths()
                config.cafile, config.capath = paths.cafile, paths.capath
    elif isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        if os.path.isdir(path):
            config.capath = path
        elif os.path.isfile(path):
            config.cafile = path
        else:
            raise OptionError("verify", verify, f"{allowed} (no such file or directory)")
    else:
        raise OptionError("verify", verify, allowed)
    return config


def trust_key(config: QuicConfiguration) -> str:
    """What decided whether a server was trusted: part of a session ticket's key."""
    digest = hashlib.sha256(
        repr((int(config.verify_mode or 0), config.cafile, config.capath)).encode()
    )
    digest.update(config.cadata or b"")
    return digest.hexdigest()[:32]


#: A pool's ticket store and the key of the connection being made.
Resumption = tuple[TicketStore, TicketKey]


def open_backend(
    kind: str,
    address: Address,
    config: QuicConfiguration,
    resumption: Resumption | None = None,
    *,
    early_data: bool = True,
) -> QuicBackend:
    """Create the chosen backend's socket for ``address`` (no packet is sent yet).

    ``resumption``: the userspace backend resumes with a ticket taken from the store
    and gives the server's new tickets to it; with ``early_data=False`` the ClientHello
    does not offer 0-RTT at all. Not wired for the kernel backend.
    """
    if kind == "kernel":
        from ._quic_kernel import KernelQuic

        return KernelQuic(address, config)
    from ._quic_userspace import UserspaceQuic

    handler = None
    if resumption is not None:
        store, key = resumption
        ticket = store.take(key)
        if ticket is not None and not early_data:
            ticket = dataclasses.replace(ticket, max_early_data_size=None)
        config.session_ticket = ticket
        handler = functools.partial(_keep_ticket, store, key)
    return UserspaceQuic(address, config, session_ticket_handler=handler)


def _keep_ticket(store: TicketStore, key: TicketKey, ticket: SessionTicket) -> None:
    store.put(key, ticket)


def connect_error(host: str, port: int, exc: OSError) -> H3ConnectError:
    err = H3ConnectError(exc.errno or errno.EHOSTUNREACH, f"{exc.strerror or exc}: {host}:{port}")
    err.__cause__ = exc
    return err


def connect_timeout_error(c: H3Client) -> Exception:
    return H3ConnectTimeout(
        errno.ETIMEDOUT, f"QUIC handshake with {c.host}:{c.port} timed out ({c.backend.name})"
    )


def read_timeout_error(c: H3Client, state: StreamState) -> Exception:
    return H3ReadTimeout(f"HTTP/3 read from {c.host}:{c.port} timed out (stream {state.stream_id})")


#: (origin host, origin port, trust settings, the alternative (host, port) or None)
PoolKey = tuple[str, int, str, tuple[str, int] | None]


def verify_key(verify: VerifyType) -> str:
    """The trust settings' part of a :data:`PoolKey`."""
    if isinstance(verify, ssl.SSLContext):
        return f"ctx:{id(verify)}"
    if isinstance(verify, bool):
        return str(verify)
    return f"path:{os.fspath(verify)}"
