"""httpcore network backends on the fastpath dialer, named as httpcore names its own.

``sync`` and ``anyio`` are written once for httpcore and httpcore2 (what they share
without waiting: ``common``); ``httpcore_*`` and
``httpcore2_*`` only add each stack's base and exception classes. Imports ``_core`` only.
"""
