"""Fixtures for tests that register models, datasets or plugins: all of it is forgotten afterwards."""

import sys

import pytest

from benchmark.data.registry import DATASETS
from benchmark.registry import MODELS, plugins


def _isolate(monkeypatch, registries):
    # Loaded first: built-in modules register only when first imported, so a registry filled
    # inside the test and then restored would stay empty for good.
    for registry in registries:
        registry.load()
        for attribute in ("_entries", "_origins"):
            monkeypatch.setattr(registry, attribute, dict(getattr(registry, attribute)))
        monkeypatch.setattr(registry, "_loaded", True)
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.setenv(plugins.PLUGINS_ENV, "")
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        if name.startswith(("bench_plugin_", "diffuma_test_plugin")):
            del sys.modules[name]


@pytest.fixture
def isolated_models(monkeypatch):
    """A copy of the model registry and no plugins; the originals come back after the test."""
    yield from _isolate(monkeypatch, (MODELS,))


@pytest.fixture
def isolated_registries(monkeypatch):
    """Copies of the model and dataset registries and no plugins; the originals come back after the test."""
    yield from _isolate(monkeypatch, (MODELS, DATASETS))
