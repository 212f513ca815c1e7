"""Benchmarks: each prints a table and compares alternatives side by side in one run."""
