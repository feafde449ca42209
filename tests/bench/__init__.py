"""Benchmarks (make bench). Not collected by pytest: no test_ files here."""
