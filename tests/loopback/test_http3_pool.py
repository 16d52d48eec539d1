"""EXPERIMENTAL HTTP/3: closing a pool, the same on both sides (sync and async).

The pools are one source (``http3/_async_drivers.py``; the sync one is generated), and this
is the behaviour their hand-kept twins had drifted apart on: the sync pool closed under its
lock and let errors out, the async one took no lock and swallowed them. Now both close under
the pool's lock (a ``get`` under way finishes first and its connection is closed too), close
every connection even when one fails, and then raise the first error. Each test runs sync,
on asyncio and on trio, against a real aioquic server on loopback; the server's view (the
CONNECTION_CLOSE codes it received) says which connections were closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest
import trustme

from http_fastpath.http3._drivers import (
    AsyncH3Connection,
    AsyncH3Pool,
    SyncH3Connection,
    SyncH3Pool,
    quic_configuration,
)

from .._h3server import H3TestServer

H3_NO_ERROR = 0x100
ASYNC = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1") as server:
        yield server


class _Boom(Exception):
    pass


def _closed_by_the_client(srv: H3TestServer, n: int) -> bool:
    return srv.wait_for(lambda: srv.close_codes.count(H3_NO_ERROR) == n)


# -- under the pool's lock: a get under way finishes, and its connection is closed too ------


def test_sync_close_waits_for_a_get_under_way(h3: H3TestServer, ca_file: str) -> None:
    pool = SyncH3Pool("userspace", trust_env=False)
    first = pool.get("127.0.0.1", h3.port, ca_file, 5.0)
    closer = threading.Thread(target=pool.close, daemon=True)
    with pool._lock:  # a get under way holds it while it connects
        closer.start()
        closer.join(0.3)
        assert closer.is_alive() and first.client.alive  # close waits for the lock
        late = SyncH3Connection.connect(
            "127.0.0.1",
            h3.port,
            backend="userspace",
            config=quic_configuration("127.0.0.1", ca_file),
            timeout=5.0,
        )
        pool._conns[("late", 0, "", None)] = late
    closer.join(5.0)
    assert not closer.is_alive()
    assert not first.client.alive and not late.client.alive and not pool._conns
    assert _closed_by_the_client(h3, 2)


@ASYNC
def test_async_close_waits_for_a_get_under_way(
    h3: H3TestServer, ca_file: str, anyio_backend: str
) -> None:
    async def main() -> None:
        pool = AsyncH3Pool("userspace", trust_env=False)
        first = await pool.get("127.0.0.1", h3.port, ca_file, 5.0)
        closed = anyio.Event()

        async def close() -> None:
            await pool.aclose()
            closed.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async with pool._lock:  # a get under way holds it while it connects
                    tg.start_soon(close)
                    await anyio.sleep(0.3)
                    assert not closed.is_set() and first.client.alive
                    late = await AsyncH3Connection.connect(
                        "127.0.0.1",
                        h3.port,
                        backend="userspace",
                        config=quic_configuration("127.0.0.1", ca_file),
                        timeout=5.0,
                    )
                    pool._conns[("late", 0, "", None)] = late
        assert closed.is_set()
        assert not first.client.alive and not late.client.alive and not pool._conns

    anyio.run(main, backend=anyio_backend)
    assert _closed_by_the_client(h3, 2)


# -- one connection failing to close does not leave the others open; the error goes out -----


def _break_close(
    monkeypatch: pytest.MonkeyPatch, conn: SyncH3Connection | AsyncH3Connection
) -> None:
    """``conn`` closes (the server sees it) and then raises, as a bug in close would."""
    real = conn.client.close

    def close(now: float) -> None:
        real(now)
        raise _Boom("close failed")

    monkeypatch.setattr(conn.client, "close", close)


def test_sync_close_closes_every_connection_then_raises(
    h3: H3TestServer, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = SyncH3Pool("userspace", trust_env=False)
    conns = [pool.get("127.0.0.1", h3.port, verify, 5.0) for verify in (ca_file, False)]
    _break_close(monkeypatch, conns[0])
    with pytest.raises(_Boom):
        pool.close()
    assert not any(conn.client.alive for conn in conns) and not pool._conns
    assert _closed_by_the_client(h3, 2)
    pool.close()  # nothing left: no error twice


@ASYNC
def test_async_close_closes_every_connection_then_raises(
    h3: H3TestServer, ca_file: str, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    async def main() -> None:
        pool = AsyncH3Pool("userspace", trust_env=False)
        conns = [await pool.get("127.0.0.1", h3.port, v, 5.0) for v in (ca_file, False)]
        _break_close(monkeypatch, conns[0])
        with pytest.raises(_Boom):
            await pool.aclose()
        assert not any(conn.client.alive for conn in conns) and not pool._conns
        await pool.aclose()

    anyio.run(main, backend=anyio_backend)
    assert _closed_by_the_client(h3, 2)


# -- async only: a cancelled task still closes --------------------------------------------


@ASYNC
def test_async_close_in_a_cancelled_scope_still_closes(
    h3: H3TestServer, ca_file: str, anyio_backend: str
) -> None:
    async def main() -> None:
        pool = AsyncH3Pool("userspace", trust_env=False)
        conn = await pool.get("127.0.0.1", h3.port, ca_file, 5.0)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await pool.aclose()
        assert not conn.client.alive and not pool._conns

    anyio.run(main, backend=anyio_backend)
    assert _closed_by_the_client(h3, 1)
