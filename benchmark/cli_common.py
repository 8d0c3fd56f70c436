"""What every `bench` command shares: the consoles and the translation of user errors."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console

from benchmark.errors import BenchError, BenchWarning

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
