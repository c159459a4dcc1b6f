"""Benchmarks and pictures: simulator speed and expert success (later: policy success, latency)."""
