"""The `cip` command: the user's door to every pipeline."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cip.console import console, print_frame, progress_bar
from cip.errors import CipError
from cli.settings import Settings, get_settings

app = typer.Typer(
    help="CIP — customer intelligence platform: generate, ingest, resolve identities, build profiles and features.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
identity_app = typer.Typer(help="Identity resolution: run, explain and undo merges.", no_args_is_help=True)
features_app = typer.Typer(
    help="Feast feature store: build snapshots, apply, materialize.", no_args_is_help=True
)
train_app = typer.Typer(
    help="Train models (churn, clv, propensity, nba) and register them in MLflow.", no_args_is_help=True
)
models_app = typer.Typer(
    help="The MLflow model registry: list versions, promote a champion.", no_args_is_help=True
)
app.add_typer(identity_app, name="identity")
app.add_typer(features_app, name="features")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")

_state = {"debug": False}


def _flags_without_type() -> None:
    """``--help`` lists on/off flags (``--force / --no-force``) without a ``<bool>`` type column."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_cip", False):
        return

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN202 - typer's signature
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich._cip = True
    TyperOption.display_type_rich = display_type_rich


_flags_without_type()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def _settings() -> Settings:
    return get_settings()


@app.command()
def generate(
    customers: Annotated[
        int | None, typer.Option(help="Number of persons in the world (default from settings).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default from settings).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Last day of history, YYYY-MM-DD (default: generate.as_of, else today in UTC)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: settings data_dir).")] = None,
) -> None:
    """Generate a messy multi-channel customer world with ground truth (raw/ and truth/)."""
    from pipelines.generate.pipeline import generate_world

    s = _settings()
    n = customers or s.generate.customers
    as_of_date = _date(as_of, "--as-of") if as_of else s.generate.as_of
    out_dir = out or s.root
    if n < 100:
        raise CipError(f"--customers must be at least 100 (got {n})", fix="pass --customers 1000 or more")
    started = time.perf_counter()
    with progress_bar("generate") as report:
        summary = generate_world(
            out_dir,
            n_customers=n,
            seed=seed if seed is not None else s.seed,
            as_of=as_of_date,
            progress=lambda step, frac: report(step, round(frac * 100), 100),
        )
    console.print(f"[green]world written[/] to {out_dir} in {time.perf_counter() - started:.1f}s")
    files = summary.get("files") or {}
    if isinstance(files, dict) and files:
        import pandas as pd

        grouped: dict[str, int] = {}
        for name, rows in files.items():
            key = "events/*.jsonl" if name.startswith("events/") else name
            grouped[key] = grouped.get(key, 0) + rows
        print_frame(pd.DataFrame({"file": list(grouped), "rows": list(grouped.values())}), title="raw files")


@app.command()
def ingest(
    source: Annotated[
        Path | None, typer.Option(help="Folder of raw files (default: generated raw folder).")
    ] = None,
) -> None:
    """Validate, standardize and load raw channel files into the lake (idempotent). Every file that
    can be ingested is published, one batch per file; files that cannot are named, and the run
    exits non-zero."""
    from pipelines.ingest.pipeline import IncompleteIngestError, run

    s = _settings()
    try:
        with progress_bar("ingest") as report:
            result = run(s, source, progress=report)
    except IncompleteIngestError as exc:
        _print_ingest(exc.report)
        raise
    _print_ingest(result)


def _print_ingest(result) -> None:  # noqa: ANN001 - pipelines.ingest.pipeline.IngestReport
    """Totals per source, what was skipped as already in the lake, quarantine reasons, failures."""
    totals = result.totals()
    print_frame(totals, title="ingestion (rows in = accepted + quarantined + duplicates)")
    for source, skipped in totals.loc[totals["duplicates"] > 0, ["source", "duplicates"]].values:
        console.print(
            f"{source}: skipped {skipped:,} duplicates already in the lake "
            "(same key in an earlier file or run; not ingested twice)"
        )
    reasons: dict[tuple[str, str], int] = {}
    for f in result.ingested:
        for r, n in f.reasons.items():
            reasons[(f.source, r)] = reasons.get((f.source, r), 0) + n
    if reasons:
        import pandas as pd

        frame = pd.DataFrame(
            [{"source": k[0], "reason": k[1], "rows": v} for k, v in sorted(reasons.items())]
        )
        print_frame(frame, title="quarantined rows by reason (see lake table 'quarantine')")
    if result.failed:
        import pandas as pd

        frame = pd.DataFrame([{"file": f.file, "error": f.error} for f in result.failed])
        print_frame(frame, title="files not ingested (nothing of them was published)", max_rows=200)


def _print_identity_quality(s: Settings) -> None:
    """Identity quality against the generator's truth, when a truth folder exists."""
    if not (s.truth_dir / "record_links.parquet").exists():
        return
    import pandas as pd

    from cip.lake import Lake
    from pipelines.identity.evaluate import evaluate

    metrics = evaluate(Lake(s.lake_dir), s.truth_dir)
    rows = [{"scope": scope, **{k: v for k, v in m.items()}} for scope, m in metrics.items()]
    frame = pd.DataFrame(rows).set_index("scope").T.reset_index(names="metric")
    print_frame(frame, title="identity quality vs generator truth")
    s.reports_dir.mkdir(parents=True, exist_ok=True)
    (s.reports_dir / "identity_quality.json").write_text(json.dumps(metrics, indent=1))


@identity_app.command("run")
def identity_run(
    retrain: Annotated[bool, typer.Option(help="Re-estimate the Splink model even if one is saved.")] = False,
) -> None:
    """Resolve identifiers into stable customer ids (deterministic graph + Splink matches)."""
    from pipelines.identity.pipeline import run

    s = _settings()
    with progress_bar("identity") as report:
        result = run(s, retrain=retrain, progress=report)
    import pandas as pd

    print_frame(
        pd.DataFrame([result.stats]).T.reset_index(names="stat").rename(columns={0: "value"}),
        title="identity graph",
    )
    if len(result.alarms):
        console.print(
            f"[yellow]{len(result.alarms)} cluster(s) above the size alarm[/] — see `cip identity explain <id>`"
        )
        print_frame(result.alarms.head(10), title="largest clusters")
    _print_identity_quality(s)


@identity_app.command("explain")
def identity_explain(
    customer_id: Annotated[str, typer.Argument(help="A customer id (cus_...).")],
    a: Annotated[
        str | None, typer.Option(help="Node key to trace a path from, e.g. crm_id:C0000012.")
    ] = None,
    b: Annotated[str | None, typer.Option(help="Node key to trace a path to.")] = None,
) -> None:
    """Show a customer's identifiers, the edges that joined them and per-field match weights."""
    from pipelines.identity.explain import explain_customer

    s = _settings()
    exp = explain_customer(s, customer_id, a, b)
    print_frame(exp.nodes, title=f"identifiers of {customer_id}")
    cols = ["src", "dst", "edge_type", "source", "probability", "observed_at"]
    rule = ["rule"] if "rule" in exp.accepted.columns else []  # lakes written before rules had none
    print_frame(exp.accepted[cols + rule], title="edges that joined them (rule: what kept the link)")
    if len(exp.rejected):
        print_frame(
            exp.rejected[cols + ["reason", *rule]].head(20),
            title="edges refused by guards (rule: what cut the link)",
        )
    for (src, dst), weights in exp.match_weights.items():
        import pandas as pd

        frame = pd.DataFrame(weights)
        total = frame["pair_match_weight"].dropna()
        probability = frame["match_probability"].dropna()
        cols = [c for c in ("role", "value_l", "value_r", "level", "match_weight") if c in frame.columns]
        title = f"Splink match weights {src} ~ {dst}"
        if len(total) and len(probability):
            title += f" (total {total.iloc[0]:.1f}, p = {probability.iloc[0]:.6f})"
        print_frame(frame[cols], title=title)
    if exp.path is not None and len(exp.path):
        print_frame(exp.path, title=f"path {a} → {b}")
    elif exp.path is not None:
        console.print(f"no path of accepted edges joins {a} and {b}")


@identity_app.command("split")
def identity_split(
    a: Annotated[str, typer.Argument(help="Node key that must not be merged with b, e.g. crm_id:C0000012.")],
    b: Annotated[str, typer.Argument(help="The other node key.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the rule file).")] = "manual split",
    rerun: Annotated[bool, typer.Option(help="Re-run identity resolution now.")] = True,
) -> None:
    """Undo a merge: add a never-link rule for two identifiers (and re-run)."""
    from pipelines.identity.pipeline import add_never_link, never_link_path

    s = _settings()
    rules = add_never_link(s, a, b, reason)
    console.print(f"never-link rule added ({len(rules)} in {never_link_path(s)})")
    if rerun:
        identity_run(retrain=False)


@app.command()
def profiles() -> None:
    """Build golden records (survivorship) and resolved activity tables (traits: `cip features build`)."""
    from pipelines.profiles.pipeline import run

    s = _settings()
    with progress_bar("profiles") as report:
        result = run(s, progress=report)
    import pandas as pd

    print_frame(
        pd.DataFrame({"table": list(result.tables), "rows": list(result.tables.values())}),
        title="profiles",
    )
    _explain_unattributed(s, result.unattributed)


def _explain_unattributed(s: Settings, unattributed: dict[str, int]) -> None:
    """Activity no customer owns, with its share and the reason."""
    from cip.lake import Lake

    for name, count in unattributed.items():
        line = f"{name}: {count:,}"
        if name == "pos_transactions_without_customer":
            total = (
                Lake(s.lake_dir)
                .connect(["pos_lines"])
                .execute("SELECT count(DISTINCT transaction_id) FROM pos_lines")
                .fetchall()[0][0]
            )
            line += (
                f" of {total:,} store transactions ({count / max(total, 1):.0%}) carry no loyalty card"
                " (or one no customer holds): walk-in sales cannot be tied to a customer, so they stay"
                " out of customer activity and features"
            )
        else:
            line += " (no identifier to attach them to)"
        console.print(line)


def _print_result(result: object, title: str) -> None:
    """Print a stage's result object (a dataclass) as a two-column table."""
    import dataclasses

    import pandas as pd

    if dataclasses.is_dataclass(result):
        items = {k: v for k, v in dataclasses.asdict(result).items()}
    elif isinstance(result, dict):
        items = result
    else:
        items = {"result": result}

    def short(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, list | tuple) and len(v) > 4:
            return f"{len(v)} items: {v[0]} … {v[-1]}"
        return str(v)

    # lists of records (e.g. one row per feature view) get a table of their own
    nested = {
        k: v for k, v in items.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
    }
    flat = {k: v for k, v in items.items() if k not in nested}
    print_frame(pd.DataFrame({"item": list(flat), "value": [short(v) for v in flat.values()]}), title=title)
    for key, rows in nested.items():
        print_frame(pd.DataFrame(rows).round(2), title=f"{title}: {key}")


@features_app.command("build")
def features_build(
    force: Annotated[
        bool, typer.Option(help="Recompute every snapshot even if its inputs did not change.")
    ] = False,
) -> None:
    """Compute feature snapshots (weekly grid + as-of) from the resolved activity tables, and the
    traits (RFM…) of every profile from the as-of snapshot."""
    from features.store import build
    from features.traits import write_traits

    s = _settings()
    with progress_bar("snapshots") as report:
        result = build(s, progress=report, force=force)
    _print_result(result, "feature snapshots")
    as_of, rows = write_traits(s, result)
    console.print(f"traits as of {as_of}: {rows:,} customers (lake table 'traits')")


@features_app.command("apply")
def features_apply() -> None:
    """Register entities, feature views and FeatureServices in the Feast registry."""
    from features.store import apply

    _print_result(apply(_settings()), "feast apply")


@features_app.command("materialize")
def features_materialize(
    full: Annotated[bool, typer.Option(help="Rewrite every customer, not only changed ones.")] = False,
) -> None:
    """Load the latest snapshot of every (changed) customer into the online store."""
    from features.store import materialize

    s = _settings()
    with progress_bar("materialize") as report:
        result = materialize(s, progress=report, full=full)
    _print_result(result, "materialization")
    _explain_materialized(s, max((v.customers for v in result.views), default=0))


def _explain_materialized(s: Settings, online: int) -> None:
    """Why fewer customers have online features than there are profiles."""
    from cip.lake import Lake

    lake = Lake(s.lake_dir)
    if not lake.has("profiles"):
        return
    profiles = lake.connect(["profiles"]).execute("SELECT count(*) FROM profiles").fetchall()[0][0]
    line = f"{online:,} of {profiles:,} customers have online features"
    if profiles > online:
        line += (
            f"; the other {profiles - online:,} profiles have no activity (orders, web/app events,"
            " e-mails) before the snapshot, so there is nothing to serve for them"
        )
    console.print(line)


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CipError(f"{option} {text!r} is not a date", fix="write it as YYYY-MM-DD") from None


def as_of_instant(text: str | None, now: datetime | None = None) -> datetime:
    """The moment features are read at: ``None`` or ``now`` → now; a date → the end of that day
    (midnight UTC after it: the instant its snapshot is taken); a date and time → that instant
    (UTC unless it names an offset)."""
    if text is None or text.strip().lower() == "now":
        return now or datetime.now(UTC)
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CipError(
            f"--as-of {text!r} is neither a date nor a date and time",
            fix="write YYYY-MM-DD (the end of that day, UTC) or YYYY-MM-DDTHH:MM[:SS][+HH:MM]",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="When to read the features: YYYY-MM-DD (the end of that day, UTC) or an ISO date and time; "
        "default now. Request-time features (days_since_*) count to it, and batch features are the "
        "snapshot a model would have seen then.",
    ),
]


def _unknown_customer(s: Settings, customer_id: str) -> CipError:
    """Why a customer has no online features: unknown, or a profile without any activity."""
    from cip.lake import Lake

    lake = Lake(s.lake_dir)
    if lake.has("profiles"):
        con = lake.connect(["profiles"])
        known = con.execute("SELECT count(*) FROM profiles WHERE customer_id = ?", [customer_id]).fetchall()
        if known[0][0]:
            return CipError(
                f"customer {customer_id} has no features: it has a profile, but no activity (orders, "
                "web/app events, e-mails) before the latest snapshot",
                fix=f"`cip identity explain {customer_id}` shows its identifiers",
            )
    return CipError(
        f"unknown customer '{customer_id}': the online store has no features for it"
        + (" and no profile has that id" if lake.has("profiles") else ""),
        fix="check the id (customer ids look like cus_0123456789ab; they are in the lake table 'identity_map')",
    )


@features_app.command("show")
def features_show(
    customer_id: Annotated[str, typer.Argument(help="A customer id (cus_...).")],
    service: Annotated[str, typer.Option(help="FeatureService name, e.g. churn_v1.")] = "churn_v1",
    as_of: AsOfOption = None,
) -> None:
    """Read one customer's features for a FeatureService, in the service's order."""
    from features.catalog import service_features
    from features.quick import read_online

    names = service_features(service)  # an unknown service stops here, naming the known ones
    s = _settings()
    at = as_of_instant(as_of)
    row = read_online(s, service, customer_id, at)
    snapshot, source = None, "online store"
    if row is not None:
        if not row.found:
            raise _unknown_customer(s, customer_id)
        values, snapshot = row.values, row.snapshot_ts
    else:  # an online store this reader does not know: Feast's own read
        from features.store import online_features

        values = {k: v[0] for k, v in online_features(s, service, [customer_id], at).items()}
        if all(values[n] is None for n in names):
            raise _unknown_customer(s, customer_id)
    if as_of is not None and snapshot is not None and snapshot > at:
        # the online store is newer than the moment asked for: read what was served then
        import pandas as pd

        from features.store import training_frame

        entity = pd.DataFrame({"customer_id": [customer_id], "event_timestamp": [at]})
        frame = training_frame(s, service, entity)
        values = {"customer_id": customer_id, **{n: _plain(frame[n].iloc[0]) for n in names}}
        snapshot, source = None, "offline store (point in time)"
    _print_features(values, title=f"{service} · {customer_id}")
    when = f"batch features from the snapshot of {snapshot:%Y-%m-%d %H:%M} UTC; " if snapshot else ""
    console.print(f"{source}: {when}request time (days_since_*) {at:%Y-%m-%d %H:%M:%S} UTC")


def _plain(value: object) -> object:
    """A pandas cell as a plain Python value (NaN/NaT → None)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _print_features(values: dict[str, object], title: str) -> None:
    """Two columns, feature and value, in the given order (plain rich: no pandas to import)."""
    from rich.table import Table

    from cip.console import format_value

    table = Table(title=title)
    table.add_column("feature")
    table.add_column("value", justify="right")
    for name, value in values.items():
        table.add_row(name, format_value(value))
    console.print(table)


def features_all() -> None:
    """build → apply → materialize."""
    features_build(force=False)
    features_apply()
    features_materialize(full=False)


@app.command()
def demo(
    customers: Annotated[int | None, typer.Option(help="Persons in the generated world.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
) -> None:
    """Run the main job end to end on the embedded default: generate → ingest → identity → profiles →
    features → models → score → segments → export → report."""
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs) -> None:
        t0 = time.perf_counter()
        console.rule(f"[bold]{name}")
        fn(*args, **kwargs)
        timings[name] = time.perf_counter() - t0

    timed("generate", generate, customers=customers, seed=seed, as_of=None, out=None)
    timed("ingest", ingest, source=None)
    timed("identity", identity_run, retrain=False)
    timed("profiles", profiles)
    timed("features", features_all)
    timed("models", train_all, trials=None)
    timed("score", score_cmd)
    timed("segments", segments_cmd, reassign=False)
    timed("export", export_cmd, destination=None)
    timed("report", report_cmd, out=None)
    import pandas as pd

    console.rule("[bold]demo finished")
    print_frame(
        pd.DataFrame({"stage": list(timings), "seconds": list(timings.values())}), title="stage timings"
    )
    s = _settings()
    console.print(f"total {time.perf_counter() - started:.1f}s — data in {s.root}")
    console.print(f"exports in {s.exports_dir}, report at {s.report_path}")


# --- models ----------------------------------------------------------------------------------------
TrialsOption = Annotated[
    int | None, typer.Option("--trials", help="Optuna trials per model (default: training.trials).")
]


def _train(names: list[str], trials: int | None) -> list:
    from training.train import summary_frame, train

    s = _settings()
    results = []
    for name in names:
        with progress_bar(f"train {name}") as report:
            r = train(s, name, trials=trials, progress=report)
        results.append(r)
        if r.model == "nba":
            _print_nba(r)
            continue
        gate = f"{'promoted' if r.promoted else 'not promoted'}: test {r.gate_metric} {r.metrics[r.gate_metric]:.4f}"
        if r.champion_metric is not None:
            gate += f" vs champion {r.champion_metric:.4f}"
        console.print(
            f"[green]{name}[/] v{r.version} in {r.seconds:.0f}s — cutoffs train "
            f"{r.plan.train[0]}…{r.plan.train[-1]}, valid {r.plan.valid}, test {r.plan.test} — {gate}"
        )
    for r in (r for r in results if r.model != "nba"):
        table = summary_frame([r]).drop(columns="model").dropna(axis=1, how="all")
        print_frame(table, title=f"{r.model} on the test cutoff {r.plan.test}: model next to baselines")
    return results


@train_app.command("churn")
def train_churn(trials: TrialsOption = None) -> None:
    """Churn: P(no purchase in 90 days) for customers active in the last 365 days."""
    _train(["churn"], trials)


@train_app.command("clv")
def train_clv(trials: TrialsOption = None) -> None:
    """Customer lifetime value: spend in the next 365 days."""
    _train(["clv"], trials)


@train_app.command("propensity")
def train_propensity(trials: TrialsOption = None) -> None:
    """Purchase propensity per category in the next 30 days."""
    _train(["propensity"], trials)


@train_app.command("nba")
def train_nba(trials: TrialsOption = None) -> None:
    """Next-best-action: the offer worth the most incremental revenue net of its cost (uplift models
    from the randomized campaign log, evaluated off-policy on held-out campaigns)."""
    _train(["nba"], trials)


def _print_nba(r) -> None:  # noqa: ANN001 - training.train.TrainResult
    import pandas as pd

    gate = f"{'promoted' if r.promoted else 'not promoted'}: test DR value {r.metrics['dr_value']:.4f}"
    if r.champion_metric is not None:
        gate += f" vs champion {r.champion_metric:.4f}"
    console.print(
        f"[green]nba[/] v{r.version} ({r.params.get('learner')}-learner) in {r.seconds:.0f}s — campaigns "
        f"train {r.plan.train[0]}…{r.plan.train[-1]}, valid {','.join(r.plan.valid)}, test "
        f"{','.join(r.plan.test)} — {gate}"
    )
    rows = [{"policy": "nba (CIP uplift)", **{k: r.metrics[k] for k in ("dr_value", "ipw_value")}}]
    rows += [{"policy": name, **v} for name, v in r.baselines.items()]
    table = pd.DataFrame(rows)
    table.insert(2, "dr_ci", [""] * len(table))
    table.loc[0, "dr_ci"] = f"[{r.metrics['dr_low']:.3f}, {r.metrics['dr_high']:.3f}]"
    print_frame(
        table, title="incremental value per exposure vs no offer, net of cost (test campaigns, off-policy)"
    )


@train_app.command("all")
def train_all(trials: TrialsOption = None) -> None:
    """Train churn, clv, propensity and nba."""
    from training.specs import MODELS

    _train(list(MODELS), trials)


@models_app.command("list")
def models_list() -> None:
    """Registered model versions, their aliases and test metrics."""
    from training.registry import list_models, tracking_uri

    s = _settings()
    local = not s.training.tracking_uri
    table = None if local and not (s.mlflow_dir / "mlflow.db").exists() else list_models(s)
    if table is None or table.empty:  # (a read never creates the MLflow store)
        console.print(f"no models registered in {tracking_uri(s)} — run `cip train all`")
        return
    print_frame(table, title=f"models in {tracking_uri(s)}", max_rows=200)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Model: churn, clv, propensity or nba.")],
    version: Annotated[int, typer.Argument(help="Registered version to make champion.")],
) -> None:
    """Make a registered version the champion (scoring loads the champion)."""
    from training.registry import promote

    promote(_settings(), name, version)
    console.print(f"[green]{name}[/] version {version} is now the champion")


# --- batch scoring, segments, exports, report (pipelines/batch) -------------------------------------
@app.command("score")
def score_cmd() -> None:
    """Score every customer with each model's champion (latest feature snapshot, top reasons), then
    assign the predictive segments and diff them against the previous run."""
    from pipelines.batch.pipeline import score

    s = _settings()
    with progress_bar("score") as report:
        info = score(s, progress=report)
    console.print(
        f"[green]run {info.run_id}[/]: {info.customers:,} customers as of {info.as_of}, models "
        + ", ".join(f"{m} v{v}" for m, v in info.versions.items())
        + f" — lake tables 'scores', 'segment_membership', 'segment_changes' ({sum(info.seconds.values()):.1f}s)"
    )
    _print_segments(info)


def _print_segments(info) -> None:  # noqa: ANN001 - pipelines.batch.runs.RunInfo
    from pipelines.batch.pipeline import summary_frame

    since = f"since {info.previous_run}" if info.previous_run else "first run: every member entered"
    print_frame(summary_frame(info), title=f"segments of {info.run_id} ({since})", max_rows=200)


@app.command("segments")
def segments_cmd(
    reassign: Annotated[
        bool, typer.Option(help="Re-evaluate the latest run's scores against the current segment file.")
    ] = False,
) -> None:
    """Show the latest run's segment sizes and their movement (enter/exit/stay) since the run before."""
    from pipelines.batch.pipeline import reassign as reassign_run
    from pipelines.batch.runs import load_run

    s = _settings()
    info = reassign_run(s) if reassign else load_run(s)
    _print_segments(info)
    if info.thresholds:
        import pandas as pd

        print_frame(
            pd.DataFrame({"reference": list(info.thresholds), "value": list(info.thresholds.values())}),
            title="quantile thresholds (population of this run)",
        )


@app.command("export")
def export_cmd(
    destination: Annotated[
        list[str] | None,
        typer.Option("--destination", "-d", help="Destination to export to (repeatable; default: all)."),
    ] = None,
) -> None:
    """Write each segment of the latest run to each destination: files plus manifests, consent per
    purpose enforced, unsubscribes and bounces suppressed, written atomically."""
    import pandas as pd

    from pipelines.batch.export import export_run

    s = _settings()
    with progress_bar("export") as report:
        results = export_run(s, destination, progress=report)
    rows = [
        {
            "destination": r.destination,
            "segment": e.segment,
            "members": e.members,
            "exported": e.exported,
            "suppressed": ", ".join(f"{k} {v:,}" for k, v in e.suppressed.items()) or "-",
            "sha256": e.sha256[:12],
        }
        for r in results
        for e in r.segments
    ]
    print_frame(pd.DataFrame(rows), title="exports (suppressed by reason)", max_rows=300)
    for r in results:
        console.print(f"{r.destination}: {r.folder}")


@app.command("report")
def report_cmd(
    out: Annotated[
        Path | None, typer.Option(help="Where to write the HTML (default: batch.report_path).")
    ] = None,
) -> None:
    """Write the run report: one self-contained HTML file (scores, models, segments, exports,
    identity, quarantine)."""
    from pipelines.batch.report import write_report

    path = write_report(_settings(), path=out)
    console.print(f"[green]report[/] {path}")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: serving.host).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: serving.workers).")] = None,
) -> None:
    """Real-time API (BentoML): POST /score, POST /events, GET /customers/{id}, /metrics."""
    from serving.launch import serve as run_server

    s = _settings()
    overrides = {k: v for k, v in {"port": port, "host": host, "workers": workers}.items() if v is not None}
    if overrides:
        s = get_settings(serving=s.serving.model_copy(update=overrides))
    console.print(
        f"serving on http://{s.serving.host}:{s.serving.port} with {s.serving.workers} worker(s); "
        f"data {s.data_dir}, models {s.mlflow_dir}"
    )
    run_server(s)


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
    counts = [
        {"table": n, "rows": con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0]} for n in names
    ]
    print_frame(pd.DataFrame(counts), title=f"lake {s.lake_dir}")


@app.command()
def settings() -> None:
    """Print the effective settings (env CIP_* and cip.yaml applied)."""
    s = _settings()
    console.print_json(json.dumps(s.model_dump(mode="json")))


class _NoteHandler(logging.Handler):
    """Prints a warning of CIP's own loggers as a one-line note (not Python's raw log format)."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[yellow]note:[/] {record.getMessage()}", highlight=False)


def main() -> None:
    """Entry point: user errors become one clear message and a non-zero exit."""
    import warnings

    warnings.filterwarnings("ignore", message=".*(Stream feature views|On demand feature view).*experimental")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("splink").setLevel(logging.ERROR)
    for name in ("cip", "pipelines", "features", "training"):  # CIP's own warnings, as notes
        logger = logging.getLogger(name)
        logger.addHandler(_NoteHandler(logging.WARNING))
        logger.propagate = False
    try:
        app()
    except CipError as exc:
        if _state["debug"]:
            raise
        console.print(f"[bold red]error:[/] {exc.message}")
        for note in getattr(exc, "__notes__", ()):
            console.print(f"[yellow]note:[/] {note}")
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
        for note in getattr(exc, "__notes__", ()):
            console.print(f"[yellow]note:[/] {note}")
        console.print("[yellow]rerun with `cip --debug ...` for the full traceback[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
