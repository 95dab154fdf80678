"""Helpers the benchmarks share (not benchmarks themselves: `make bench-smoke` runs only benchmarks/*.py)."""
