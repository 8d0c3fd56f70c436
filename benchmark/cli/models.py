"""`bench models`, `bench datasets`, `bench check-model`, `bench profile`: what is registered and how it measures
(`benchmark.registry`, `benchmark.run.profiling`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table as RichTable

from benchmark.cli.common import console, error_console, friendly_errors, plain_width, whole_column
from benchmark.core.errors import BenchError


@friendly_errors
def models(
    shape: str = typer.Option("12,1,32,64", "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W."),
    profile: str = typer.Option("paper", "--profile", help="Whose model sizes to count (smoke/quick/paper)."),
    dataset: str = typer.Option("weatherbench:t2m", "--dataset", help="Dataset whose profile entries apply."),
    wide: bool = typer.Option(False, "--wide", help="Add each model's summary (wrapped) however narrow the terminal."),
) -> None:
    """List the registered models with their parameter count at a shape."""
    from benchmark.registry import create_model, get_model_spec, list_models
    from benchmark.registry.model_api import count_parameters
    from benchmark.registry.shapes import DataShape
    from benchmark.run.config import resolve_run

    data_shape = DataShape.parse(shape)
    overrides = {"data": {"t_in": data_shape.t_in, "t_out": data_shape.t_out}}
    key = ",".join(str(v) for v in (data_shape.t_in, *data_shape[2:]))
    rows = []
    for name in list_models():
        spec = get_model_spec(name)
        config = resolve_run(profile, name, dataset, 0, overrides)
        count = count_parameters(create_model(name, data_shape, **config.model_args))
        if key in spec.reference_params:
            reference = f"{spec.reference_params[key] / 1e6:.2f}M"
        else:  # a reference published at another shape only (PastNet: its original 64x64 setting)
            reference = ", ".join(f"{v / 1e6:.2f}M at {k}" for k, v in spec.reference_params.items()) or "–"
        rows.append((name, spec.family, spec.paper_name, f"{count / 1e6:.2f}M" if count else "0", reference,
                     spec.summary))
    rich_table = RichTable(title=f"Registered models at shape {shape} ({profile} profile)")
    headers = ("name", "family", "paper name", "parameters", "reference", "summary")
    needs = [plain_width([r[i] for r in rows], h) + 3 for i, h in enumerate(headers)]
    needs[4] = max(len(word) for r in rows for word in [*r[4].split(), "reference"]) + 3  # wraps at its spaces
    room = console.width - 1 - sum(needs[i] for i in (0, 2, 3, 4))
    shown = [0, *([1] if room >= needs[1] else []), 2, 3, 4]
    room -= needs[1] if 1 in shown else 0
    if not wide and room >= 27:  # the summary is free text: cut to one line; --wide lists it in full below
        shown.append(5)
    for i in shown:
        justify = "right" if headers[i] in ("parameters", "reference") else "left"
        if i == 4:
            rich_table.add_column("reference", justify=justify, min_width=needs[4] - 3)
        elif i == 5:  # a fixed width: rich never squeezes the other columns to make room for it
            rich_table.add_column("summary", no_wrap=True, overflow="ellipsis", width=min(60, room - 3))
        else:
            whole_column(rich_table, headers[i], [r[i] for r in rows], justify=justify)
    for row in rows:
        rich_table.add_row(*(row[i] for i in shown))
    console.print(rich_table)
    if wide:
        for row in rows:
            console.print(f"[cyan]{row[0]}[/] ({row[1]}): {row[5]}", highlight=False)
    elif len(shown) < len(headers):
        hidden = " and ".join(headers[i] for i in range(len(headers)) if i not in shown)
        console.print(f"({hidden} left out at this width: `bench models --wide` adds them)", highlight=False)


@friendly_errors
def profile(
    models_: str = typer.Option("all", "--models", "-m", help="'all' or a comma-separated list of model names."),
    shape: str = typer.Option("12,1,32,64", "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W."),
    profile_name: str = typer.Option("paper", "--profile", help="Whose model sizes to measure."),
    dataset: str = typer.Option("weatherbench:t2m", "--dataset", help="Dataset whose profile entries apply."),
    batch: int = typer.Option(16, "--batch", help="Batch size of the timed steps."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed repetitions first."),
    repeats: int = typer.Option(3, "--repeats", help="Timed repetitions (the median is reported)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    precision: str = typer.Option("32-true", "--precision",
                                  help="Comma-separated training precisions to measure side by side: 32-true, "
                                       "bf16-mixed, 16-mixed (CUDA); with two or more, the speed ratios too."),
    out: Path = typer.Option(Path("tables"), "--out", help="Folder for profile.csv."),
    set_: list[str] = typer.Option([], "--set", help="Override a model setting: model.key=value."),
    against: list[str] = typer.Option([], "--against",
                                      help="Also measure each model with these settings on top of --set "
                                           "(model.key=value, repeatable), e.g. an old backend, and print how "
                                           "many times faster and leaner the --set version is, in the same run."),
) -> None:
    """Measure parameters, FLOPs, step time, throughput and peak memory of each model."""
    import pandas as pd

    from benchmark.registry import resolve_model_names
    from benchmark.registry.shapes import DataShape
    from benchmark.run.config import PRECISIONS, parse_overrides, resolve_run
    from benchmark.run.profiling import profile_model

    precisions = list(dict.fromkeys(p.strip() for p in precision.split(",") if p.strip()))
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise BenchError(f"--precision {precision!r}: choose from {', '.join(PRECISIONS)} (comma-separated, "
                         "e.g. --precision 32-true,bf16-mixed).")
    data_shape = DataShape.parse(shape)
    overrides = parse_overrides(set_)
    overrides.setdefault("data", {}).update(t_in=data_shape.t_in, t_out=data_shape.t_out)
    against_overrides = parse_overrides(against)
    if set(against_overrides) - {"model"}:
        raise BenchError(f"--against {' '.join(against)!r}: only model settings can be compared "
                         "(--against model.key=value).")
    variants = {"": {}, **({"against": against_overrides["model"]} if against else {})}
    rows: list[dict[str, Any]] = []
    failures: dict[tuple[str, str, str], str] = {}
    path = out / "profile.csv"
    for name in resolve_model_names(models_):
        config = resolve_run(profile_name, name, dataset, 0, overrides)
        for mode in precisions:
            for variant, settings in variants.items():
                label = f"{name} ({mode}{', against' if variant else ''})"
                with console.status(f"profiling {label} ..."):
                    try:  # one model that does not fit (memory, shape) must not lose the others' numbers
                        measured = profile_model(name, {**config.model_args, **settings}, data_shape, batch, warmup,
                                                 repeats, device, precision=mode)
                    except BenchError as error:
                        failures[(name, mode, variant)] = str(error).split(" failed: ")[-1]
                        error_console.print(f"[red]✗[/] {label}: {failures[(name, mode, variant)]}", highlight=False)
                        rows.append({"model": name, "precision": mode, "variant": variant,
                                     "note": failures[(name, mode, variant)]})
                        continue
                rows.append({**vars(measured), "variant": variant, "note": ""})
                console.print(f"{label}: {measured.train_step_seconds:.3f} s/step, "
                              f"peak {measured.peak_memory_mib:.0f} MiB")
                _write_csv_atomic(pd.DataFrame(rows), path)  # after every model: an interrupted profile keeps rows
    if len(failures) == len(rows):
        raise BenchError(f"No model could be profiled at shape {shape}: " +
                         "; ".join(f"{k[0]} ({k[1]}): {v}" for k, v in failures.items()))
    _write_csv_atomic(pd.DataFrame(rows), path)
    _print_profile(rows, shape, batch, profile_name, precisions, bool(failures))
    if len(precisions) > 1:
        _print_precision_ratios([r for r in rows if not r["variant"]], precisions)
    if against:
        _print_against_ratios(rows, against)
    first = next(r for r in rows if not r["note"])
    console.print(f"memory: {first['memory_kind']}; wrote {path}")


def _print_profile(rows: list[dict[str, Any]], shape: str, batch: int, profile_name: str, precisions: list[str],
                   failed: bool) -> None:
    """The profile as a table whose names and numbers stay whole at 80 columns (headers wrap instead)."""
    from rich import box

    first = next(r for r in rows if not r["note"])
    several = len(precisions) > 1
    cells: dict[str, list[str]] = {"model": [], "precision": [], "params": [], "GFLOP": [], "step s": [],
                                   "infer/s": [], "MiB": []}
    for row in rows:
        cells["model"].append(row["model"] + (" (against)" if row.get("variant") else ""))
        cells["precision"].append(row.get("precision", ""))
        numbers = ("–",) * 5 if row["note"] else (
            f"{row['parameters'] / 1e6:.2f}M", f"{row['gflops_per_sample']:.2f}", f"{row['train_step_seconds']:.3f}",
            f"{row['inference_samples_per_second']:.1f}", f"{row['peak_memory_mib']:.0f}")
        for header, text in zip(list(cells)[2:], numbers, strict=True):
            cells[header].append(text)
    if not several:
        del cells["precision"]
    rich_table = RichTable(title=f"Cost at shape {shape}, batch {batch}, {profile_name} sizes, {first['device']}, "
                                 f"{first['threads']} threads", box=box.SIMPLE_HEAD)
    for header, column in cells.items():
        whole_column(rich_table, header, column, justify="left" if header in ("model", "precision") else "right")
    if failed:
        rich_table.add_column("note", overflow="fold")
    for i, row in enumerate(rows):
        rich_table.add_row(*(column[i] for column in cells.values()),
                           *([f"[red]{row['note']}[/]" if row["note"] else ""] if failed else []))
    console.print(rich_table)
    console.print("GFLOP: forward pass of one sample; step s: one training step (median); infer/s: samples per "
                  "second at inference; MiB: peak memory.", highlight=False)


def _print_precision_ratios(rows: list[dict[str, Any]], precisions: list[str]) -> None:
    """Per model: how many times faster each precision trains and infers than the first one listed."""
    reference = precisions[0]
    measured = {(r["model"], r["precision"]): r for r in rows if not r["note"]}
    rich_table = RichTable(title=f"Speed relative to {reference} (measured in this run; > 1 = faster)")
    rich_table.add_column("model", no_wrap=True)
    for mode in precisions[1:]:
        rich_table.add_column(f"{mode} train", justify="right", no_wrap=True)
        rich_table.add_column(f"{mode} infer", justify="right", no_wrap=True)
    for model in dict.fromkeys(r["model"] for r in rows):
        base = measured.get((model, reference))
        cells = []
        for mode in precisions[1:]:
            other = measured.get((model, mode))
            if base is None or other is None:
                cells += ["–", "–"]
                continue
            train = (f"{base['train_step_seconds'] / other['train_step_seconds']:.2f}x"
                     if other["train_step_seconds"] > 0 and base["train_step_seconds"] > 0 else "–")
            infer = f"{other['inference_samples_per_second'] / base['inference_samples_per_second']:.2f}x"
            cells += [train, infer]
        rich_table.add_row(model, *cells)
    console.print(rich_table)


def _print_against_ratios(rows: list[dict[str, Any]], against: list[str]) -> None:
    """Per model and precision: how many times faster (step, inference) and leaner the --set version is."""
    measured = {(r["model"], r["precision"], r["variant"]): r for r in rows if not r["note"]}
    rich_table = RichTable(title=f"Relative to --against {' '.join(against)} (measured in this run; > 1 = better)")
    for header in ("model", "precision", "train speed-up", "infer speed-up", "memory ratio"):
        rich_table.add_column(header, justify="left" if header in ("model", "precision") else "right", no_wrap=True)
    for model, mode in dict.fromkeys((r["model"], r["precision"]) for r in rows):
        new, old = measured.get((model, mode, "")), measured.get((model, mode, "against"))
        if new is None or old is None:
            rich_table.add_row(model, mode, "–", "–", "–")
            continue
        rich_table.add_row(model, mode, _ratio(old["train_step_seconds"], new["train_step_seconds"]),
                           _ratio(new["inference_samples_per_second"], old["inference_samples_per_second"]),
                           _ratio(old["peak_memory_mib"], new["peak_memory_mib"]))
    console.print(rich_table)


def _ratio(numerator: float, denominator: float) -> str:
    """`numerator / denominator` as "1.23x", or "–" when either is not positive."""
    return f"{numerator / denominator:.2f}x" if numerator > 0 and denominator > 0 else "–"


def _write_csv_atomic(frame: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temporary, index=False)
    temporary.replace(path)


@friendly_errors
def check_model(
    name: str = typer.Argument(..., metavar="NAME", help="A registered model name (with --plugin: yours too)."),
    shape: list[str] = typer.Option([], "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W; repeatable "
                                                       "(default: 3->5 and 4->2 frames, C=1 and 2, 16x32)."),
    profile: str = typer.Option("smoke", "--profile", help="Whose model sizes to build (smoke/quick/paper or YAML)."),
    dataset: str = typer.Option("synthetic-weather:t2m", "--dataset", help="Dataset whose profile entries apply."),
) -> None:
    """Check a model against the contract (output shape, gradients, determinism); exit 1 if it fails."""
    from benchmark.registry.contract import DEFAULT_SHAPES, run_contract
    from benchmark.registry.shapes import DataShape
    from benchmark.run.config import resolve_run

    shapes = [DataShape.parse(s) for s in shape] or list(DEFAULT_SHAPES)
    overrides = {"data": {"t_in": shapes[0].t_in, "t_out": shapes[0].t_out}}
    model_args = resolve_run(profile, name, dataset, 0, overrides).model_args
    with console.status(f"checking {name} ..."):
        results = run_contract(name, model_args, shapes)
    rich_table = RichTable(title=f"Model contract of {name} ({profile} sizes)")
    rich_table.add_column("check", no_wrap=True)
    rich_table.add_column("result", no_wrap=True)
    rich_table.add_column("what fails", overflow="fold")
    for check, failures in results:
        rich_table.add_row(check.label, "[red]FAIL[/]" if failures else "[green]pass[/]", "\n".join(failures))
    console.print(rich_table)
    failed = [(check, failures) for check, failures in results if failures]
    if not failed:
        console.print(f"[green]✓[/] {name} passes all {len(results)} checks of the model contract.")
        return
    error_console.print(f"[red]✗[/] {name} fails {len(failed)} of {len(results)} checks of the model contract:",
                        highlight=False)
    for check, failures in failed:
        error_console.print(f"  {check.label}: {'; '.join(failures)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@friendly_errors
def datasets() -> None:
    """List the registered datasets and their tasks."""
    from benchmark.data.registry import list_datasets

    rich_table = RichTable(title="Registered datasets")
    for column in ("name", "tasks", "default tasks", "summary"):
        rich_table.add_column(column)
    for spec in list_datasets():
        rich_table.add_row(spec.name, ", ".join(spec.tasks) or "–", ", ".join(spec.default_tasks) or "–", spec.summary)
    console.print(rich_table)
