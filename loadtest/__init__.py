"""Benchmarks: run with `python -m loadtest.<name>`; each prints its figures."""
