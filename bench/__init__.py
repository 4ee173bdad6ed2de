"""Benchmarks: run each with `.venv/bin/python -m bench.<name>`; figures go to bench/RESULTS.md."""
