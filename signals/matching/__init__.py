"""Matching indexes: how values that are not compared by equality find their indicators.

The package itself imports nothing, so the pure indexes (``signals.matching.pdq``) load
without Django, as the benchmarks do.
"""
