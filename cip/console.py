"""Terminal output helpers shared by the CLI: progress bars and tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()


@contextmanager
def progress_bar(title: str) -> Iterator[callable]:
    """Yield a ``report(description, done, total)`` callback drawing one rich progress bar."""
    with Progress(
        TextColumn("[bold]{task.fields[title]}[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=None, title=title)

        def report(description: str, done: float, total: float) -> None:
            bar.update(task, description=description, completed=done, total=total)

        yield report


def print_frame(frame: pd.DataFrame, title: str | None = None, max_rows: int = 40) -> None:
    """Render a DataFrame as a rich table."""
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
    for _, row in frame.head(max_rows).iterrows():
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
