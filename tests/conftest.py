"""Shared test setup: generated data goes to a per-session temporary cache, never to ~/.cache;
torch runs single-threaded (tiny models gain nothing from threads, and on a shared 2-core machine
oversubscribed threads slow small operations down by orders of magnitude)."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def isolated_data_cache(tmp_path_factory):
    """Point DIFFUMA_BENCH_CACHE at a temporary folder and DIFFUMA_BENCH_DATA at nothing."""
    patcher = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("cache")
    patcher.setenv("DIFFUMA_BENCH_CACHE", str(cache))
    patcher.setenv("DIFFUMA_BENCH_DATA", str(tmp_path_factory.mktemp("no-weatherbench-here") / "missing"))
    yield cache
    patcher.undo()


@pytest.fixture(scope="session", autouse=True)
def single_thread():
    """One intra-op thread for the whole session."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
