"""Benchmark scripts (not tests): they print a table and write JSON to bench/results/."""
