"""Fault injection: run the real system under load, break things, check nothing was lost."""
