#!/usr/bin/env python3
"""Move http_fastpath's flat private modules (and the tests) into layers (issue #16).

One mapping table (:data:`MODULES`, and :data:`TESTS` for the test files) says where each
module goes. The script ``git mv``s every module to its place and rewrites every reference
to it, in ``http_fastpath/``, ``tests/``, ``benchmarks/``, ``examples/``, ``scripts/``,
``docs/``, the README, ``pyproject.toml`` and ``mkdocs.yml`` (never ``CHANGELOG.md``):

* imports (found with :mod:`ast`): relative imports are recomputed for the module's new
  depth, and a module imported *as a name* keeps its local name through an alias, so
  function bodies do not change::

      from . import _decide          ->  from .._core import decide as _decide
      from ._dialer import dial      ->  from .._core.dialer import dial
      from http_fastpath import _log ->  from http_fastpath._core import log as _log

* dotted names in any text (code strings, monkeypatch targets, subprocess code, the
  ``.pth`` file, docstrings, docs): ``http_fastpath._dialer`` -> ``http_fastpath._core.dialer``;
* the module paths ``_lazy`` resolves (``_LAZY`` in ``__init__.py``, ``httpx2.py``) and any
  other string literal in the package that is exactly an old module name
  (``"_httpcore_backend"`` -> ``"_backends.httpcore_sync"``); each is printed;
* Sphinx roles with relative targets in docstrings (``:mod:`._dialer``` ->
  ``:mod:`.dialer```), modules in Markdown inline code (```_decide.learn``` ->
  ```_core.decide.learn```), file paths (``http_fastpath/_dialer.py``, ``tests/test_dialer.py``,
  a bare ``_memory.py``, globs like ``tests/test_httpx_*.py``), and ``Path(__file__)``
  roots of test files that move one level down;
* a few exact edits (:data:`FIXUPS`) that no rule covers.

Then ``ruff check --select I --fix`` and ``ruff format`` tidy the files it touched.

It is deterministic and idempotent: on an already-moved tree it changes nothing (``--check``
exits 0). It fails loudly, before touching anything, when a module of the table is missing,
when a private module at the top of the package (or a test file at the top of ``tests/``)
is in no table, or when a fix-up no longer matches.

Usage (from anywhere inside the checkout; the work tree must be clean)::

    python scripts/relayout.py            # move and rewrite; then review `git status`
    python scripts/relayout.py --check    # only say what would change (exit 1 if anything)
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PACKAGE = "http_fastpath"

# ---------------------------------------------------------------------------------------
# The mapping: old top-level private module (or package) -> new dotted path in the package.
# A target that other targets live under becomes a package (its __init__.py).
# ---------------------------------------------------------------------------------------
MODULES: dict[str, str] = {
    # _core: the fast path itself. Knows no HTTP client; imports nothing above it.
    "_dialer": "_core.dialer",  # the socket factory and the connect state machine
    "_decide": "_core.decide",  # pure connect decisions
    "_memory": "_core.memory",  # per-destination memory
    "_destinations": "_core.destinations",  # its public read-only view
    "_options": "_core.options",
    "_policy": "_core.policy",  # replay safety
    "_exceptions": "_core.exceptions",
    "_trace": "_core.trace",
    "_log": "_core.log",
    "_linux": "_core.linux",  # constants, TCP_INFO/MPTCP_INFO layouts
    "_info": "_core.info",  # ConnectionInfo
    "_proof": "_core.proof",  # connection_info(response); the backends and http3 need it
    "_stats": "_core.stats",
    "_capabilities": "_core.capabilities",  # the probe: reads sysctl and /proc/net
    "_tls": "_core.tls",  # TLS over MemoryBIO for a pending socket
    "_lazy": "_core.lazy",  # lazy re-exports of the public modules
    "_sslcache": "_core.sslcache",  # shared SSLContexts (both integrations use it)
    "_eyeballs": "_core.eyeballs",  # Happy Eyeballs: the pure address order and race
    "_race": "_core.race",  # its shell over the dialer's socket factory
    "_altsvc": "_core.altsvc",  # Alt-Svc parsing and memory (pure, like the memory)
    # _backends: httpcore's network-backend seam, named as httpcore names its backends
    # (httpcore/_backends/sync.py, anyio.py): one implementation, one shell per stack.
    "_core_sync": "_backends.sync",
    "_core_async": "_backends.anyio",
    "_httpcore_backend": "_backends.httpcore_sync",
    "_httpcore_async": "_backends.httpcore_anyio",
    "_httpcore2_backend": "_backends.httpcore2_sync",
    "_httpcore2_async": "_backends.httpcore2_anyio",
    # _integrations: thin shells, configuration in and the host library's exceptions out.
    "_urllib3": "_integrations.urllib3",
    "_requests": "_integrations.requests",
    "_transports": "_integrations.transports",  # httpx and httpx2, written once
    "_httpx": "_integrations.httpx",
    "_httpx2": "_integrations.httpx2",
    "_env": "_integrations.env",  # HTTP_FASTPATH* parsing
    "_autoinstall": "_integrations.autoinstall",  # the process-wide opt-in
    # _cli: the command line (the console script stays http_fastpath._cli:main).
    "_cli": "_cli",
    "_cli_output": "_cli.output",
    "_cli_clients": "_cli.clients",
    "_cli_doctor": "_cli.doctor",
    "_cli_doctor_kernel": "_cli.doctor_kernel",
    "_cli_get": "_cli.get",
    "_cli_probe": "_cli.probe",
    # http3: EXPERIMENTAL, public module http_fastpath.http3 (written below).
    "_http3": "http3._drivers",  # backend selection, TLS settings, sync/async drivers, pools
    "_http3_transports": "http3._transports",
    "_http3_httpx": "http3._httpx",
    "_http3_httpx2": "http3._httpx2",
    "_http3_requests": "http3._requests",
    "_quic_kernel": "http3._quic_kernel",
    "_quic_userspace": "http3._quic_userspace",
    "_h3": "http3._h3",  # the sans-IO HTTP/3 core (a package)
}

#: modules of the table that may be absent (they arrive with a branch not merged yet)
OPTIONAL_MODULES: set[str] = set()

#: what may sit at the top of the package once the move is done
TOP_LEVEL = {"__init__.py", "__main__.py", "httpx2.py", "py.typed", "_data", "netlab"}

#: __init__.py of the new packages (written when missing; never overwritten)
PACKAGE_INITS: dict[str, str] = {
    "_core": '''"""The fast path itself: the dialer, its decisions and memory, options, errors, proof.

Knows no HTTP client and imports nothing from ``_backends``, ``_integrations``, ``_cli``,
``http3`` or ``netlab`` (tests/unit/test_layering.py). ``dialer`` is the one socket factory;
``capabilities`` the one reader of sysctls and ``/proc/net``. See docs/architecture.md.
"""
''',
    "_backends": '''"""httpcore network backends on the fastpath dialer, named as httpcore names its own.

``sync`` and ``anyio`` are written once for httpcore and httpcore2; ``httpcore_*`` and
``httpcore2_*`` only add each stack's base and exception classes. Imports ``_core`` only.
"""
''',
    "_integrations": '''"""Shells for the host libraries: configuration in, the library's own exceptions out.

requests (``requests`` over ``urllib3``), httpx and httpx2 (``httpx``/``httpx2`` over
``transports``), and the process-wide opt-in (``autoinstall`` with ``env``). They reach
each other only through ``_core`` (exceptions: tests/unit/test_layering.py).
"""
''',
    "http3": '''"""EXPERIMENTAL HTTP/3 (extra ``http3``): QUIC in userspace (aioquic) or in the Linux kernel.

::

    from http_fastpath.http3 import AsyncHTTP3Transport, HTTP3Adapter, HTTP3Transport

The same classes are still importable from ``http_fastpath`` (and the httpx2 ones from
``http_fastpath.httpx2``). Importing this module does no work; each name loads on first use.
See docs/http3.md.
"""

from __future__ import annotations

import typing

from .._core import lazy as _lazy

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._httpx import AsyncHTTP3Transport, HTTP3Transport
    from ._requests import HTTP3Adapter

__all__ = ["HTTP3Transport", "AsyncHTTP3Transport", "HTTP3Adapter"]

_LAZY = {
    "HTTP3Transport": "http3._httpx",
    "AsyncHTTP3Transport": "http3._httpx",
    "HTTP3Adapter": "http3._requests",
}

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
''',
}

# ---------------------------------------------------------------------------------------
# The tests by layer: test module -> folder under tests/. One conftest.py stays at the top
# (it enters the network namespace and holds the shared fixtures), and so do the helpers.
# ---------------------------------------------------------------------------------------
TESTS: dict[str, str] = {
    # unit: no network namespace, no server
    "test_decide": "unit",
    "test_env_parse": "unit",
    "test_env_hosts": "unit",
    "test_http3_core": "unit",
    "test_http3_kernel_logic": "unit",
    "test_import": "unit",
    "test_memory": "unit",
    "test_options": "unit",
    "test_packaging": "unit",
    "test_scripts": "unit",
    "test_typing": "unit",
    "test_altsvc": "unit",
    "test_eyeballs": "unit",
    "test_http3_tickets": "unit",
    # loopback: real servers in the private network namespace the run creates
    "test_capabilities": "loopback",
    "test_cli": "loopback",
    "test_dialer": "loopback",
    "test_docs": "loopback",  # runs the docs' snippets against loopback servers
    "test_env_optin": "loopback",
    "test_examples": "loopback",
    "test_http3": "loopback",
    "test_http3_kernel_real": "loopback",
    "test_httpx_client": "loopback",
    "test_httpx_errors": "loopback",
    "test_httpx_http2": "loopback",
    "test_httpx_load": "loopback",
    "test_httpx_paths": "loopback",
    "test_httpx_tfo": "loopback",
    "test_observability": "loopback",
    "test_parity": "loopback",
    "test_platforms": "loopback",
    "test_requests_adapter": "loopback",
    "test_urllib3": "loopback",
    "test_sslcache": "loopback",
    "test_happy_eyeballs": "loopback",
    "test_lean_paths": "loopback",
    "test_http3_resumption": "loopback",
    # lab: the network lab itself, the reliability matrix, the demo
    "test_demo": "lab",
    "test_destinations_lab": "lab",
    "test_netlab": "lab",
    "test_reliability_faults": "lab",
    "test_reliability_lab": "lab",
    "test_reliability_load": "lab",
    "test_reliability_security": "lab",
    "test_http3_lab": "lab",
}

#: tests of the table that may be absent (they arrive with a branch not merged yet)
OPTIONAL_TESTS: set[str] = set()

TEST_INITS: dict[str, str] = {
    "unit": '"""Unit tests: no network namespace, no server (tests/conftest.py is shared)."""\n',
    "loopback": (
        '"""Loopback tests: real servers in the private network namespace the run creates."""\n'
    ),
    "lab": '"""Lab tests: the network lab, the reliability matrix and the demo."""\n',
}


@dataclass(frozen=True)
class Fixup:
    """An exact edit no rule makes: ``old`` -> ``new`` in ``path`` (its path after the move)."""

    path: str
    old: str
    new: str
    why: str


FIXUPS: list[Fixup] = [
    Fixup(
        "http_fastpath/_core/lazy.py",
        "``__getattr__`` and ``__dir__`` from :func:`exports`.",
        "``__getattr__`` and ``__dir__`` from :func:`exports`. A module is named by its\n"
        'dotted path under ``http_fastpath`` (``"_core.capabilities"``, ``"http3._httpx"``).',
        "the lazy maps now hold dotted sub-paths",
    ),
    Fixup(
        "http_fastpath/__init__.py",
        "# Lazy re-exports (name -> private module): ``import http_fastpath`` stays free of work\n"
        "# and imports no HTTP client until one of these names is used.",
        "# Lazy re-exports (name -> module path under http_fastpath): ``import http_fastpath``\n"
        "# stays free of work and imports no HTTP client until one of these names is used.",
        "the lazy maps now hold dotted sub-paths",
    ),
    Fixup(
        "tests/unit/test_import.py",
        """        for m in pkgutil.iter_modules(http_fastpath.__path__):
            if m.name in ("netlab", "__main__") or m.name.startswith("_quic_kernel"):
                continue
            importlib.import_module(f"http_fastpath.{m.name}")
""",
        """        def walk(path, prefix):  # every module of every sub-package, the lab's excepted
            for m in pkgutil.iter_modules(path, prefix):
                if m.name.endswith(("netlab", "__main__", "_quic_kernel")):
                    continue
                module = importlib.import_module(m.name)
                if m.ispkg:
                    walk(module.__path__, m.name + ".")
        walk(http_fastpath.__path__, "http_fastpath.")
""",
        "the modules now live in sub-packages: walk them all, not only the top level",
    ),
]

#: where references are rewritten (CHANGELOG.md is history: never rewritten)
SCOPES = ("http_fastpath/", "tests/", "benchmarks/", "examples/", "scripts/", "docs/", ".ci/")
TOP_FILES = ("README.md", "pyproject.toml", "mkdocs.yml")
#: this script: its docstring and tables name the old modules on purpose
SELF = "scripts/relayout.py"
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".pth", ".sh", ".txt", ".cfg", ".ini"}

# ---------------------------------------------------------------------------------------


class RelayoutError(Exception):
    pass


def die(message: str) -> None:
    raise RelayoutError(message)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        die(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


# ----- names ----------------------------------------------------------------------------


def _children(table: dict[str, str]) -> set[str]:
    """Targets that other targets live under: they become packages."""
    return {t.rsplit(".", 1)[0] for t in table.values() if "." in t} & set(table.values())


PACKAGE_TARGETS = _children(MODULES)
#: old names that are also new module names (``_httpx`` -> ``_integrations.httpx``, while
#: ``http3/_httpx.py`` is new): a bare ``_httpx.py`` or ```_httpx``` in prose is ambiguous
#: once the tree has moved, so the context-free rules leave these alone (idempotence)
AMBIGUOUS = set(MODULES) & {new.rpartition(".")[2] for new in MODULES.values()}


def new_name(dotted: str) -> str:
    """The module path ``dotted`` has after the move (unchanged when not moved)."""
    parts = dotted.split(".")
    if parts[0] == PACKAGE and len(parts) > 1 and parts[1] in MODULES:
        return ".".join([PACKAGE, *MODULES[parts[1]].split("."), *parts[2:]])
    if parts[0] == "tests" and len(parts) > 1 and parts[1] in TESTS:
        return ".".join(["tests", TESTS[parts[1]], *parts[1:]])
    return dotted


def module_of(path: str) -> tuple[str, bool]:
    """(dotted module name, is a package __init__) of a .py path relative to the root."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def new_path(path: str) -> str:
    """Where the file at ``path`` (relative to the root) lives after the move."""
    parts = PurePosixPath(path).parts
    if parts[0] == PACKAGE and len(parts) > 1:
        head = parts[1]
        if head.endswith(".py") and head[:-3] in MODULES and len(parts) == 2:
            target = MODULES[head[:-3]]
            pieces = target.split(".")
            if target in PACKAGE_TARGETS:
                return "/".join([PACKAGE, *pieces, "__init__.py"])
            return "/".join([PACKAGE, *pieces[:-1], pieces[-1] + ".py"])
        if head in MODULES and len(parts) > 2:  # a package moved as a whole
            return "/".join([PACKAGE, *MODULES[head].split("."), *parts[2:]])
    if parts[0] == "tests" and len(parts) == 2 and parts[1].endswith(".py"):
        stem = parts[1][:-3]
        if stem in TESTS:
            return f"tests/{TESTS[stem]}/{parts[1]}"
    return path


def relative(target: str, package: str) -> str:
    """``target`` as a relative import from inside ``package``."""
    t, p = target.split("."), package.split(".")
    n = 0
    while n < min(len(t), len(p)) and t[n] == p[n]:
        n += 1
    if n == 0:
        die(f"cannot import {target} relatively from {package}")
    return "." * (len(p) - n + 1) + ".".join(t[n:])


def resolve(level: int, module: str | None, package: str) -> str:
    parts = package.split(".")
    if level - 1 > len(parts) - 1:
        die(f"relative import beyond the top from {package}")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


# ----- rewriting ------------------------------------------------------------------------


@dataclass
class Report:
    strings: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


def _offsets(source: str) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _char_offset(line_starts: list[int], lines: list[str], lineno: int, col: int) -> int:
    """ast gives UTF-8 byte columns: convert to a character offset."""
    line = lines[lineno - 1]
    return line_starts[lineno - 1] + len(line.encode()[:col].decode())


def rewrite_python(
    source: str,
    cur: str,
    cur_pkg: str,
    dst_pkg: str,
    modules_now: set[str],
    in_package: bool,
    report: Report,
    where: str,
) -> str:
    """Rewrite the imports (and, in the package, module-name strings) of one module."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    starts = _offsets(source)
    edits: list[tuple[int, int, str]] = []

    in_fstring = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in node.values
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            edit = _rewrite_import_from(node, source, lines, starts, cur_pkg, dst_pkg, modules_now)
            if edit is not None:
                edits.append(edit)
        elif (
            in_package
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in MODULES
            and MODULES[node.value] != node.value
            and node.lineno == node.end_lineno
            and id(node) not in in_fstring
        ):
            a = _char_offset(starts, lines, node.lineno, node.col_offset)
            b = _char_offset(starts, lines, node.end_lineno, node.end_col_offset)
            literal = source[a:b]
            quote = literal[-1]
            if literal != f"{quote}{node.value}{quote}":
                die(f"{where}:{node.lineno}: unexpected string literal {literal}")
            edits.append((a, b, f"{quote}{MODULES[node.value]}{quote}"))
            report.strings.append(f"{where}:{node.lineno}: {literal} -> {edits[-1][2]}")

    for a, b, text in sorted(edits, reverse=True):
        source = source[:a] + text + source[b:]
    return source


def _rewrite_import_from(
    node: ast.ImportFrom,
    source: str,
    lines: list[str],
    starts: list[int],
    cur_pkg: str,
    dst_pkg: str,
    modules_now: set[str],
) -> tuple[int, int, str] | None:
    if node.level == 0 and not (
        node.module == PACKAGE
        or (node.module or "").startswith(PACKAGE + ".")
        or node.module == "tests"
        or (node.module or "").startswith("tests.")
    ):
        return None  # not ours
    base = resolve(node.level, node.module, cur_pkg) if node.level else node.module or ""
    groups: dict[str, list[str]] = {}
    names_moved = False
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if alias.name != "*" and full in modules_now and new_name(full) != full:
            parent, leaf = new_name(full).rsplit(".", 1)
            local = alias.asname or alias.name
            groups.setdefault(parent, []).append(leaf if leaf == local else f"{leaf} as {local}")
            names_moved = names_moved or parent != new_name(base) or leaf != alias.name
        else:
            shown = alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"
            groups.setdefault(new_name(base), []).append(shown)
    if not names_moved and new_name(base) == base and (node.level == 0 or dst_pkg == cur_pkg):
        return None

    def spelled(target: str) -> str:
        return relative(target, dst_pkg) if node.level else target

    a = _char_offset(starts, lines, node.lineno, node.col_offset)
    b = _char_offset(starts, lines, node.end_lineno or node.lineno, node.end_col_offset or 0)
    original = source[a:b]
    if not names_moved:  # only the module moved: change the "from X" part, keep the rest
        (target,) = groups
        head = re.match(r"from\s+([.\w]+)\s+import\b", original)
        if head is None:
            die(f"cannot parse the import at line {node.lineno}: {original!r}")
        new_head = f"from {spelled(target)} import"
        if original[: head.end()] == new_head:
            return None
        return a, b, new_head + original[head.end() :]
    if "#" in original:
        die(f"line {node.lineno}: an import with comments inside needs a hand edit: {original!r}")
    line = lines[(node.end_lineno or node.lineno) - 1]
    tail = line[len(line.encode()[: node.end_col_offset].decode()) :].rstrip("\n")
    comment = tail.strip() if tail.strip().startswith("#") else ""
    indent = lines[node.lineno - 1][
        : len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())
    ]
    statements = [f"from {spelled(t)} import {', '.join(names)}" for t, names in groups.items()]
    sep = f"  {comment}\n{indent}" if comment else f"\n{indent}"
    return a, b, sep.join(statements)


ROLE = re.compile(r"(:[a-z]+:`~?)(\.+)([A-Za-z_][\w.]*)(`)")


def rewrite_roles(source: str, cur_pkg: str, dst_pkg: str, modules_now: set[str]) -> str:
    """Sphinx roles with a relative target (``:mod:`._dialer```), recomputed."""

    def one(match: re.Match[str]) -> str:
        dots, rest = match.group(2), match.group(3)
        target = resolve(len(dots), rest, cur_pkg)
        # the longest prefix that is a module: the rest are attributes
        parts = target.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            if prefix in modules_now or n == 1:
                break
        moved = new_name(prefix) + ("." + ".".join(parts[n:]) if parts[n:] else "")
        if moved == target and dst_pkg == cur_pkg:
            return match.group(0)
        return match.group(1) + relative(moved, dst_pkg) + match.group(4)

    return ROLE.sub(one, source)


def _text_rules(test_names: Iterable[str]) -> list[tuple[re.Pattern[str], Callable[..., str]]]:
    rules: list[tuple[re.Pattern[str], Callable[..., str]]] = []
    for old, new in MODULES.items():
        target_path = new.replace(".", "/")
        file_path = f"{target_path}/__init__.py" if new in PACKAGE_TARGETS else f"{target_path}.py"
        dotted = f"{PACKAGE}.{new}"
        if old != new:  # dotted names: http_fastpath._dialer(.x) -> http_fastpath._core.dialer(.x)
            rules.append((re.compile(rf"(?<![\w.]){PACKAGE}\.{old}(?!\w)"), lambda m, d=dotted: d))
        rules += [
            # paths: http_fastpath/_dialer.py, http_fastpath/_h3/...
            (
                re.compile(rf"(?<![\w-]){PACKAGE}/{old}\.py\b"),
                lambda m, p=file_path: f"{PACKAGE}/{p}",
            ),
            (
                re.compile(rf"(?<![\w-]){PACKAGE}/{old}(?=/|\b)(?!\.py)"),
                lambda m, p=target_path: f"{PACKAGE}/{p}",
            ),
        ]
        if old not in AMBIGUOUS:  # a bare file name in prose: `_memory.py` -> `_core/memory.py`
            rules.append((re.compile(rf"(?<![\w/.-]){old}\.py\b"), lambda m, p=file_path: p))
    # tests: tests/test_x.py (also globs: tests/test_httpx_*.py) and tests.test_x
    names = sorted(test_names)

    def test_path(m: re.Match[str]) -> str:
        stem = m.group(1)
        hits = [n for n in names if fnmatch.fnmatchcase(n, stem)]
        folders = {TESTS[n] for n in hits}
        if len(folders) != 1:
            if "*" in stem or "?" in stem:
                die(f"the glob tests/{stem}.py spans {sorted(folders) or 'no'} test folders")
            return m.group(0)
        return f"tests/{folders.pop()}/{stem}.py"

    rules.append((re.compile(r"(?<![\w-])tests/(test_[\w*?]+)\.py\b"), test_path))
    rules.append(
        (
            re.compile(r"(?<![\w.])tests\.(test_\w+)(?!\w)"),
            lambda m: (
                f"tests.{TESTS[m.group(1)]}.{m.group(1)}" if m.group(1) in TESTS else m.group(0)
            ),
        )
    )
    return rules


def rewrite_text(source: str, rules: list[tuple[re.Pattern[str], Callable[..., str]]]) -> str:
    for pattern, replace in rules:
        source = pattern.sub(replace, source)
    return source


#: Markdown only: a module named in inline code, `_decide.learn` -> `_core.decide.learn`
MARKDOWN_RULES: list[tuple[re.Pattern[str], Callable[..., str]]] = [
    (re.compile(rf"(?<=`){old}(?=[.`])"), lambda m, new=new: new)
    for old, new in MODULES.items()
    if old != new and old not in AMBIGUOUS
]

ROOT_OF_TESTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parent\.parent\b")


# ----- the run --------------------------------------------------------------------------


def tracked_files(root: Path) -> list[str]:
    files = git(root, "ls-files", "-z").split("\0")
    out = []
    for f in files:
        if not f or f in ("CHANGELOG.md", SELF):
            continue
        if not (f.startswith(SCOPES) or f in TOP_FILES):
            continue
        p = PurePosixPath(f)
        is_script = f.startswith(("scripts/", ".ci/")) and p.suffix == ""
        if p.suffix in TEXT_SUFFIXES or is_script:
            if (root / f).is_file():
                out.append(f)
    return sorted(out)


def check_tables(root: Path) -> list[str]:
    """Fail loudly on a missing or unmapped module; return the test modules present."""
    pkg = root / PACKAGE
    problems = []
    for old, new in MODULES.items():
        old_file, old_dir = pkg / f"{old}.py", pkg / old
        if old == new:
            done = (pkg / old / "__init__.py").is_file()
            here = old_file.is_file()
        else:
            dest = pkg / new_path(f"{PACKAGE}/{old}.py").split("/", 1)[1]
            here = old_file.is_file() or (old_dir / "__init__.py").is_file()
            done = dest.is_file() or (pkg / new.replace(".", "/") / "__init__.py").is_file()
        if here and done:
            problems.append(f"{old}: both the old and the new place exist")
        if not here and not done and old not in OPTIONAL_MODULES:
            problems.append(f"{old}: in MODULES but not in the package (neither old nor new place)")
    new_tops = {new.split(".")[0] for new in MODULES.values()}
    for entry in sorted(pkg.iterdir()):
        name = entry.name
        if name in TOP_LEVEL or name in new_tops or name == "__pycache__":
            continue
        if entry.is_file() and name.endswith(".py") and name[:-3] in MODULES:
            continue
        if entry.is_dir() and name in MODULES:
            continue
        if entry.is_dir() and not any(entry.rglob("*.py")):
            continue  # a left-over __pycache__ only
        problems.append(
            f"{PACKAGE}/{name}: not in MODULES (add it to the table at the top of this script)"
        )
    tests = root / "tests"
    present = []
    for stem, folder in TESTS.items():
        here = (tests / f"{stem}.py").is_file()
        done = (tests / folder / f"{stem}.py").is_file()
        if here and done:
            problems.append(f"tests/{stem}.py: both the old and the new place exist")
        elif here or done:
            present.append(stem)
        elif stem not in OPTIONAL_TESTS:
            problems.append(f"tests/{stem}.py: in TESTS but not in tests/")
    for entry in sorted(tests.glob("test_*.py")):
        if entry.stem not in TESTS:
            problems.append(f"tests/{entry.name}: not in TESTS (add it to the table)")
    if problems:
        die("the tables do not match the tree:\n  " + "\n  ".join(problems))
    # a module that becomes a package __init__ must not define a name a sub-module takes
    for target in PACKAGE_TARGETS:
        (old,) = [o for o, n in MODULES.items() if n == target]
        src = pkg / f"{old}.py"
        if not src.is_file():
            src = pkg / target.replace(".", "/") / "__init__.py"
        defined = {
            t.id
            for node in ast.walk(ast.parse(src.read_text()))
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        } | {
            n.name
            for n in ast.parse(src.read_text()).body
            if isinstance(n, ast.FunctionDef | ast.ClassDef)
        }
        leaves = {n.rsplit(".", 1)[1] for n in MODULES.values() if n.startswith(target + ".")}
        if defined & leaves:
            die(f"{src}: defines {sorted(defined & leaves)}, the names of its new sub-modules")
    return present


def plan(root: Path) -> tuple[dict[str, str], dict[str, str], Report]:
    """(new contents by *new* path, moves old -> new, report), nothing written."""
    present_tests = check_tables(root)
    report = Report()
    files = tracked_files(root)
    modules_now = set()
    for f in git(root, "ls-files", "-z").split("\0"):
        if f.endswith(".py") and f.startswith((f"{PACKAGE}/", "tests/")):
            name, _ = module_of(f)
            modules_now.add(name)
            # packages are importable names too
            parts = name.split(".")
            for n in range(1, len(parts)):
                modules_now.add(".".join(parts[:n]))
    rules = _text_rules(present_tests)
    contents: dict[str, str] = {}
    moves: dict[str, str] = {}
    for f in files:
        source = (root / f).read_text()
        dest = new_path(f)
        if dest != f:
            moves[f] = dest
        text = source
        if f.endswith(".py"):
            cur, cur_is_pkg = module_of(f)
            dst, dst_is_pkg = module_of(dest)
            cur_pkg = cur if cur_is_pkg else cur.rpartition(".")[0]
            dst_pkg = dst if dst_is_pkg else dst.rpartition(".")[0]
            try:
                text = rewrite_python(
                    text,
                    cur,
                    cur_pkg,
                    dst_pkg,
                    modules_now,
                    f.startswith(f"{PACKAGE}/"),
                    report,
                    f,
                )
            except RelayoutError as exc:
                die(f"{f}: {exc}")
            except SyntaxError as exc:
                die(f"{f}: cannot parse: {exc}")
            if cur_pkg and dst_pkg:
                text = rewrite_roles(text, cur_pkg, dst_pkg, modules_now)
            if f.startswith("tests/") and dest.count("/") > f.count("/"):
                text = ROOT_OF_TESTS.sub("Path(__file__).resolve().parents[2]", text)
        text = rewrite_text(text, rules)
        if f.endswith(".md"):
            text = rewrite_text(text, MARKDOWN_RULES)
        if text != source or dest != f:
            contents[dest] = text
    for fix in FIXUPS:
        current = contents.get(fix.path)
        if current is None:
            path = root / fix.path
            if not path.is_file():
                die(f"fix-up for {fix.path} ({fix.why}): the file is missing")
            current = path.read_text()
        if fix.new in current:
            continue  # already applied
        if current.count(fix.old) != 1:
            die(
                f"fix-up for {fix.path} ({fix.why}): the old text occurs "
                f"{current.count(fix.old)} times, the new text not at all"
            )
        contents[fix.path] = current.replace(fix.old, fix.new)
    return contents, moves, report


def ruff() -> list[str]:
    try:
        import ruff as _  # noqa: F401

        return [sys.executable, "-m", "ruff"]
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            die("ruff is needed to sort and format the rewritten imports (pip install ruff)")
        return [exe]


def apply(root: Path, contents: dict[str, str], moves: dict[str, str], report: Report) -> None:
    for old, new in sorted(moves.items()):
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        git(root, "mv", old, new)
        report.moved.append((old, new))
    for path, text in sorted(contents.items()):
        target = root / path
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            report.changed.append(path)
    inits = {f"{PACKAGE}/{name}/__init__.py": body for name, body in PACKAGE_INITS.items()}
    inits |= {f"tests/{name}/__init__.py": body for name, body in TEST_INITS.items()}
    for path, body in sorted(inits.items()):
        target = root / path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            git(root, "add", path)
            report.created.append(path)
    # an old package folder left with only __pycache__ would import as a namespace package
    for old in MODULES:
        folder = root / PACKAGE / old
        if folder.is_dir() and not any(folder.rglob("*.py")):
            shutil.rmtree(folder)
    touched = sorted({p for p in report.changed + report.created if p.endswith(".py")})
    if touched:
        tool = ruff()
        for args in (["check", "--select", "I", "--fix", "--quiet"], ["format", "--quiet"]):
            done = subprocess.run(
                [*tool, *args, *touched], cwd=root, capture_output=True, text=True
            )
            if done.returncode != 0:
                die(f"ruff {args[0]} failed:\n{done.stdout}{done.stderr}")
    git(root, "add", "-A", "--", *(p for p in (*SCOPES, *TOP_FILES) if (root / p).exists()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    parser.add_argument("--allow-dirty", action="store_true", help="run on a modified tree")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every change")
    args = parser.parse_args(argv)
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    try:
        if not args.check and not args.allow_dirty and git(root, "status", "--porcelain"):
            die("the work tree has changes: commit or stash them first (or --allow-dirty)")
        contents, moves, report = plan(root)
        if args.check:
            changed = sorted(
                p
                for p, text in contents.items()
                if not (root / p).exists() or (root / p).read_text() != text
            )
            for old, new in sorted(moves.items()):
                print(f"move {old} -> {new}")
            for p in changed:
                print(f"edit {p}")
            for s in report.strings:
                print(f"string {s}")
            inits = [f"{PACKAGE}/{p}/__init__.py" for p in PACKAGE_INITS]
            inits += [f"tests/{p}/__init__.py" for p in TEST_INITS]
            missing = [p for p in inits if not (root / p).exists()]
            for p in missing:
                print(f"create {p}")
            print("relayout: nothing to do" if not (moves or changed or missing) else "")
            return 1 if moves or changed or missing else 0
        apply(root, contents, moves, report)
    except RelayoutError as exc:
        print(f"relayout: error: {exc}", file=sys.stderr)
        return 2
    for s in report.strings:
        print(f"string literal: {s}")
    if args.verbose:
        for old, new in report.moved:
            print(f"moved {old} -> {new}")
        for p in report.changed:
            print(f"edited {p}")
    for p in report.created:
        print(f"created {p}")
    print(
        f"relayout: {len(report.moved)} files moved, {len(report.changed)} edited, "
        f"{len(report.created)} created"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
