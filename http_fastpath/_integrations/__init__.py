"""Shells for the host libraries: configuration in, the library's own exceptions out.

requests (``requests`` over ``urllib3``, with ``urllib3_connection`` and ``urllib3_tls``),
httpx and httpx2 (``httpx``/``httpx2`` over ``transports``, with ``transports_mapping``,
``transports_pool`` and ``transports_clients``), and the process-wide opt-in
(``autoinstall`` with ``autoinstall_patchers`` and ``env``). They reach each other only
through ``_core`` (exceptions: tests/unit/test_layering.py).
"""
