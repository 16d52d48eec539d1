"""Reliability matrix, bad input and security rows.

- Options fuzzed with hypothesis through every public constructor: either accepted (exactly
  the documented values) or ``OptionError`` (a ``ValueError``) naming the parameter;
  ``HTTP_FASTPATH*`` parsing never raises and names the variable in every problem.
- TLS: expired, untrusted (another CA) and wrong-host certificates are rejected by every
  client exactly as stock (same exception class, same verification reason); ``verify=False``
  warns exactly as stock (requests: ``InsecureRequestWarning``; httpx: nothing).
- Proxies: ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` route every entry point
  (adapter in a Session, ``fastpath_client()``, ``async_fastpath_client()``) through the
  recording ``netlab.Proxy`` exactly like the stock clients.
- Replay safety: over cleartext, POST and PATCH never ride in a SYN (server-observed) unless
  ``tfo_policy="always"``; the env opt-in is covered in test_env_optin.py.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import requests
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from http_fastpath import (
    FastpathAdapter,
    FastpathOptions,
    FastpathPoolManager,
    OptionError,
    TFOStatus,
)
from http_fastpath._integrations.env import parse_environ
from http_fastpath.netlab import Proxy, Server, next_loopback

from .._clients import KINDS, ok, run
from .._servers import https
from .._stack import (
    AsyncFastpathTransport,
    FastpathTransport,
    async_fastpath_client,
    fastpath_client,
    httpx,
)

# -- options fuzzing -----------------------------------------------------------------------------

_MISSING = object()
ANY_VALUE = st.one_of(
    st.just(_MISSING),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["safe", "always", "SAFE", " safe", "Always", "never", "0", "1"]),
)


def _close(obj: Any) -> None:
    if isinstance(obj, FastpathTransport):
        obj.close()
    elif isinstance(obj, AsyncFastpathTransport):
        asyncio.run(obj.aclose())
    elif isinstance(obj, FastpathAdapter):
        obj.close()
    elif isinstance(obj, FastpathPoolManager):
        obj.clear()


CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "FastpathOptions": FastpathOptions,
    "FastpathAdapter": FastpathAdapter,
    "FastpathPoolManager": FastpathPoolManager,
    "FastpathTransport": FastpathTransport,
    "AsyncFastpathTransport": AsyncFastpathTransport,
}


def _problem(name: str, kwargs: dict[str, Any]) -> str | None:
    """The parameter a constructor must reject first, or None when all are valid."""
    none_ok = name != "FastpathOptions"  # the adapters take None as "the default"
    for key in ("tfo", "mptcp"):
        if key in kwargs and not (
            isinstance(kwargs[key], bool) or (none_ok and kwargs[key] is None)
        ):
            return key
    policy = kwargs.get("tfo_policy", "safe")
    if not (policy in ("safe", "always") or (none_ok and policy is None)):
        return "tfo_policy"
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(CONSTRUCTORS)),
    tfo=ANY_VALUE,
    mptcp=ANY_VALUE,
    tfo_policy=ANY_VALUE,
)
def test_fuzzed_options_give_only_the_documented_errors(
    name: str, tfo: Any, mptcp: Any, tfo_policy: Any
) -> None:
    kwargs = {
        k: v
        for k, v in (("tfo", tfo), ("mptcp", mptcp), ("tfo_policy", tfo_policy))
        if v is not _MISSING
    }
    expected = _problem(name, kwargs)
    try:
        obj = CONSTRUCTORS[name](**kwargs)
    except OptionError as exc:
        assert isinstance(exc, ValueError)
        assert expected is not None, f"{name}({kwargs}) rejected: {exc}"
        assert expected in str(exc), str(exc)  # the message names the parameter
        return
    assert expected is None, f"{name}({kwargs}) accepted an invalid {expected}"
    _close(obj)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from([n for n in sorted(CONSTRUCTORS) if n != "FastpathOptions"]),
    options=st.one_of(st.integers(), st.text(max_size=5), st.dictionaries(st.text(), st.none())),
    tfo=st.one_of(st.just(_MISSING), st.booleans()),
)
def test_fuzzed_options_object_is_checked(name: str, options: Any, tfo: Any) -> None:
    kwargs: dict[str, Any] = {"options": options}
    if tfo is not _MISSING:
        kwargs["tfo"] = tfo
    with pytest.raises(OptionError, match="options"):
        CONSTRUCTORS[name](**kwargs)


# The fixed cases (each mistake, each constructor, the same message) live in
# tests/unit/test_options.py; these two fuzz the same surface.


ENV_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(st.none(), ENV_TEXT, st.sampled_from(["tfo", "mptcp", "tfo,mptcp", "1"])),
    policy=st.one_of(st.none(), ENV_TEXT, st.sampled_from(["safe", "always", "ALWAYS"])),
    log=st.one_of(st.none(), ENV_TEXT, st.sampled_from(["debug", "info", "warning"])),
)
def test_fuzzed_env_values_never_raise(value: Any, policy: Any, log: Any) -> None:
    environ = {
        k: v
        for k, v in (
            ("HTTP_FASTPATH", value),
            ("HTTP_FASTPATH_TFO_POLICY", policy),
            ("HTTP_FASTPATH_LOG", log),
        )
        if v is not None
    }
    config = parse_environ(environ)
    for problem in config.problems:
        assert problem.startswith("HTTP_FASTPATH") and "valid" in problem
    if config.options is not None:
        assert config.options.tfo_policy in ("safe", "always")
        if config.options.tfo_policy == "always":
            assert (policy or "").strip().lower() == "always"  # the only way to get it


# -- TLS: rejected exactly as stock ---------------------------------------------------------------


def _cert_server(ca: trustme.CA, case: str) -> Server:
    host = next_loopback()
    if case == "expired":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
        ca.issue_cert(
            host, not_before=past - datetime.timedelta(days=30), not_after=past
        ).configure_cert(ctx)
        return Server(host=host, tls=ctx)
    if case == "untrusted":
        return https(trustme.CA(), host=host)  # another, unknown CA
    return https(ca, "wrong.example", host=host)  # valid chain, wrong host


REASONS = {
    "expired": "certificate has expired",
    "untrusted": "unable to get local issuer certificate",
    "wrong-host": "mismatch",
}


@pytest.mark.netns
@pytest.mark.parametrize("case", sorted(REASONS))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_certificates_rejected_as_stock(
    kind: str, case: str, ca: trustme.CA, ca_file: str
) -> None:
    errors: dict[str, list[BaseException | None]] = {}
    with _cert_server(ca, case) as server:
        for impl in ("stock", "fast"):
            for _ in range(2):  # the second one with a TFO cookie: the ClientHello in the SYN
                (outcome,) = run(kind, impl, [("GET", server.url + "/")], verify=ca_file)
                errors.setdefault(impl, []).append(outcome.error)
        handshakes = len(server.records)
    assert handshakes == 4  # every attempt reached the server and was refused by the client
    stock, fast = errors["stock"], errors["fast"]
    assert all(e is not None for e in stock + fast)
    assert {type(e) for e in fast} == {type(e) for e in stock}
    expected = requests.exceptions.SSLError if kind == "requests" else httpx.ConnectError
    assert all(type(e) is expected for e in fast)
    for e in stock + fast:
        assert "CERTIFICATE_VERIFY_FAILED" in str(e) and REASONS[case] in str(e), str(e)


def _warnings_of(kind: str, impl: str, url: str) -> list[type[Warning]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok(run(kind, impl, [("GET", url)], verify=False))
    return sorted({w.category for w in caught}, key=lambda c: c.__name__)


@pytest.mark.netns
@pytest.mark.parametrize("kind", KINDS)
def test_verify_false_warns_as_stock(kind: str, ca: trustme.CA) -> None:
    with _cert_server(ca, "untrusted") as server:
        stock = _warnings_of(kind, "stock", server.url + "/")
        fast = _warnings_of(kind, "fast", server.url + "/")
    assert fast == stock
    if kind == "requests":
        assert [c.__name__ for c in stock] == ["InsecureRequestWarning"]
    else:
        assert stock == []


# -- proxies from the environment: routed as stock -------------------------------------------------

ENTRY_POINTS = ["requests-session", "fastpath_client", "async_fastpath_client"]


def _get_via(entry: str, fast: bool, url: str, ca_file: str) -> int:
    verify: Any = ca_file
    if entry == "requests-session":
        with requests.Session() as session:
            if fast:
                session.mount("http://", FastpathAdapter())
                session.mount("https://", FastpathAdapter())
            return session.get(url, timeout=10, verify=verify).status_code
    verify = ssl.create_default_context(cafile=ca_file)
    if entry == "fastpath_client":
        make: Any = fastpath_client if fast else httpx.Client
        with make(timeout=10, verify=verify) as client:
            return int(client.get(url).status_code)

    async def main() -> int:
        make: Any = async_fastpath_client if fast else httpx.AsyncClient
        async with make(timeout=10, verify=verify) as client:
            return int((await client.get(url)).status_code)

    return asyncio.run(main())


@pytest.mark.netns
@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "env",
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NO_PROXY-tls", "NO_PROXY=*"],
)
def test_env_proxies_route_as_stock(
    entry: str, env: str, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, ca_file: str
) -> None:
    """The one home of "environment proxies route as stock", for every integration."""
    with Server() as plain, https(ca) as tls, Proxy() as proxy:
        if env == "NO_PROXY":
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            # a list, as users write it: only the TLS server is proxied
            monkeypatch.setenv("NO_PROXY", f"unrelated.test, {plain.host}")
        elif env == "NO_PROXY-tls":  # the TLS server directly, the plain one proxied
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            monkeypatch.setenv("NO_PROXY", f"{tls.host},unrelated.test")
        elif env == "NO_PROXY=*":
            monkeypatch.setenv("ALL_PROXY", proxy.url)
            monkeypatch.setenv("NO_PROXY", "*")
        else:
            monkeypatch.setenv(env, proxy.url)
        routes = {}
        for fast in (False, True):
            before = len(proxy.records)
            for url in (plain.url + "/", tls.url + "/"):
                assert _get_via(entry, fast, url, ca_file) == 200
            routes[fast] = sorted(req for r in proxy.records[before:] for req in r.requests)
    print(f"\n{entry} {env}: through the proxy: {routes[False]}")
    assert routes[True] == routes[False]
    expected = {
        "HTTP_PROXY": 1,
        "HTTPS_PROXY": 1,
        "ALL_PROXY": 2,
        "NO_PROXY": 1,
        "NO_PROXY-tls": 1,
        "NO_PROXY=*": 0,
    }[env]
    assert len(routes[False]) == expected


# -- replay safety ---------------------------------------------------------------------------------


@pytest.mark.netns
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", ["safe", "always"])
def test_post_and_patch_never_ride_in_the_syn_unless_always(kind: str, policy: str) -> None:
    """The one home of "a POST never rides in the SYN" for every integration (the dialer's
    own test is in test_dialer; the env opt-in's and the CLI's in theirs)."""
    options = {"tfo_policy": policy, "mptcp": False}
    with Server() as server:
        calls = [
            ("GET", "/"),
            ("POST", "/echo"),
            ("PATCH", "/echo"),
            ("GET", "/"),
            ("POST", "/echo"),
        ]
        outcomes = []
        for method, path in calls:  # each on a fresh client: a new connection, cookie cached
            (outcome,) = ok(
                run(kind, "fast", [(method, server.url + path, b"body")], options=options)
            )
            assert outcome.status == 200
            outcomes.append(outcome)
        records = server.records
    assert [r.requests for r in records] == [[m] for m, _ in calls]
    syn_data = {(i, r.requests[0]): r.syn_data for i, r in enumerate(records)}
    assert syn_data[(0, "GET")] is False  # no cookie yet
    assert syn_data[(3, "GET")] is True
    for index, method in [(1, "POST"), (2, "PATCH"), (4, "POST")]:
        assert syn_data[(index, method)] is (policy == "always"), (index, method)
        assert outcomes[index].body == b"body"  # the echo: the body arrived whole
        info = outcomes[index].info
        assert info is not None  # what connection_info reports agrees with the server
        if policy == "safe":
            assert info.tfo is TFOStatus.NOT_ATTEMPTED and info.early_data_safe is False
        else:
            assert info.tfo_used


@pytest.mark.netns
@pytest.mark.parametrize("entry", ["fastpath_client", "async_fastpath_client"])
def test_client_helpers_keep_post_out_of_the_syn(entry: str) -> None:
    with Server() as server:

        def once(method: str) -> None:
            if entry == "fastpath_client":
                with fastpath_client(mptcp=False) as client:
                    client.request(method, server.url + "/echo", content=b"x")
                return

            async def main() -> None:
                async with async_fastpath_client(mptcp=False) as client:
                    await client.request(method, server.url + "/echo", content=b"x")

            asyncio.run(main())

        for method in ("GET", "POST", "PATCH", "GET"):
            once(method)
        records = server.records
    assert [(r.requests, r.syn_data) for r in records] == [
        (["GET"], False),
        (["POST"], False),
        (["PATCH"], False),
        (["GET"], True),
    ]
