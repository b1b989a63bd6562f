"""The `cip` command: the user's door to every pipeline."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cip.console import console, print_frame, progress_bar
from cip.errors import CipError
from cip.settings import Settings, get_settings

app = typer.Typer(
    help="CIP — customer intelligence platform: generate, ingest, resolve identities, build profiles and features.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
identity_app = typer.Typer(help="Identity resolution: run, explain and undo merges.", no_args_is_help=True)
features_app = typer.Typer(help="Feast feature store: build snapshots, apply, materialize.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(features_app, name="features")

_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _settings() -> Settings:
    return get_settings()


@app.command()
def generate(
    customers: Annotated[int | None, typer.Option(help="Number of persons in the world (default from settings).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default from settings).")] = None,
    as_of: Annotated[str | None, typer.Option(help="Last day of history, YYYY-MM-DD.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: settings data_dir).")] = None,
) -> None:
    """Generate a messy multi-channel customer world with ground truth (raw/ and truth/)."""
    from pipelines.generate.pipeline import generate_world

    s = _settings()
    n = customers or s.generate.customers
    as_of_date = date.fromisoformat(as_of) if as_of else s.generate.as_of
    out_dir = out or s.root
    if n < 100:
        raise CipError(f"--customers must be at least 100 (got {n})", fix="pass --customers 1000 or more")
    started = time.perf_counter()
    with progress_bar("generate") as report:
        summary = generate_world(
            out_dir, n_customers=n, seed=seed if seed is not None else s.seed, as_of=as_of_date,
            progress=lambda step, frac: report(step, round(frac * 100), 100),
        )
    console.print(f"[green]world written[/] to {out_dir} in {time.perf_counter() - started:.1f}s")
    files = summary.get("files") or summary.get("rows") or {}
    if isinstance(files, dict) and files:
        import pandas as pd

        print_frame(pd.DataFrame({"file": list(files), "rows": list(files.values())}), title="raw files")


@app.command()
def ingest(
    source: Annotated[Path | None, typer.Option(help="Folder of raw files (default: generated raw folder).")] = None,
) -> None:
    """Validate, standardize and load raw channel files into the lake (idempotent)."""
    from pipelines.ingest.pipeline import run

    s = _settings()
    with progress_bar("ingest") as report:
        result = run(s, source, progress=report)
    totals = result.totals()
    print_frame(totals, title="ingestion (rows in = accepted + quarantined)")
    reasons: dict[tuple[str, str], int] = {}
    for f in result.ingested:
        for r, n in f.reasons.items():
            reasons[(f.source, r)] = reasons.get((f.source, r), 0) + n
    if reasons:
        import pandas as pd

        frame = pd.DataFrame([{"source": k[0], "reason": k[1], "rows": v} for k, v in sorted(reasons.items())])
        print_frame(frame, title="quarantined rows by reason (see lake table 'quarantine')")


@app.command()
def status() -> None:
    """List the lake's tables and their row counts."""
    from cip.lake import Lake

    s = _settings()
    lake = Lake(s.lake_dir)
    names = lake.table_names()
    if not names:
        console.print(f"lake {s.lake_dir} is empty — run `cip ingest`")
        return
    import pandas as pd

    con = lake.connect()
    counts = [{"table": n, "rows": con.sql(f'SELECT count(*) FROM "{n}"').fetchone()[0]} for n in names]
    print_frame(pd.DataFrame(counts), title=f"lake {s.lake_dir}")


@app.command()
def settings() -> None:
    """Print the effective settings (env CIP_* and cip.yaml applied)."""
    s = _settings()
    console.print_json(json.dumps(s.model_dump(mode="json")))


def main() -> None:
    """Entry point: user errors become one clear message and a non-zero exit."""
    try:
        app()
    except CipError as exc:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {exc.message}")
        if exc.fix:
            console.print(f"[yellow]fix:[/] {exc.fix}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence for the user
        if _state["debug"]:
            raise
        console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}")
        console.print("[yellow]rerun with `cip --debug ...` for the full traceback[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
