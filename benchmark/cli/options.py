"""Options and parsers that several `bench` commands share: the SLURM options of `bench run` and `bench reproduce`, the
--set/--epochs/--eval-at layer of a run's configuration, the enums of the table options."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from benchmark.core.errors import BenchError


def int_list(text: str | None, what: str) -> list[int]:
    """`1,10,20` as `[1, 10, 20]` (empty for none); a BenchError naming the option `what` otherwise."""
    if not text:
        return []
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BenchError(f"{what} must be comma-separated integers such as 1,10,20 (got {text!r}).") from None


def pred_len_list(text: str) -> list[int]:
    """`--pred-lens 3,6,12` as `[3, 6, 12]`; a ConfigError for anything but comma-separated whole numbers
    (`plan_runs` checks that they are positive and distinct)."""
    from benchmark.core.errors import ConfigError

    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--pred-lens must be comma-separated prediction lengths in frames, such as 3,6,12 "
                          f"(got {text!r}).") from None


class TableFormat(str, Enum):
    csv = "csv"
    latex = "latex"
    markdown = "markdown"
    all = "all"


class Space(str, Enum):
    normalized = "normalized"
    physical = "physical"


class Launcher(str, Enum):
    local = "local"
    slurm = "slurm"


class SlurmExecutor(str, Enum):
    slurm = "slurm"
    local = "local"


# The SLURM options of `bench run` and `bench reproduce` (one definition, used by both commands)
SLURM = "SLURM (with --launcher slurm)"
LAUNCHER = typer.Option(Launcher.local, "--launcher",
                         help="local: run here; slurm: one SLURM job per run via submitit (pip install -e .\\[slurm]).")
PARTITION = typer.Option(None, "--partition", help="The partition the jobs go to.", rich_help_panel=SLURM)
TIME = typer.Option(None, "--time", help="Wall-clock limit of each job (required): minutes, or HH:MM:SS.",
                     rich_help_panel=SLURM)
GPUS = typer.Option(None, "--gpus-per-node", help="GPUs per node (default: train.devices; 0 for runs with "
                                                   "train.accelerator=cpu).", rich_help_panel=SLURM)
NODES = typer.Option(None, "--nodes", help="Nodes per job (default: train.num_nodes, which it must equal).",
                      rich_help_panel=SLURM)
CPUS = typer.Option(None, "--cpus-per-task", help="CPU cores per task (a job has train.devices tasks per node).",
                     rich_help_panel=SLURM)
MEM = typer.Option(None, "--mem", help="Memory per node, e.g. 64G.", rich_help_panel=SLURM)
ACCOUNT = typer.Option(None, "--account", help="The account the jobs are charged to.", rich_help_panel=SLURM)
SBATCH = typer.Option([], "--sbatch", metavar="KEY=VALUE", rich_help_panel=SLURM,
                       help="An extra #SBATCH option (repeatable): --sbatch qos=high, --sbatch exclusive.")
ARRAY = typer.Option(None, "--array-parallelism", metavar="N", rich_help_panel=SLURM,
                      help="Submit the pending runs as one job array, N of them running at once (default: one "
                           "job per run).")
WAIT = typer.Option(False, "--wait", rich_help_panel=SLURM,
                     help="Wait for the jobs and report like a local run (exit 1 if one failed); by default "
                          "return once they are submitted.")
EXECUTOR = typer.Option(SlurmExecutor.slurm, "--slurm-executor", rich_help_panel=SLURM,
                         help="slurm: sbatch. local: submitit's LocalExecutor runs the same jobs as subprocesses "
                              "of this machine (no SLURM; for tests).")


def slurm_options(launcher: Launcher, executor: SlurmExecutor, partition: str | None, time: str | None,
                   gpus_per_node: int | None, nodes: int | None, cpus_per_task: int | None, mem: str | None,
                   account: str | None, sbatch: list[str], array_parallelism: int | None, wait: bool) -> Any:
    """The `SlurmOptions` of `--launcher slurm`; None with `--launcher local`, which takes none of them."""
    from benchmark.core.errors import ConfigError
    from benchmark.run.launchers import SlurmOptions

    if launcher is Launcher.slurm:
        return SlurmOptions.from_cli(executor.value, partition, time, gpus_per_node, nodes, cpus_per_task, mem,
                                     account, sbatch, array_parallelism)
    given = [flag for flag, value in (("--partition", partition), ("--time", time), ("--gpus-per-node", gpus_per_node),
                                      ("--nodes", nodes), ("--cpus-per-task", cpus_per_task), ("--mem", mem),
                                      ("--account", account), ("--sbatch", sbatch or None),
                                      ("--array-parallelism", array_parallelism), ("--wait", wait or None),
                                      ("--slurm-executor", None if executor is SlurmExecutor.slurm else executor))
             if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to SLURM jobs: add --launcher slurm, or leave "
                          f"{'it' if len(given) == 1 else 'them'} out to run here.")
    return None


def run_overrides(set_: list[str], epochs: int | None = None, eval_at: str | None = None,
                   data_root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The command-line layer of a run's configuration: `--set`, then `--epochs`, `--eval-at`, `--data-root`."""
    from benchmark.run.config import parse_overrides

    overrides = parse_overrides(set_)
    if epochs is not None:
        overrides.setdefault("train", {})["epochs"] = epochs
    if eval_at is not None:
        overrides.setdefault("train", {})["eval_at"] = int_list(eval_at, "--eval-at")
    if data_root is not None:
        overrides.setdefault("data", {})["root"] = str(data_root)
    return overrides
