"""Benchmarks: ``python -m bench [NAME[,NAME...]] [ARGS...]`` (see bench/README.md)."""
