"""diffuma-bench: a reproducible benchmark for spatio-temporal prediction models."""

__version__ = "0.1.0"
