"""`python -m benchmark` is the same as `bench`."""

from benchmark.cli import main

main()
