"""Benchmarks and the synthetic CPL they (and the scale tests) run against."""
