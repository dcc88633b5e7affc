"""Benchmarks: scripts, not tests (run with ``python -m tests.benchmarks``)."""
