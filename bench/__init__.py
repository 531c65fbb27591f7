"""Benchmark harness: the whole system under load, beside its baselines (docs/benchmarks.md)."""
