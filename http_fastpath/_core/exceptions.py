"""Exceptions raised by http_fastpath.

The class tree::

    FastpathError                      base of everything raised by this package
    ├── OptionError (ValueError)       an option or environment value is not allowed
    ├── DialError (OSError)            a connection could not be established
    │   └── DialTimeout (TimeoutError) ...within the connect timeout
    └── CapabilityError (RuntimeError) a feature the caller insisted on is not available here

``DialError`` subclasses :class:`OSError` and ``DialTimeout`` also subclasses
:class:`TimeoutError`, so code written against the standard library (and the
HTTP clients' own exception mapping) keeps treating them as connect failures.
"""

from __future__ import annotations

__all__ = ["CapabilityError", "DialError", "DialTimeout", "FastpathError", "OptionError"]


class FastpathError(Exception):
    """Base class of every exception raised by http_fastpath."""


class OptionError(FastpathError, ValueError):
    """An option value is invalid; the message names the option, the value and what is allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid value for {name}: {value!r} (allowed: {allowed})")

    def __reduce__(self) -> tuple[type[OptionError], tuple[str, object, str]]:
        return (type(self), (self.name, self.value, self.allowed))


class DialError(FastpathError, OSError):
    """Connecting to the server failed (refused, unreachable, reset during the handshake...).

    Raised by the dialer both for an immediate failure and for one that only shows up
    on the first write of a TCP Fast Open connection, so callers see a *connect* error
    either way. ``errno`` carries the kernel's error number when there is one.
    """


class DialTimeout(DialError, TimeoutError):
    """The connection was not established within the connect timeout."""


class CapabilityError(FastpathError, RuntimeError):
    """A feature that was explicitly required is not available on this host."""
