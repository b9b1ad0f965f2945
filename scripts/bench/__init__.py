"""Benchmarks that print figures, one module each: `python -m scripts.bench.<name> --help` (bench.sh)."""
