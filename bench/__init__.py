"""Benchmarks (`make bench`): the service against small references, in the same run."""
