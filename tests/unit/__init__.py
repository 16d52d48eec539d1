"""Unit tests: no network namespace, no server (tests/conftest.py is shared)."""
