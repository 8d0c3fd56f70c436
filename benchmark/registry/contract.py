"""The model contract: what every registered model must do, checked one model at a time.

Each check builds the model from the registry (with the given hyper-parameters) and returns a list
of failures in plain words, empty when the model passes. The test-suite runs them over every
registered model (tests/test_model_contract.py, timm's tests/test_models.py pattern) and
`bench check-model NAME` runs them on any model, plugins included:

* interface: the builder returns an `nn.Module` with the methods the runner calls
  (`plan_schedule`, `selective_scan_backend`; subclass `ForecastModel` for their defaults) and the
  registered hyper-parameter defaults are plain JSON (profiles and run records hold them);
* output shape: `forward` maps `(B, T_in, C, H, W)` to finite `(B, T_out, C, H, W)` (a model with
  `uses_climatology` also gets a random climatology of the target frames);
* gradients: `training_loss` returns a finite scalar and a gradient reaches every trainable
  parameter within a few optimizer steps (not all at the first: a zero-initialised gate, as in
  DiT's adaLN-Zero, opens the layers behind it one step at a time);
* determinism: two builds with the same seed give the same forecast and the same training loss.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.registry import create_model, get_model_spec
from benchmark.registry.model_api import forecast
from benchmark.registry.plugins import describe_error
from benchmark.registry.shapes import DataShape

# T_in < T_out and T_in > T_out, one and two channels, on small frames that every built-in allows.
DEFAULT_SHAPES = (
    DataShape(3, 5, 1, 16, 32),
    DataShape(4, 2, 1, 16, 32),
    DataShape(3, 5, 2, 16, 32),
    DataShape(4, 2, 2, 16, 32),
)
GRADIENT_STEPS = 3
BATCH = 2
RUNNER_METHODS = ("plan_schedule", "selective_scan_backend")
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)

CheckFunction = Callable[[str, DataShape, dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Check:
    """One contract check at one data shape."""

    label: str
    function: CheckFunction
    shape: DataShape

    def __call__(self, name: str, model_args: dict[str, Any]) -> list[str]:
        """The failures of model `name` built with `model_args` (empty: it passes)."""
        try:
            return self.function(name, self.shape, model_args)
        except BenchError as error:  # a shape or setting the builder rejects: its message says why
            return [str(error)]
        except Exception as error:  # whatever the model's code raises is a failure to report, not a crash
            return [describe_error(error, skip=(_TORCH_DIR,))]


def shape_text(shape: DataShape) -> str:
    """`3->5 frames, C=1, 16x32`."""
    return f"{shape.t_in}->{shape.t_out} frames, C={shape.channels}, {shape.height}x{shape.width}"


def contract_checks(shapes: Sequence[DataShape] = DEFAULT_SHAPES) -> list[Check]:
    """The checks of the contract at `shapes`.

    Interface and determinism at the first shape, the output shape at each, and the gradients at
    each distinct (T_in, T_out) with its largest number of channels.
    """
    shapes = [DataShape(*s) for s in shapes]
    widest: dict[tuple[int, int], DataShape] = {}
    for shape in shapes:
        key = (shape.t_in, shape.t_out)
        if key not in widest or shape.channels > widest[key].channels:
            widest[key] = shape
    return [
        Check(f"interface ({shape_text(shapes[0])})", check_interface, shapes[0]),
        *(Check(f"output shape ({shape_text(s)})", check_output_shape, s) for s in shapes),
        *(Check(f"gradients ({shape_text(s)})", check_gradients, s) for s in widest.values()),
        Check(f"deterministic ({shape_text(shapes[0])})", check_determinism, shapes[0]),
    ]


def run_contract(name: str, model_args: dict[str, Any],
                 shapes: Sequence[DataShape] = DEFAULT_SHAPES) -> list[tuple[Check, list[str]]]:
    """Every check of the contract on model `name`, each with its failures."""
    return [(check, check(name, model_args)) for check in contract_checks(shapes)]


def check_interface(name: str, shape: DataShape, model_args: dict[str, Any]) -> list[str]:
    """The builder gives an `nn.Module` with the runner's methods; the defaults are plain JSON."""
    failures = []
    defaults = get_model_spec(name).hyperparameter_defaults()
    try:
        json.dumps(defaults)
    except (TypeError, ValueError) as error:
        failures.append(f"the registered hyper-parameter defaults are not plain JSON ({error}); "
                        "use numbers, strings, booleans, None, lists and dicts")
    model = _build(name, shape, model_args)
    if not isinstance(model, nn.Module):
        return [*failures, f"the builder returned a {type(model).__name__}, not a torch.nn.Module"]
    missing = [m for m in RUNNER_METHODS if not callable(getattr(model, m, None))]
    if missing:
        return [*failures, f"the model has no {', '.join(missing)}: subclass "
                           "benchmark.registry.model_api.ForecastModel, "
                           "which provides the defaults"]
    schedule = model.plan_schedule(100)
    if not isinstance(schedule, dict):
        failures.append(f"plan_schedule(100) returned a {type(schedule).__name__}, not a dict")
    backend = model.selective_scan_backend("cpu")
    if backend is not None and not isinstance(backend, str):
        failures.append(f"selective_scan_backend('cpu') returned {backend!r}, not a string or None")
    return failures


def check_output_shape(name: str, shape: DataShape, model_args: dict[str, Any]) -> list[str]:
    """`forward` maps `(B, T_in, C, H, W)` to finite values of shape `(B, T_out, C, H, W)`."""
    model = _build(name, shape, model_args).eval()
    x, _ = random_batch(shape)
    with torch.no_grad():
        y_hat = forecast(model, x, random_climatology(shape))
    expected = (BATCH, shape.t_out, shape.channels, shape.height, shape.width)
    if not isinstance(y_hat, torch.Tensor):
        return [f"forward returned a {type(y_hat).__name__}, not a tensor of shape {expected}"]
    if tuple(y_hat.shape) != expected:
        return [f"forward returned shape {tuple(y_hat.shape)} for input {tuple(x.shape)}; the contract is "
                f"(B, T_out, C, H, W) = {expected}"]
    if not torch.isfinite(y_hat).all():
        return ["forward returned non-finite values (NaN or inf) at initialisation"]
    return []


def check_gradients(name: str, shape: DataShape, model_args: dict[str, Any]) -> list[str]:
    """`training_loss` is a finite scalar, and a gradient reaches every trainable parameter within a few steps."""
    if not get_model_spec(name).trainable:
        return []  # registered as not trainable: the trainer never calls its loss
    model = _build(name, shape, model_args).train()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        return [f"{name} is registered as trainable but has no trainable parameters "
                "(register it with trainable=False if it learns nothing)"]
    x, y = random_batch(shape)
    optimizer = torch.optim.Adam(params.values(), lr=1e-3)
    reached: set[str] = set()
    for step in range(GRADIENT_STEPS):
        loss, logs = training_loss(model, x, y, step)
        problems = _loss_problems(loss, logs)
        if problems:
            return problems
        optimizer.zero_grad()
        loss.backward()
        not_finite = [n for n, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
        if not_finite:
            return [f"non-finite gradients at step {step} in {_names(not_finite)}"]
        reached |= {n for n, p in params.items() if p.grad is not None and bool(p.grad.any())}
        if len(reached) == len(params):
            return []
        optimizer.step()
    missing = [n for n in params if n not in reached]
    return [f"no gradient reaches {len(missing)} of {len(params)} trainable parameters in {GRADIENT_STEPS} "
            f"optimizer steps of training_loss: {_names(missing)}. A layer that the loss never uses shows up "
            "here: drop it, or freeze it (requires_grad=False)"]


def check_determinism(name: str, shape: DataShape, model_args: dict[str, Any], seed: int = 0) -> list[str]:
    """Two builds under the same seed give the same forecast and, if trainable, the same training loss."""
    runs = [_seeded_run(name, shape, model_args, seed) for _ in range(2)]
    (forecast_a, loss_a), (forecast_b, loss_b) = runs
    failures = []
    if not torch.equal(forecast_a, forecast_b):
        difference = (forecast_a - forecast_b).abs().max().item()
        failures.append(f"two builds with seed {seed} give different forecasts for the same input (largest "
                        f"difference {difference:.3g}): seed every random draw from torch's global generator")
    if loss_a is not None and not torch.equal(loss_a, loss_b):
        failures.append(f"two builds with seed {seed} give different training losses ({loss_a.item():.6g} and "
                        f"{loss_b.item():.6g}) on the same batch")
    return failures


def random_batch(shape: DataShape, batch: int = BATCH, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A reproducible random `(x, y)` pair for data of `shape`."""
    generator = torch.Generator().manual_seed(seed)
    t_in, t_out, c, h, w = shape
    return (torch.randn(batch, t_in, c, h, w, generator=generator),
            torch.randn(batch, t_out, c, h, w, generator=generator))


def random_climatology(shape: DataShape, batch: int = BATCH) -> torch.Tensor:
    """A reproducible random stand-in for the target frames' climatology, `(B, T_out, C, H, W)`: what a model
    with `uses_climatology` is given beside `random_batch`'s input."""
    return random_batch(shape, batch, seed=1)[1]


def training_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[Any, Any]:
    """The loss the trainer optimises: the model's `training_loss`, else the MSE of `forward`."""
    if hasattr(model, "training_loss"):
        return model.training_loss(x, y, step)
    loss = F.mse_loss(model(x), y)
    return loss, {"mse": loss.detach()}


def _build(name: str, shape: DataShape, model_args: dict[str, Any], seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return create_model(name, shape, **model_args)


def _seeded_run(name: str, shape: DataShape, model_args: dict[str, Any], seed: int) -> tuple[torch.Tensor, Any]:
    model = _build(name, shape, model_args, seed).eval()
    x, y = random_batch(shape)
    torch.manual_seed(seed)  # again: a forward pass may draw noise (diffusion sampling, random conditions)
    with torch.no_grad():
        prediction = forecast(model, x, random_climatology(shape))
        if not get_model_spec(name).trainable:
            return prediction, None
        torch.manual_seed(seed)
        loss, _ = training_loss(model.train(), x, y, 0)
    return prediction, loss.detach()


def _loss_problems(loss: Any, logs: Any) -> list[str]:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        return [f"training_loss must return (scalar loss tensor, dict of logs); its loss is {got}"]
    if not torch.isfinite(loss):
        return [f"training_loss returned a non-finite loss ({loss.item()})"]
    if not loss.requires_grad:
        return ["training_loss returned a loss without a gradient (computed under no_grad, or detached)"]
    if not isinstance(logs, dict):
        return [f"training_loss must return (loss, dict of logs); its logs are a {type(logs).__name__}"]
    bad = [k for k, v in logs.items() if not (isinstance(v, int | float) or (isinstance(v, torch.Tensor)
                                                                              and v.numel() == 1))]
    if bad:
        return [f"training_loss logs must be scalars; not so: {', '.join(map(str, bad))}"]
    return []


def _names(names: list[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
