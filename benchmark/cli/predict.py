"""`bench predict` (a finished run's test forecasts as netCDF) and `bench ensemble` (its test split
scored as an ensemble, stored in its record). Both load the run's best checkpoint (`benchmark.run.finished_run`)."""


from __future__ import annotations

from pathlib import Path

import typer

from benchmark.cli.common import console, friendly_errors
from benchmark.core.errors import BenchError


def _device(accelerator: str) -> str:
    from benchmark.run.runner import run_device

    return run_device(accelerator)


def predict_command(run_id: str, results: Path, out: Path | None, accelerator: str) -> Path:
    """Write the whole test split's forecasts of `run_id` (default `results/<run_id>/forecasts.nc`) and
    print where, how large, and how long the forward passes took."""
    from benchmark.present.export import FORECASTS_NAME, forecast_dataset, predict_split, write_forecasts
    from benchmark.run.finished_run import load_finished_run

    with console.status(f"loading {run_id} ..."):
        run = load_finished_run(results, run_id)
    config = run.record.config
    device = _device(accelerator)
    with console.status(f"predicting the {len(run.data.test)} test windows of {config.dataset} ..."):
        forecasts, seconds = predict_split(run.model, run.data, int(config.train["batch_size"]), device)
    attrs = {"run_id": run_id, "model": config.model, "dataset": config.dataset, "seed": config.seed,
             "checkpoint": str(run.record.best.checkpoint or "none (nothing to train)"),
             "source": "diffuma-bench `bench predict`"}
    path = Path(out) if out is not None else run.run_dir / FORECASTS_NAME
    size = write_forecasts(forecast_dataset(forecasts, run.data, attrs), path)
    console.print(f"{path}: {forecasts.shape[0]} forecasts of {forecasts.shape[1]} frames "
                  f"({' x '.join(map(str, forecasts.shape[2:]))}), {size / 2**20:.2f} MiB; forward passes "
                  f"{seconds:.1f} s on {device}.", highlight=False, soft_wrap=True)
    limit = config.train.get("limit_test_batches")
    if limit is not None:
        console.print(f"Note: the record's test metrics cover its first {limit} test batches "
                      f"(train.limit_test_batches); the file holds all {forecasts.shape[0]} windows.")
    return path


def ensemble_command(run_id: str, results: Path, members: int, seed: int, ensemble_t: int | None,
                     ensemble_steps: int | None, accelerator: str) -> dict:
    """Score `run_id`'s test split (the batches its record's test covers) as an ensemble of `members`
    and store the scores in its record under `ensemble` (replacing an earlier ensemble evaluation)."""
    from benchmark.results.records import write_record
    from benchmark.run.finished_run import load_finished_run
    from benchmark.run.training import ForecastDataModule
    from benchmark.scoring.ensemble import evaluate_ensemble, write_members
    from benchmark.scoring.evaluation import predictions_to_keep

    if members < 2:
        raise BenchError(f"--members {members}: an ensemble needs at least 2 members (one member is the "
                         "deterministic forecast, whose CRPS is its MAE).")
    with console.status(f"loading {run_id} ..."):
        run = load_finished_run(results, run_id)
    config = run.record.config
    options = {key: value for key, value in (("t_start", ensemble_t), ("steps", ensemble_steps)) if value is not None}
    model_config = getattr(run.model, "config", None)
    for key, field in (("t_start", "ensemble_t"), ("steps", "ensemble_steps")):
        if key not in options and hasattr(model_config, field):
            options[key] = getattr(model_config, field)
    device = _device(accelerator)
    run.model.to(device)
    loader = ForecastDataModule(run.data, int(config.train["batch_size"])).test_dataloader()
    kind = "zonal" if run.data.lat is not None else "radial"
    limit = config.train["limit_test_batches"]
    scored = len(loader.dataset) if limit is None else min(len(loader.dataset), int(limit) * int(loader.batch_size))
    # the first of the samples the run stored (bench plot's prediction grid), for the members figure
    keep = int(predictions_to_keep(scored, max(1, int(config.train.get("stored_predictions", 1))))[0])
    kept: dict = {}
    with console.status(f"sampling {members} members for the test split of {config.dataset} ..."):
        try:
            scores = evaluate_ensemble(run.model, loader, run.data.normalizer, kind, members, seed=seed,
                                       device=device, limit_batches=limit, model_name=config.model,
                                       keep=keep, kept_out=kept, **options)
        except ValueError as error:
            raise BenchError(f"{config.model} cannot sample this ensemble: {error}.") from None
    scores["device"] = device
    scores["members_file"] = write_members(run.run_dir, kept) if kept else None
    run.record.ensemble = scores
    write_record(results, run.record)
    single = run.record.test.normalized
    ens = scores["normalized"]
    console.print(f"{run_id}: {members} members ({', '.join(f'{k}={v}' for k, v in options.items())}, seed {seed}) "
                  f"in {scores['sample_seconds']:.1f} s of sampling ({scores['seconds']:.1f} s in all) on {device}. "
                  f"Normalized: CRPS {ens['crps']:.4g} (single pass: MAE {single.mae:.4g}), ensemble-mean MSE "
                  f"{ens['ens_mse']:.4g} (single pass: MSE {single.mse:.4g}), spread/skill "
                  f"{_or_dash(ens['spread_skill'])}, detail ratio members {_or_dash(scores['detail_ratio']['members'])}"
                  f" / mean {_or_dash(scores['detail_ratio']['mean'])}. Stored in its record under `ensemble`.",
                  highlight=False, soft_wrap=True)
    return scores


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@friendly_errors
def predict(
    run_id: str = typer.Argument(..., help="The run's id (its folder under --results)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path | None = typer.Option(None, "--out", help="The netCDF file (default: <results>/<run_id>/forecasts.nc)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto (CUDA when present), cpu or gpu."),
) -> None:
    """A finished run's forecasts of the whole test split as netCDF (WeatherBench 2 layout; CHDL as frames).

    Loads the run's best checkpoint, the weights its test metrics were computed with; physical units.
    """
    from benchmark.cli.predict import predict_command

    predict_command(run_id, results, out, accelerator)


@friendly_errors
def ensemble(
    run_id: str = typer.Argument(..., help="The run's id (its folder under --results)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    members: int = typer.Option(8, "--members", "-n", help="Ensemble size N (at least 2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the members' noise."),
    ensemble_t: int | None = typer.Option(None, "--ensemble-t", help="Noise level (diffusion step) the single pass "
                                          "is noised to (default: the model's ensemble_t)."),
    ensemble_steps: int | None = typer.Option(None, "--ensemble-steps", help="DDIM steps back to a clean forecast "
                                              "(default: the model's ensemble_steps)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto (CUDA when present), cpu or gpu."),
) -> None:
    """Score a finished DIFFUMA run's test split as an ensemble: fair CRPS, spread/skill, rank histogram.

    The members differ only in diffusion noise (`DIFFUMA.sample_ensemble`); the scores go into the run's
    record under `ensemble` (the run id does not change) and reach `bench table --metrics crps,spread_skill`.
    """
    from benchmark.cli.predict import ensemble_command

    ensemble_command(run_id, results, members, seed, ensemble_t, ensemble_steps, accelerator)
