"""`bench reproduce SUITE`: every run a paper's tables need, planned like `bench run`, then all tables.

A suite is a YAML file in `benchmark/suites/` (or any path): the models, the datasets per profile,
the epoch sweep (scored inside the main runs with `train.eval_at`) and the prediction-length sweep
(`pred_lens` for a few models on one dataset). `plan_suite` builds the runs with
`benchmark.run.runner.plan_runs` and the overrides `bench run` would use, so the run ids are those of

    bench run -m MODELS -d DATASET -p PROFILE --seeds S --eval-at <the suite's list>
    bench run -m LENGTH_MODELS -d SWEEP_DATASET -p PROFILE --seeds S --pred-lens <lengths but t_out>

and finished runs are shared with such sweeps (a `bench run` without `--eval-at` is a different
run: `train.eval_at` is part of the run id). `SuitePlan.commands` are those `bench run` commands.

Epoch rule: paper epoch e of the paper's final epoch E_paper maps to round(e * E / E_paper) for a
run of E epochs (halves round up), at least 1, deduplicated. Only the main runs get `--eval-at`;
the length sweep's other lengths are plain `bench run --pred-lens` runs, and its length equal to
the profile's t_out is the main run itself (one run, one id).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.errors import BenchError, ConfigError, UnknownNameError
from benchmark.run.config import RunConfig, deep_merge, yaml_problem

SUITE_DIR = Path(__file__).parents[1] / "suites"
DEFAULT_OUT = Path("tables")


@dataclass(frozen=True)
class SuiteProfile:
    datasets: tuple[str, ...]
    sweep_dataset: str | None
    seconds_per_step: float | None = None  # a measured time per optimizer step, for the estimate
    basis_frames: int = 24  # frames per window (t_in + t_out) of that measurement: steps scale with frames
    time_basis: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    models: tuple[str, ...]
    paper_epochs: tuple[int, ...]
    paper_final_epoch: int
    length_models: tuple[str, ...]
    pred_lens: tuple[int, ...]
    profiles: dict[str, SuiteProfile]
    description: str = ""


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name (`diffuma-paper`) or a suite YAML file by path."""
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = SUITE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise UnknownNameError(f"Unknown suite {name_or_path!r}. Shipped suites: {', '.join(available_suites())}; "
                               "or pass the path of a suite YAML file.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"The suite {path} is not valid YAML ({yaml_problem(error)}). Fix the file, or pass a "
                          f"shipped suite: {', '.join(available_suites())}.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"The suite {path} must be a YAML mapping (name, models, profiles, epoch_sweep, "
                          "length_sweep); see benchmark/suites/diffuma-paper.yaml.")
    try:
        epochs, lengths = raw.get("epoch_sweep") or {}, raw.get("length_sweep") or {}
        profiles = {
            name: SuiteProfile(tuple(values["datasets"]), values.get("sweep_dataset"),
                               values.get("seconds_per_step"), int(values.get("basis_frames", 24)),
                               values.get("time_basis"))
            for name, values in (raw.get("profiles") or {}).items()
        }
        suite = Suite(
            name=str(raw.get("name", path.stem)),
            models=tuple(raw["models"]),
            paper_epochs=tuple(int(e) for e in epochs.get("paper_epochs", [])),
            paper_final_epoch=int(epochs.get("paper_final_epoch") or max(epochs.get("paper_epochs", [1]))),
            length_models=tuple(lengths.get("models", [])),
            pred_lens=tuple(int(n) for n in lengths.get("pred_lens", [])),
            profiles=profiles,
            description=str(raw.get("description", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        what = f"missing key {error}" if isinstance(error, KeyError) else " ".join(str(error).split())
        raise ConfigError(f"The suite {path} is not a valid suite file ({what}); see "
                          "benchmark/suites/diffuma-paper.yaml for the layout.") from None
    unknown = sorted(set(suite.length_models) - set(suite.models))
    if unknown:
        raise ConfigError(f"The suite {path}: length_sweep models {', '.join(unknown)} are not among its models.")
    return suite


def scale_epochs(paper_epochs: tuple[int, ...] | list[int], paper_final_epoch: int, epochs: int) -> list[int]:
    """The paper's epochs mapped onto a run of `epochs`: round(e * epochs / paper_final), >= 1, deduplicated."""
    scaled = {max(1, min(epochs, math.floor(e * epochs / paper_final_epoch + 0.5))) for e in paper_epochs}
    return sorted(scaled)


@dataclass
class SuitePlan:
    """The runs of a suite (each once, in execution order), what each is for, and the `bench run` commands."""

    configs: list[RunConfig]
    roles: dict[str, list[str]]  # run id -> ["main"] / ["main", "length"] / ["length"]
    commands: list[str]
    profile: str
    datasets: list[str]
    sweep_dataset: str | None
    suite: Suite
    notes: list[str] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.configs]


def _select_models(suite: Suite, models: str | None) -> list[str]:
    if models is None or models.strip() in ("", "all"):
        return list(suite.models)
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in suite.models]
    if unknown:
        raise BenchError(f"--models {', '.join(unknown)}: not in the suite {suite.name} "
                         f"({', '.join(suite.models)}).")
    return [m for m in suite.models if m in wanted]


def _command(models: list[str], dataset: str, profile: str, seeds: list[int], eval_at: list[int],
             overrides: dict[str, Any] | None, pred_lens: tuple[int, ...] | None = None) -> str:
    parts = ["bench", "run", "-m", ",".join(models), "-d", dataset, "-p", profile,
             "--seeds", ",".join(map(str, seeds))]
    if eval_at:
        parts += ["--eval-at", ",".join(map(str, eval_at))]
    if pred_lens:
        parts += ["--pred-lens", ",".join(map(str, pred_lens))]
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if not (section == "train" and key == "eval_at"):
                parts += ["--set", f"{section}.{key}={value}"]
    return shlex.join(parts)


def plan_suite_detailed(suite: Suite, profile: str, seeds: list[int], datasets: str | None = None,
                        models: str | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> SuitePlan:
    """Every run of `suite` at `profile` (see the module docstring); `datasets` replaces the profile's list
    (`--dataset` syntax), `models` filters the suite's models."""
    from benchmark.data.registry import resolve_dataset_names
    from benchmark.run.runner import plan_runs

    entry = suite.profiles.get(profile)
    if datasets is None and entry is None:
        raise BenchError(f"The suite {suite.name} has no dataset list for the profile {profile!r} (it has "
                         f"{', '.join(suite.profiles)}); pass --dataset.")
    dataset_names = resolve_dataset_names(datasets if datasets is not None else ",".join(entry.datasets))
    if not dataset_names:
        raise BenchError("No dataset selected.")
    sweep = entry.sweep_dataset if entry is not None else dataset_names[0]
    sweep = sweep if sweep in dataset_names else None
    model_names = _select_models(suite, models)
    length_models = [m for m in model_names if m in suite.length_models]
    seeds = list(seeds) or [0]
    configs: list[RunConfig] = []
    roles: dict[str, list[str]] = {}
    commands: list[str] = []
    notes: list[str] = []

    def add(planned: list[RunConfig], role: str) -> None:
        for config in planned:
            if config.run_id not in roles:
                configs.append(config)
                roles[config.run_id] = []
            if role not in roles[config.run_id]:
                roles[config.run_id].append(role)

    for dataset in dataset_names:
        groups: dict[tuple[tuple[int, ...], int], list[str]] = {}
        for model in model_names:
            base = plan_runs(model, dataset, profile, seeds[:1], overrides)[0]
            eval_at = scale_epochs(suite.paper_epochs, suite.paper_final_epoch, int(base.train["epochs"])) \
                if suite.paper_epochs else []
            groups.setdefault((tuple(eval_at), base.t_out), []).append(model)
        for (eval_at, t_out), group in groups.items():
            run_overrides = deep_merge(overrides or {}, {"train": {"eval_at": list(eval_at)}})
            add(plan_runs(",".join(group), dataset, profile, seeds, run_overrides), "main")
            commands.append(_command(group, dataset, profile, seeds, list(eval_at), overrides))
            in_length = [m for m in group if m in length_models]
            if dataset != sweep or not in_length or not suite.pred_lens:
                continue
            if t_out in suite.pred_lens:  # that length is the main run itself (same overrides, same id)
                add(plan_runs(",".join(in_length), dataset, profile, seeds, run_overrides,
                              pred_lens=[t_out]), "length")
            others = tuple(n for n in suite.pred_lens if n != t_out)
            if others:  # no --eval-at: the epoch tables read the main runs only
                add(plan_runs(",".join(in_length), dataset, profile, seeds, overrides, pred_lens=list(others)),
                    "length")
                commands.append(_command(in_length, dataset, profile, seeds, [], overrides, others))
    if sweep is None and suite.pred_lens:
        notes.append("No length sweep: the profile's sweep dataset is not among the selected datasets.")
    return SuitePlan(configs, roles, commands, profile, dataset_names, sweep, suite, notes)


def plan_suite(suite: Suite, profile: str, seeds: list[int], datasets: str | None = None,
               models: str | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> list[RunConfig]:
    """The runs of `suite` at `profile`, each once (`plan_suite_detailed(...).configs`)."""
    return plan_suite_detailed(suite, profile, seeds, datasets, models, overrides).configs


def describe_suite(plan: SuitePlan, results_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per run (id, model, dataset, t_out, epochs, eval_at, role, finished, steps) and the totals."""
    from benchmark.results.records import is_finished
    from benchmark.run.runner import DataCache, describe_plan

    cache = DataCache()
    rows = []
    for config in plan.configs:
        described = describe_plan(config, cache)
        rows.append({
            "run_id": config.run_id, "model": config.model, "dataset": config.dataset, "seed": config.seed,
            "t_out": config.t_out, "epochs": config.train["epochs"], "eval_at": list(config.train["eval_at"]),
            "role": "+".join(plan.roles[config.run_id]), "finished": is_finished(results_dir, config.run_id),
            "steps": int(described.get("total_steps", 0)), "frames": config.t_in + config.t_out,
        })
    pending = [r for r in rows if not r["finished"]]
    totals: dict[str, Any] = {
        "runs": len(rows), "finished": len(rows) - len(pending), "pending": len(pending),
        "steps": sum(r["steps"] for r in rows), "pending_steps": sum(r["steps"] for r in pending),
    }
    entry = plan.suite.profiles.get(plan.profile)
    if entry is not None and entry.seconds_per_step:
        # a step's cost taken as proportional to the frames of a window (t_in + t_out), as measured at basis_frames
        totals["pending_minutes"] = sum(r["steps"] * r["frames"] / entry.basis_frames for r in pending) \
            * entry.seconds_per_step / 60
        totals["time_basis"] = entry.time_basis or f"{entry.seconds_per_step} s per optimizer step"
    return rows, totals


def render_suite(results_dir: Path, out: Path, plan: SuitePlan, formats: tuple[str, ...] | None = None,
                 space: str = "normalized", data_overrides: dict[str, dict[str, Any]] | None = None,
                 dataset_table: bool = True) -> dict[str, list[Path]]:
    """All of the suite's tables from the records of `plan`'s runs in `results_dir`, into `out`.

    Table 1 (datasets), main, epoch sweep, length sweep, each beside the paper (`*_vs_paper`), the
    significance table (when DIFFUMA and baselines share seeds) and the claims. Only the records of
    `plan`'s runs are read. Returns table name -> paths written; a table without the runs it needs is
    left out (its name is missing from the result).
    """
    from benchmark.analysis import claims, compare, tables
    from benchmark.results.records import load_records, records_to_frame

    formats = formats or tables.FORMATS
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    if dataset_table:
        from benchmark.analysis.dataset_table import dataset_table as build_dataset_table
        from benchmark.analysis.dataset_table import render_dataset_table

        frame = build_dataset_table(",".join(plan.datasets), plan.profile, data_overrides)
        written["datasets"] = render_dataset_table(frame, out, formats, plan.profile)
    records = load_records(results_dir) if Path(results_dir).is_dir() else []
    frame = records_to_frame(records)
    frame = frame[frame["run_id"].isin(set(plan.run_ids))]
    length_ids = {run_id for run_id, roles in plan.roles.items() if "length" in roles}
    sweep_dataset = compare.paper_dataset_of(plan.sweep_dataset or "") or compare.DEFAULT_SWEEP_DATASET
    significance: dict[str | None, Any] = {}  # significance axis -> the tests (claims read them)
    if not frame.empty:
        length_rows = frame[frame["run_id"].isin(length_ids)]
        for name, builder, rows in (("main", tables.main_table, frame),
                                    ("epoch_sweep", tables.epoch_sweep_table, frame),
                                    ("length_sweep", tables.length_sweep_table, length_rows)):
            if rows.empty:
                continue
            built = builder(rows, space=space, profile=plan.profile)
            if built.empty:
                continue
            built, marks = tables.mark_significance(built, rows, Path(results_dir), profile=plan.profile)
            written[name] = tables.render(built, out, formats, suffix=f"_{space}")
            if not marks.empty:
                stem = tables.significance_stem(built)
                written[stem] = tables.render_significance(marks, out, formats, stem=stem)
                significance[tables.TABLE_AXES[name]] = marks
            comparison = compare.compare_with_paper(built, space=space, sweep_dataset=sweep_dataset)
            if not comparison.empty:
                written[f"{name}_vs_paper"] = compare.render(comparison, out, formats, suffix=f"_{space}")
    written["claims"] = claims.render_claims(claims.claims_table(frame, significance=significance), out, formats)
    return written
