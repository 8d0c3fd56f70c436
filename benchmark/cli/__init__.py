"""`bench`: the command line. This module holds the typer app and only dispatches: each command lives in the
module of its group (`run`: run, status; `table`: table, claims; `models`: models, datasets, check-model, profile;
`reproduce`; `plot`; `predict`: predict, ensemble; `report`; `data`: the `bench data` sub-app), which parses, calls
one library function, and renders with rich.

Heavy imports (torch, Lightning, the models) happen inside the commands so that `bench --help`
answers at once.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from benchmark.cli import models, plot, predict, report, reproduce, run, table
from benchmark.cli.common import friendly_errors
from benchmark.cli.data import data_app


class _PluginOptionAnywhere(TyperGroup):
    """Takes the global `--plugin` after the command name too: `bench run --plugin my_model.py ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _plugin_options_first(args))


def _plugin_options_first(args: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":
            rest += args[i:]
            break
        if args[i] == "--plugin" and i + 1 < len(args):
            front += args[i:i + 2]
            i += 2
            continue
        (front if args[i].startswith("--plugin=") else rest).append(args[i])
        i += 1
    return front + rest


app = typer.Typer(
    name="bench",
    help="diffuma-bench: train, evaluate and tabulate spatio-temporal prediction models.",
    cls=_PluginOptionAnywhere,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")


@app.callback()
@friendly_errors
def _global_options(
    plugin: list[str] = typer.Option(
        [], "--plugin", metavar="FILE_OR_MODULE",
        help="A .py file or importable module that registers models or datasets when imported (repeatable, "
             "before or after the command name). Kept in $DIFFUMA_BENCH_PLUGINS, which --jobs workers read."),
) -> None:
    if plugin:
        from benchmark.registry.plugins import use_plugins

        use_plugins(plugin)


app.command()(run.run)
app.command()(table.table)
app.command()(models.models)
app.command()(models.profile)
app.command("check-model")(models.check_model)
app.command()(models.datasets)
app.command()(table.claims)
app.command()(reproduce.reproduce)
app.command()(run.status)
app.command()(plot.plot)
app.command()(predict.predict)
app.command()(predict.ensemble)
app.command()(report.report)


def main() -> None:
    """Entry point for `python -m benchmark`."""
    app()
