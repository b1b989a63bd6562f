"""Terminal output helpers shared by the CLI: progress bars and tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import pandas as pd

#: Width of output that is not a terminal (a log, a pipe): wide enough that tables are not cut.
PIPE_WIDTH = 200

console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH)


class _Count(ProgressColumn):
    """``done/total`` once the total is known (nothing before, rather than ``0/None``)."""

    def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
        if task.total is None:
            return Text("")
        return Text(f"{task.completed:,.0f}/{task.total:,.0f}")


@contextmanager
def progress_bar(title: str) -> Iterator[callable]:
    """Yield a ``report(description, done, total)`` callback drawing one rich progress bar."""
    with Progress(
        TextColumn("[bold]{task.fields[title]}[/] {task.description}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=None, title=title)

        def report(description: str, done: float, total: float) -> None:
            bar.update(task, description=description, completed=done, total=total)

        yield report


def print_frame(frame: pd.DataFrame, title: str | None = None, max_rows: int = 40) -> None:
    """Render a DataFrame as a rich table (long values wrap; they are never cut)."""
    import pandas as pd

    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        justify = "right" if pd.api.types.is_numeric_dtype(frame[col]) else "left"
        table.add_column(str(col), justify=justify, overflow="fold")
    for _, row in frame.head(max_rows).iterrows():
        table.add_row(*[format_value(v) for v in row])
    console.print(table)


def format_value(v: object) -> str:
    """A table cell: floats to four significant digits (thousands grouped), ints grouped."""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
