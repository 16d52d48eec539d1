"""The package's layers and its one socket factory, checked on the source (no import).

The model is trio's ``_tests/test_exports.py``: the rules of docs/architecture.md, read off
the code with :mod:`ast`, so a violating import fails here before review. Every import
counts -- at module level, inside a function, under ``if TYPE_CHECKING:`` -- because a lazy
import is still a dependency. The layers, lowest first::

    _core           the fast path: dialer, decisions, memory, options, errors, proof
    _backends       httpcore network backends                    -> _core
    _integrations   requests/urllib3, httpx/httpx2, env opt-in   -> _core, _backends,
                                                                    http3 (lazily: http3="auto")
    http3           EXPERIMENTAL HTTP/3                          -> _core
    netlab          the network lab (public)                     -> _core, the public API
    _cli            the command line                             -> the public API only

The public modules (``http_fastpath``, ``.httpx2``, ``.http3``, ``.netlab``) are the facade:
they may name anything. Integrations reach each other only through ``_core``, except inside
one integration (:data:`INTEGRATIONS`). The known exceptions are listed below, each with its
reason; an exception that no longer happens fails too, so the list only shrinks.

The socket rule is checked the same way: only the dialer (and netlab's servers) call a
socket constructor. Tests and scripts make their own listeners and are not checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import http_fastpath

PACKAGE = Path(http_fastpath.__file__).resolve().parent
ROOT = PACKAGE.parent

#: modules users import: the facade, allowed to name anything
PUBLIC = {
    "http_fastpath",
    "http_fastpath.httpx2",
    "http_fastpath.http3",
    "http_fastpath.netlab",
    "http_fastpath.__main__",
}

#: layer -> the layers it may import (its own included)
ALLOWED = {
    "_core": {"_core"},
    "_backends": {"_core", "_backends"},
    # http3: the Alt-Svc upgrade (issue #15). The requests adapter and the httpx
    # transports import http3._upgrade lazily, only when built with http3="auto", and hand
    # the requests HTTP/3 should carry to its pools; the decisions are in _core.upgrade.
    "_integrations": {"_core", "_backends", "_integrations", "http3"},
    "http3": {"_core", "http3"},
    "netlab": {"_core", "netlab", "public"},
    "_cli": {"_cli", "public"},
    "_data": {"_integrations"},  # the start-up hook of the env opt-in (.pth)
}

#: integrations reach each other only through _core, except inside one integration
INTEGRATIONS = {
    # the requests adapter is a shell over the urllib3 pool managers (urllib3), their
    # connections (urllib3_connection) and those connections' TLS (urllib3_tls)
    "requests": {"requests", "urllib3", "urllib3_connection", "urllib3_tls"},
    # httpx and httpx2 are one implementation (transports, with its mapping, its pool
    # building and its clients) with two sets of base classes
    "httpx": {
        "httpx",
        "httpx2",
        "transports",
        "transports_mapping",
        "transports_pool",
        "transports_clients",
    },
    # the process-wide opt-in: its environment parsing and its patcher
    "env": {"env", "autoinstall", "autoinstall_patchers", "hooks", "h3_optin"},
}

#: (importer, imported) -> why it is allowed for now. Imported: a module, or a private
#: name of a public module (``http_fastpath:_LAZY``).
EXCEPTIONS: dict[tuple[str, str], str] = {
    # The opt-in installs the requests integration's connection classes into urllib3
    # (the httpcore side goes through _backends, which is allowed).
    ("http_fastpath._integrations.autoinstall_patchers", "http_fastpath._integrations.urllib3"): (
        "the opt-in patches urllib3 with FastpathHTTP(S)Connection"
    ),
    # ... and gives patched httpx clients the shared TLS contexts the transports build.
    (
        "http_fastpath._integrations.autoinstall_patchers",
        "http_fastpath._integrations.transports_pool",
    ): ("the opt-in builds httpx's contexts with shared_context()"),
    # HTTP/3 borrows the helper that builds a transport class per httpx stack.
    ("http_fastpath.http3._transports", "http_fastpath._integrations.transports"): (
        "derive(): follow-up, move it to _core or give http3 its own"
    ),
    ("http_fastpath.http3._upgrade", "http_fastpath._integrations.transports"): (
        "derive(), as http3._transports: the same follow-up"
    ),
}

#: the socket constructors of the standard library
SOCKET_MAKERS = {"socket", "create_connection", "create_server", "socketpair", "fromfd"}
#: the only modules that call them: the package's socket factory (``_core.sockets``) and the
#: lab's servers and proxy. Tests and scripts make their own listeners and are not checked.
SOCKET_MAKERS_ALLOWED = {
    "http_fastpath/_core/sockets.py",
    "http_fastpath/netlab/_servers.py",
    "http_fastpath/netlab/_proxy.py",
    # the CPU benchmark's server listens in a forked process (its own GIL), which netlab's
    # threaded servers cannot do; it makes a listener, never a client socket
    "benchmarks/bench_fresh_cpu.py",
}
#: checked besides the package: code users copy
SOCKET_RULE_ALSO = ("examples", "benchmarks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    if module in PUBLIC:
        return "public"
    part = module.split(".")[1]
    assert part in ALLOWED, f"{module}: in no layer (add its folder to ALLOWED)"
    return part


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


#: private names of the public modules (``_LAZY``): reading one is importing it
FACADE_PRIVATE = {
    name
    for name, value in vars(http_fastpath).items()
    if _private(name) and not isinstance(value, ModuleType)
}


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(what ``module`` imports from the package, line): a module, or ``module:name`` for a
    name that is not a module. A private name of a public module read as an attribute or
    with ``getattr`` (``http_fastpath._LAZY``) counts as imported too."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    public_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "http_fastpath":
                    yield alias.name, node.lineno
                    if alias.name in PUBLIC:
                        public_aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [node.module or ""])
                base = base.rstrip(".")
            else:
                base = node.module or ""
            if base.split(".")[0] != "http_fastpath":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in known else f"{base}:{alias.name}"), node.lineno
                if full in PUBLIC:
                    public_aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):  # http_fastpath._LAZY, getattr(module, "_LAZY", {})
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in public_aliases and _private(node.attr):
                yield f"http_fastpath:{node.attr}", node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and node.args[1].value in FACADE_PRIVATE
        ):
            yield f"http_fastpath:{node.args[1].value}", node.lineno


def violation(importer: str, imported: str) -> str | None:
    """The rule ``importer`` breaks by importing ``imported``, or None."""
    module, _, name = imported.partition(":")
    if module == importer or not module.startswith("http_fastpath"):
        return None
    source = layer(importer)
    if source == "public":
        return None
    if module in PUBLIC and _private(name):
        return f"{source} reads the private name {name} of {module}"
    target = layer(module)
    if target not in ALLOWED[source]:
        return f"{source} may not import {target}"
    if source == target == "_integrations":
        a, b = importer.split(".")[2], module.split(".")[2]
        if not any(a in group and b in group for group in INTEGRATIONS.values()):
            return f"integration {a} imports integration {b}"
    return None


def violations() -> list[str]:
    found = modules()
    seen: set[tuple[str, str]] = set()
    out: dict[str, None] = {}  # in order, once
    for module, path in found.items():
        for imported, line in imports(module, path, set(found)):
            rule = violation(module, imported)
            if rule is not None:
                target, _, name = imported.partition(":")
                key = (module, f"{target}:{name}" if target in PUBLIC else target)
                seen.add(key)
                if key not in EXCEPTIONS:
                    out[f"{path.relative_to(ROOT)}:{line}: imports {imported}: {rule}"] = None
    stale = sorted(set(EXCEPTIONS) - seen)
    return [*out, *(f"exception no longer needed (remove it): {a} -> {b}" for a, b in stale)]


def test_every_module_is_in_a_layer() -> None:
    for module in modules():
        layer(module)


def test_imports_follow_the_layers() -> None:
    assert not violations(), "\n".join(violations())


def test_the_cli_has_no_exception() -> None:
    """The command line imports what users can import, nothing else (docs/architecture.md:
    a need of the CLI becomes public API, or the CLI works from what is public)."""
    assert not [pair for pair in EXCEPTIONS if pair[0].startswith("http_fastpath._cli")]


def socket_constructions(path: Path) -> Iterator[tuple[int, str]]:
    """(line, what) for each socket the module makes itself (annotations do not count)."""
    tree = ast.parse(path.read_text(), str(path))
    modules_, makers = {"socket"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules_ |= {a.asname or a.name for a in node.names if a.name == "socket"}
        elif isinstance(node, ast.ImportFrom) and node.module == "socket":
            for a in node.names:
                if a.name in SOCKET_MAKERS:
                    makers.add(a.asname or a.name)
                    yield node.lineno, f"from socket import {a.name}"

    def is_maker(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in makers
        return (
            isinstance(expr, ast.Attribute)
            and isinstance(expr.value, ast.Name)
            and expr.value.id in modules_
            and expr.attr in SOCKET_MAKERS
        )

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if is_maker(func):
                yield node.lineno, f"{ast.unparse(func)}()"
            elif isinstance(func, ast.Attribute) and func.attr == "__init__":
                if is_maker(func.value):
                    yield node.lineno, f"{ast.unparse(func)}()"
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                if is_maker(base):
                    yield node.lineno, f"class {node.name}({ast.unparse(base)})"


def socket_rule_violations() -> list[str]:
    paths = sorted(PACKAGE.rglob("*.py"))
    for folder in SOCKET_RULE_ALSO:
        paths += sorted((ROOT / folder).rglob("*.py"))
    out = []
    allowed_seen = set()
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        for line, what in socket_constructions(path):
            if rel in SOCKET_MAKERS_ALLOWED:
                allowed_seen.add(rel)
            else:
                out.append(f"{rel}:{line}: {what} (sockets come from _core.sockets.new_socket)")
    out += [
        f"{rel}: makes no socket any more (remove it)"
        for rel in sorted(SOCKET_MAKERS_ALLOWED - allowed_seen)
    ]
    return out


def test_one_socket_factory() -> None:
    """STYLE §3.1: only the dialer creates sockets (and the lab's servers); the rest of the
    package asks it (``new_socket``, ``open_pending``, ``dial``)."""
    assert not socket_rule_violations(), "\n".join(socket_rule_violations())


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("http_fastpath._core.dialer", "http_fastpath._backends.sync", "_core may not import"),
        ("http_fastpath._core.dialer", "http_fastpath._cli.output", "_core may not import"),
        ("http_fastpath._backends.sync", "http_fastpath._integrations.httpx", "may not import"),
        ("http_fastpath._integrations.httpx", "http_fastpath._integrations.urllib3", "integration"),
        ("http_fastpath._cli.get", "http_fastpath._core.dialer", "_cli may not import _core"),
        ("http_fastpath._cli.get", "http_fastpath:_LAZY", "private name _LAZY"),
        ("http_fastpath.http3._drivers", "http_fastpath._integrations.urllib3", "may not"),
        ("http_fastpath.netlab._lab", "http_fastpath._cli", "netlab may not import _cli"),
    ],
)
def test_the_rules_catch_a_violation(importer: str, imported: str, rule: str) -> None:
    """The checker itself: each rule fails on a violating import."""
    broken = violation(importer, imported)
    assert broken is not None and rule in broken, broken


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("http_fastpath._backends.sync", "http_fastpath._core.dialer"),
        ("http_fastpath._integrations.requests", "http_fastpath._integrations.urllib3"),
        ("http_fastpath._integrations.httpx2", "http_fastpath._integrations.transports"),
        ("http_fastpath._cli.get", "http_fastpath"),
        ("http_fastpath._cli.get", "http_fastpath:connection_info"),
        ("http_fastpath._cli.probe", "http_fastpath:connect"),
        ("http_fastpath._cli.doctor_kernel", "http_fastpath.http3:uapi_mismatch"),
        ("http_fastpath._cli", "http_fastpath.netlab"),
        ("http_fastpath.http3._drivers", "http_fastpath._core.dialer"),
    ],
)
def test_the_rules_allow_the_layering(importer: str, imported: str) -> None:
    assert violation(importer, imported) is None


def test_the_socket_rule_sees_every_form(tmp_path: Path) -> None:
    code = tmp_path / "m.py"
    code.write_text(
        "import socket\nimport socket as s2\nfrom socket import create_connection as cc\n"
        "def f(sock: socket.socket) -> socket.socket:  # annotations are fine\n"
        "    isinstance(sock, socket.socket)\n"
        "    socket.socket()\n    s2.socketpair()\n    cc(('h', 1))\n"
        "    socket.socket.__init__(sock, fileno=3)\n"
        "class S(socket.socket):\n    pass\n"
    )
    found = sorted(line for line, _ in socket_constructions(code))
    assert found == [3, 6, 7, 8, 9, 10]


def test_reading_the_facade_private_map_is_an_import(tmp_path: Path) -> None:
    code = tmp_path / "m.py"
    code.write_text(
        "import http_fastpath\n"
        "from .. import _LAZY\n"
        "def f(module):\n"
        "    http_fastpath._LAZY, getattr(module, '_LAZY', {}), getattr(module, '_other')\n"
    )
    found = list(imports("http_fastpath._cli.m", code, set()))
    assert found == [
        ("http_fastpath", 1),
        ("http_fastpath:_LAZY", 2),
        ("http_fastpath:_LAZY", 4),
        ("http_fastpath:_LAZY", 4),
    ]
