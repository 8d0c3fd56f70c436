"""`bench reproduce`: the front end of `benchmark.run.reproduce` (plan, dry-run listing, sweep, tables)."""


from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table as RichTable

from benchmark.cli.common import console, error_console, friendly_errors
from benchmark.cli.options import (
    ACCOUNT,
    ARRAY,
    CPUS,
    EXECUTOR,
    GPUS,
    LAUNCHER,
    MEM,
    NODES,
    PARTITION,
    SBATCH,
    TIME,
    WAIT,
    Launcher,
    SlurmExecutor,
    int_list,
    slurm_options,
)
from benchmark.core.errors import BenchError


def reproduce_command(suite_name: str, profile: str, seeds: list[int], dataset: str | None, models: str | None,
                      results: Path, out: Path | None, data_root: Path | None, jobs: int | None,
                      dry_run: bool, slurm: Any = None, wait: bool = False) -> None:
    """Plan the suite's runs, execute the missing ones (here, or as SLURM jobs with `slurm`: `SlurmOptions`),
    then render its tables. SLURM jobs without `wait`: the tables come when the command is run again."""
    from benchmark.run.reproduce import DEFAULT_OUT, load_suite, plan_suite_detailed, render_suite
    from benchmark.run.runner import execute_sweep, plan_sweep

    suite = load_suite(suite_name)
    overrides = {"data": {"root": str(data_root)}} if data_root is not None else None
    plan = plan_suite_detailed(suite, profile, seeds, dataset, models, overrides)
    out = out if out is not None else DEFAULT_OUT / suite.name
    if dry_run:
        _print_dry_run(plan, results)
        return

    def on_event(kind: str, index: int, config: Any, payload: Any) -> None:
        where = f"[{index + 1}/{len(plan.configs)}] {config.model} on {config.dataset} (seed {config.seed}, " \
                f"T_out {config.t_out})"
        if kind == "start":
            console.print(f"[bold cyan]>[/] {where} ...")
        elif kind == "done" and payload is not None:
            console.print(f"[green]✓[/] {where}: test MSE {payload.test.normalized.mse:.4g}")
        elif kind == "fail":
            error_console.print(f"[red]✗[/] {where} failed: {payload}", highlight=False)

    if slurm is not None:
        submitted, report = submit_and_report(plan.configs, results, slurm, wait, on_event)
        if report is None and any(entry.action != "finished" for entry in submitted):
            console.print(f"The tables need these runs: once `bench status --results {results}` shows them "
                          "finished, run this same `bench reproduce` command again. It skips the finished runs "
                          "(and those still queued) and renders the tables.", highlight=False)
            return
    else:
        sweep = plan_sweep(plan.configs, results, jobs)
        console.print(f"{len(plan.configs)} runs planned, {len(sweep.skipped)} already finished, "
                      f"{len(sweep.pending)} to run{f', {sweep.jobs} at a time' if sweep.jobs > 1 else ''}. "
                      f"Records go to {results}/.")
        report = execute_sweep(sweep, results, progress=False, on_event=on_event) if sweep.pending else None
    written = render_suite(results, out, plan, data_overrides=overrides)
    for name, paths in written.items():
        console.print(f"{name}: {', '.join(str(p) for p in paths)}")
    if report is not None:
        console.print(f"Finished {len(report.finished)}, skipped {len(report.skipped)} (already done), "
                      f"failed {len(report.failed)}.")
        if report.failed:
            raise typer.Exit(code=1)


def submit_and_report(configs: list[Any], results: Path, slurm: Any, wait: bool,
                      on_event: Callable[[str, int, Any, Any], None]) -> tuple[list[Any], Any]:
    """Submit the runs of `configs` as SLURM jobs (`benchmark.run.launchers`) and print what happened; with `wait`,
    wait for them (each run's outcome through `on_event`). Returns the `SubmittedRun`s and the
    `SweepReport` (None without `wait`). Shared by `bench run` and `bench reproduce`."""
    from benchmark.run.launchers import auto_precision_warning, submission_lines, submit_runs, wait_for

    warning = auto_precision_warning(configs)
    if warning:
        error_console.print(f"[yellow]{warning}[/]", highlight=False)
    with console.status("submitting the jobs ..."):
        submitted = submit_runs(configs, results, slurm)
    for line in submission_lines(submitted, results):
        console.print(line, highlight=False)
    if not wait:
        return submitted, None
    waiting = sum(entry.action != "finished" for entry in submitted)
    if waiting:
        console.print(f"Waiting for {waiting} run{'s' if waiting > 1 else ''} (Ctrl-C stops the waiting, not the "
                      "jobs) ...")
    try:
        return submitted, wait_for(submitted, results, on_event)
    except KeyboardInterrupt:
        error_console.print(f"Stopped waiting; the jobs go on. `bench status --results {results}` shows them.",
                            highlight=False)
        raise typer.Exit(code=130) from None


def _print_dry_run(plan: Any, results: Path) -> None:
    from benchmark.run.reproduce import describe_suite

    rows, totals = describe_suite(plan, results)
    table = RichTable(title=f"{plan.suite.name} at the {plan.profile} profile: {totals['runs']} runs "
                            f"({totals['finished']} finished in {results}/)")
    for column in ("run id", "model", "dataset", "seed", "T_out", "epochs", "eval-at", "for", "finished", "steps"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["run_id"], r["model"], r["dataset"], str(r["seed"]), str(r["t_out"]), str(r["epochs"]),
                      ",".join(map(str, r["eval_at"])) or "-", r["role"], "yes" if r["finished"] else "no",
                      str(r["steps"]))
    console.print(table)
    console.print(f"Optimizer steps: {totals['steps']} in all, {totals['pending_steps']} still to run "
                  f"({totals['pending']} runs).")
    if "pending_minutes" in totals:
        console.print(f"Estimated time for the pending runs: ~{totals['pending_minutes']:.0f} min "
                      f"(basis: {totals['time_basis']}; a step taken to cost in proportion to t_in + t_out).")
    else:
        console.print("No time estimate: the suite has no measured time per step for this profile.")
    console.print("The same runs (same ids, shared records) with bench run:")
    for command in plan.commands:
        console.print(f"  {command}", highlight=False, soft_wrap=True)
    for note in plan.notes:
        console.print(note)
    console.print("Dry run: nothing was run or written.")


@friendly_errors
def reproduce(
    suite: str = typer.Argument("diffuma-paper", help="A shipped suite (diffuma-paper) or a suite YAML file."),
    profile: str = typer.Option("quick", "--profile", "-p", help="smoke | quick | paper."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Replace the profile's datasets."),
    models: str | None = typer.Option(None, "--models", "-m", help="Only these of the suite's models."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path | None = typer.Option(None, "--out", help="Tables folder (default tables/<suite>/)."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Override data.root (dataset folder)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Runs at once (as bench run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs, their cost and the bench run commands."),
    launcher: Launcher = LAUNCHER,
    partition: str | None = PARTITION,
    time_: str | None = TIME,
    gpus_per_node: int | None = GPUS,
    nodes: int | None = NODES,
    cpus_per_task: int | None = CPUS,
    mem: str | None = MEM,
    account: str | None = ACCOUNT,
    sbatch: list[str] = SBATCH,
    array_parallelism: int | None = ARRAY,
    wait: bool = WAIT,
    slurm_executor: SlurmExecutor = EXECUTOR,
) -> None:
    """Every run a paper's tables need (shared with `bench run`, finished ones skipped), then all its tables.

    With --launcher slurm the missing runs are submitted as SLURM jobs; the tables follow with --wait,
    or when the same command is run again once `bench status` shows the runs finished.
    """
    from benchmark.cli.reproduce import reproduce_command

    slurm = slurm_options(launcher, slurm_executor, partition, time_, gpus_per_node, nodes, cpus_per_task, mem,
                           account, sbatch, array_parallelism, wait)
    if slurm is not None and jobs is not None:
        raise BenchError("--jobs sets how many runs execute at once here; with --launcher slurm every run is a job "
                         "of its own (--array-parallelism N caps how many run at once).")
    reproduce_command(suite, profile, int_list(seeds, "--seeds") or [0], dataset, models, results, out,
                      data_root, jobs, dry_run, slurm=slurm, wait=wait)
