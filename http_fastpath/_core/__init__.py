"""The fast path itself: the dialer, its decisions and memory, options, errors, proof.

Knows no HTTP client and imports nothing from ``_backends``, ``_integrations``, ``_cli``,
``http3`` or ``netlab`` (tests/unit/test_layering.py). ``sockets`` is the one socket factory;
``capabilities`` the one reader of sysctls and ``/proc/net``. See docs/architecture.md.
"""
