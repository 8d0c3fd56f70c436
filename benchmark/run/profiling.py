"""`bench profile`: parameters, FLOPs, training-step time, inference throughput and peak memory.

Each model is measured in a fresh child process so that its peak memory is its own: on CUDA the
peak of `torch.cuda.max_memory_allocated`, on CPU the growth of the process's peak resident set
size (`ru_maxrss`) over what the process held before the model was built. Times are medians over
`repeats` after `warmup` untimed repetitions. FLOPs are counted by torch's own
`torch.utils.flop_counter.FlopCounterMode` for one forward pass of one sample (a multiply-add
counts 2), the convention of the reference benchmark's tables.

`precision` is a Lightning precision name (`benchmark.run.config.PRECISIONS`) measured as Lightning
trains in it: `bf16-mixed` / `16-mixed` run the forward pass and the loss under `torch.autocast`
(bfloat16 / float16; float16 with a gradient scaler, CUDA only), the backward pass and the
optimizer step outside it; inference runs under the same autocast.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.core.errors import BenchError
from benchmark.registry.shapes import DataShape


@dataclass
class ProfileRow:
    """Cost figures of one model at one shape and batch size."""

    model: str
    parameters: int
    gflops_per_sample: float
    train_step_seconds: float
    inference_samples_per_second: float
    peak_memory_mib: float
    memory_kind: str
    device: str
    batch: int
    shape: str
    threads: int
    backend: str | None = None  # the selective-scan backend, for models that have one
    precision: str = "32-true"


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def _autocast(device: Any, precision: str) -> Any:
    """The autocast context Lightning's `precision` uses on `device` (a no-op context for 32-true)."""
    import contextlib

    import torch

    if precision == "32-true":
        return contextlib.nullcontext()
    if precision == "16-mixed" and device.type != "cuda":
        raise BenchError("precision 16-mixed needs a CUDA GPU (float16 autocast with loss scaling); use bf16-mixed.")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16-mixed" else torch.float16)


def _measure(model_name: str, model_args: dict[str, Any], shape: DataShape, batch: int, warmup: int,
             repeats: int, device_name: str, threads: int | None, precision: str = "32-true") -> ProfileRow:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.registry import create_model
    from benchmark.registry.model_api import count_parameters, forecast

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    baseline = _rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = create_model(model_name, shape, **model_args)
    backend = model.selective_scan_backend(device)  # a backend that cannot run on `device` fails here, clearly
    model.to(device)
    x = torch.randn(batch, shape.t_in, shape.channels, shape.height, shape.width, device=device)
    y = torch.randn(batch, shape.t_out, shape.channels, shape.height, shape.width, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forecast(model, x[:1], y[:1])  # y stands in for the climatology of a model that uses one
    flops = counter.get_total_flops()

    trainable = any(p.requires_grad for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4) if trainable else None
    scaler = torch.amp.GradScaler("cuda") if precision == "16-mixed" else None
    step_times = []
    model.train()
    for index in range(warmup + repeats if trainable else 0):
        sync()
        start = time.perf_counter()
        with _autocast(device, precision):
            if hasattr(model, "training_loss"):
                loss, _ = model.training_loss(x, y, index)
            else:
                loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        sync()
        if index >= warmup:
            step_times.append(time.perf_counter() - start)

    model.eval()
    infer_times = []
    with torch.no_grad(), _autocast(device, precision):
        for index in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            forecast(model, x, y)
            sync()
            if index >= warmup:
                infer_times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda allocated"
    else:
        peak, kind = max(0.0, _rss_mib() - baseline), "cpu peak RSS growth"
    infer = statistics.median(infer_times)
    return ProfileRow(
        model=model_name,
        parameters=count_parameters(model),
        gflops_per_sample=flops / 1e9,
        train_step_seconds=statistics.median(step_times) if step_times else 0.0,
        inference_samples_per_second=batch / infer if infer > 0 else float("inf"),
        peak_memory_mib=peak,
        memory_kind=kind,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        batch=batch,
        shape=",".join(map(str, shape)),
        threads=torch.get_num_threads(),
        backend=backend,
        precision=precision,
    )


def physical_memory_bytes() -> int | None:
    """Total physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _limit_address_space(limit_bytes: int | None) -> None:
    # A model that needs more memory than the machine has then fails with a clean allocation
    # error in this child instead of being killed by the kernel's OOM killer (or swapping).
    if limit_bytes:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or limit_bytes < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def _child(queue: Any, limit_bytes: int | None, *args: Any) -> None:
    try:
        _limit_address_space(limit_bytes)
        queue.put(("ok", asdict(_measure(*args))))
    except MemoryError:
        queue.put(("error", f"out of memory (more than the {limit_bytes / 2**30:.0f} GiB allowed)"))
    except BaseException as error:  # report any failure to the parent instead of dying silently
        text = f"{type(error).__name__}: {error}"
        if "can't allocate memory" in text or "out of memory" in text.lower():
            limit = f"more than the {limit_bytes / 2**30:.0f} GiB allowed" if limit_bytes else "allocation failed"
            text = f"out of memory ({limit})"
        queue.put(("error", text))


def profile_model(model_name: str, model_args: dict[str, Any], shape: DataShape, batch: int = 16,
                  warmup: int = 1, repeats: int = 3, device: str = "auto",
                  threads: int | None = None, isolate: bool = True,
                  memory_limit_bytes: int | None = None, precision: str = "32-true") -> ProfileRow:
    """Measure one model; in a fresh child process when `isolate` (own peak memory).

    On the CPU the child's address space is capped at `memory_limit_bytes` (default: 90% of the
    machine's physical memory), so a model that does not fit fails with a BenchError saying so.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    args = (model_name, model_args, DataShape(*shape), batch, warmup, repeats, device, threads, precision)
    if not isolate:
        return _measure(*args)
    if memory_limit_bytes is None and device == "cpu":
        total = physical_memory_bytes()
        memory_limit_bytes = int(total * 0.9) if total else None
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, memory_limit_bytes if device == "cpu" else None, *args))
    process.start()
    while True:  # poll: a child killed from outside (OOM killer, signal) never answers
        try:
            status, payload = queue.get(timeout=1.0)
            break
        except queue_module.Empty:
            if not process.is_alive():
                status, payload = "error", f"the measuring process died (exit code {process.exitcode})"
                break
    process.join()
    if status != "ok":
        raise BenchError(f"Profiling {model_name} at shape {tuple(shape)} with batch {batch} failed: {payload}")
    return ProfileRow(**payload)
