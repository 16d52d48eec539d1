"""Benchmarks for http_fastpath: run ``python -m benchmarks``."""
