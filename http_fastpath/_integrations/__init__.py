"""Shells for the host libraries: configuration in, the library's own exceptions out.

requests (``requests`` over ``urllib3``), httpx and httpx2 (``httpx``/``httpx2`` over
``transports``), and the process-wide opt-in (``autoinstall`` with ``env``). They reach
each other only through ``_core`` (exceptions: tests/unit/test_layering.py).
"""
