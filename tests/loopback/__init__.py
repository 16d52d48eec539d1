"""Loopback tests: real servers in the private network namespace the run creates."""
