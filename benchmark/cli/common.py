"""What every `bench` command shares: the consoles and the translation of user errors."""


from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table as RichTable

from benchmark.core.errors import BenchError, BenchWarning

console = Console()
error_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def readable_warnings() -> Iterator[None]:
    """Inside: every `BenchWarning` is printed as one yellow paragraph on stderr (others as usual)."""
    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, BenchWarning):
            error_console.print(f"[yellow]Warning:[/] {message}", highlight=False, soft_wrap=True)
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", BenchWarning)
        warnings.showwarning = show
        yield


def require_run_records(results: Path, what: str) -> None:
    """A `BenchError` saying what to run first when `results` is missing or holds no run record;
    `what` completes "... first; `what`" (what the command needs the records for)."""
    from benchmark.results.records import RECORD_NAME

    first = "Run `bench run --models all --dataset synthetic-weather --profile quick` (or `bench reproduce`) first"
    if not Path(results).is_dir():
        raise BenchError(f"There is no results folder {results}/ (it does not exist). {first}, or pass --results "
                         "with the folder the runs were written to.")
    if not any(Path(results).glob(f"*/{RECORD_NAME}")):
        raise BenchError(f"No run records in {results}/: it holds no run record (*/{RECORD_NAME}). {first}; {what}.")


def check_test(test: str, adjust: str) -> None:
    """A `BenchError` naming the choices when --test or --adjust is not one of them."""
    from benchmark.analysis.significance import ADJUSTMENTS, TESTS

    if test not in TESTS:
        raise BenchError(f"--test {test!r} is not a significance test here: choose one of {', '.join(TESTS)}.")
    if adjust not in ADJUSTMENTS:
        raise BenchError(f"--adjust {adjust!r} is not an adjustment here: choose holm (family-wise error) or bh "
                         "(Benjamini-Hochberg).")


def friendly_errors(command: F) -> F:
    """Print a `BenchError` as one red paragraph (no traceback) and exit with status 2; print
    `BenchWarning`s as yellow paragraphs."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with readable_warnings():
                return command(*args, **kwargs)
        except BenchError as error:
            error_console.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def plain_width(cells: Any, header: str = "") -> int:
    """Width a column needs so that no cell folds: its longest cell, its header's longest word."""
    from rich.text import Text

    widths = [Text.from_markup(str(c)).cell_len for c in cells]
    return max([*widths, *(len(word) for word in header.split()), 1])


def whole_column(table: RichTable, header: str, cells: Any, **kwargs: Any) -> None:
    """A column of names or numbers: as wide as its content, never folded or cut."""
    table.add_column(header, min_width=plain_width(cells, header), no_wrap=True, **kwargs)
