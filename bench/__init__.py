"""Benchmarks: each prints ratios against a named baseline measured side by side in the same run."""
