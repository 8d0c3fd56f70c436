"""Datasets: registry, loaders, generators and normalization."""
