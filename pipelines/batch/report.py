"""The run report: one self-contained HTML file a person opens instead of reading logs.

It shows the latest scoring run: score distributions, each champion's calibration and lift (the
plots logged with its MLflow run) and test metrics, segment sizes and their movement since the last
run (and across the kept runs), identity quality and quarantine counts. Plots are PNGs embedded as
base64 ``data:`` URIs, styles are inline, nothing is fetched: the file works offline and can be
mailed. A small script marks ``<body data-plots="ok">`` once every image has decoded (``broken``
otherwise), so a headless browser can check it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cip.lake import Lake  # noqa: E402
from pipelines.batch.config import BatchSettings  # noqa: E402
from pipelines.batch.runs import RunInfo, load_run, run_ids  # noqa: E402

KEY = "customer_id"


@dataclass
class Section:
    title: str
    body: list[str] = field(default_factory=list)


# --- small HTML helpers ------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text))


def png(fig: Any) -> str:
    """A matplotlib figure as an ``<img>`` with an embedded PNG (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return _img(buf.getvalue(), "plot")


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def table(frame: pd.DataFrame, max_rows: int = 60) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else (f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}")
        if isinstance(v, int | np.integer) and not isinstance(v, bool):
            return f"{v:,}"
        return _e(v)

    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.head(max_rows).itertuples(index=False)
    )
    more = (
        f'<p class="note">{len(frame) - max_rows:,} more rows not shown</p>' if len(frame) > max_rows else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


# --- sections ------------------------------------------------------------------------------------------
def score_section(scores: pd.DataFrame, info: RunInfo) -> Section:
    s = Section("Score distributions")
    cols = [c for c in info.score_columns if c in scores.columns and pd.api.types.is_numeric_dtype(scores[c])]
    s.body.append(
        table(scores[cols].describe(percentiles=[0.1, 0.5, 0.9, 0.99]).T.reset_index(names="score"))
    )
    singles = [c for c in cols if not c.startswith("propensity_")]
    if singles:
        fig, axes = plt.subplots(1, len(singles), figsize=(5 * len(singles), 3.2), squeeze=False)
        for ax, c in zip(axes[0], singles, strict=True):
            v = scores[c].dropna().to_numpy(dtype=float)
            log = c.startswith("clv") and len(v) and v.min() >= 0
            ax.hist(np.log10(v + 1) if log else v, bins=50, color="#4477aa")
            ax.set(title=c, xlabel=f"log10({c} + 1)" if log else c, ylabel="customers")
        s.body.append(png(fig))
    props = [c for c in cols if c.startswith("propensity_")]
    if props:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        ax.boxplot([scores[c].dropna().to_numpy(dtype=float) for c in props], showfliers=False)
        ax.set_xticks(range(1, len(props) + 1), [c.removeprefix("propensity_") for c in props], rotation=20)
        ax.set(title="propensity by category (30 days)", ylabel="probability")
        s.body.append(png(fig))
    if "next_best_action" in scores.columns:
        counts = scores["next_best_action"].value_counts().rename_axis("next_best_action").reset_index()
        s.body.append(table(counts))
    return s


def model_section(settings: BatchSettings, info: RunInfo) -> Section:
    """Each champion's test metrics and its logged plots (from MLflow): calibration and lift, or for
    the next-best-action policy its Qini curves and policy values."""
    s = Section("Models: calibration, lift and uplift (held-out data, from MLflow)")
    try:
        from training.registry import connect
        from training.specs import spec

        client = connect(settings)
    except Exception as exc:  # noqa: BLE001 - the report still renders without MLflow
        s.body.append(_note(f"MLflow not reachable: {exc}"))
        return s
    import mlflow

    for name, version in info.versions.items():
        try:
            sp = spec(name)
            mv = client.get_model_version(sp.registered, version)
            run = client.get_run(mv.run_id)
        except Exception as exc:  # noqa: BLE001 - e.g. a model spec or version gone since the run
            s.body.append(_note(f"{name} v{version}: not found in MLflow ({exc})"))
            continue
        metrics = {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}
        s.body.append(f"<h3>{_e(name)} v{_e(version)} · {_e(sp.registered)} · run {_e(mv.run_id[:8])}</h3>")
        s.body.append(table(pd.DataFrame([metrics]).round(4)))
        images = []
        # calibration and lift of the score models; Qini curves and policy values of the NBA policy
        for plot in (
            "calibration.png",
            "predicted_vs_actual.png",
            "lift_gain.png",
            "qini.png",
            "policy_values.png",
        ):
            try:
                local = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=f"plots/{plot}")
            except Exception:  # noqa: BLE001 - not logged for this task
                continue
            images.append(_img(Path(local).read_bytes(), f"{name} {plot}"))
        s.body.append(f'<div class="row">{"".join(images)}</div>')
    return s


def segment_section(settings: BatchSettings, info: RunInfo) -> Section:
    from pipelines.batch.pipeline import summary_frame

    s = Section("Segments: sizes and movement since the last run")
    frame = summary_frame(info)
    if frame.empty:
        s.body.append(_note("no segments"))
        return s
    previous = f"previous run {info.previous_run}" if info.previous_run else "first run: every member entered"
    s.body.append(_note(f"{previous}. Enter: new members; exit: members of the previous run who left."))
    rules = pd.DataFrame(
        [
            {"segment": k, "rule": v.get("expr", ""), "meaning": v.get("description", "")}
            for k, v in info.rules.items()
        ]
    )
    s.body.append(table(frame.merge(rules, on="segment", how="left") if len(rules) else frame, max_rows=200))
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(frame) + 1.2))
    y = np.arange(len(frame))[::-1]
    ax.barh(y, frame["stayed"], color="#4477aa", label="stayed")
    ax.barh(y, frame["entered"], left=frame["stayed"], color="#228833", label="entered")
    ax.barh(y, -frame["exited"], color="#ee6677", label="exited")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, frame["segment"])
    ax.set(xlabel="customers", title="segment members: stayed + entered (right), exited (left)")
    ax.legend(fontsize=8, loc="lower right")
    s.body.append(png(fig))
    history = _history(settings)
    if len(history) > 1:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        for segment in history.columns:
            ax.plot(range(len(history)), history[segment], marker="o", label=segment)
        ax.set_xticks(range(len(history)), [r[4:19] for r in history.index], rotation=20, fontsize=7)
        ax.set(ylabel="members", title="segment sizes across the kept runs")
        ax.legend(fontsize=6, ncol=3)
        s.body.append(png(fig))
    if info.thresholds:
        th = pd.DataFrame(
            {"quantile reference": list(info.thresholds), "value": list(info.thresholds.values())}
        )
        s.body.append(
            "<h3>Quantile thresholds of this run (real-time serving uses the same)</h3>" + table(th)
        )
    return s


def _history(settings: BatchSettings) -> pd.DataFrame:
    rows = {}
    for rid in run_ids(settings):
        try:
            rows[rid] = load_run(settings, rid).segments
        except Exception:  # noqa: BLE001 - an unreadable old run is left out of the history
            continue
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0)


def identity_section(settings: BatchSettings) -> Section:
    s = Section("Identity")
    lake = Lake(settings.lake_dir)
    if lake.has("identity_map"):
        with lake.connect(["identity_map", "identity_edges"]) as con:
            nodes = con.execute(
                "SELECT node_type, count(*) AS identifiers, count(DISTINCT customer_id) AS customers "
                "FROM identity_map GROUP BY 1 ORDER BY 2 DESC"
            ).df()
            total = con.execute(
                "SELECT count(DISTINCT customer_id) AS customers, count(*) AS identifiers FROM identity_map"
            ).df()
            edges = (
                con.execute(
                    "SELECT status, coalesce(reason, '') AS reason, count(*) AS edges "
                    "FROM identity_edges GROUP BY ALL ORDER BY 3 DESC"
                ).df()
                if lake.has("identity_edges")
                else pd.DataFrame()
            )
        s.body.append(table(total))
        s.body.append(table(nodes))
        if len(edges):
            s.body.append("<h3>Edges kept and refused</h3>" + table(edges))
    else:
        s.body.append(_note("identity has not run"))
    quality = _identity_quality(settings, lake)
    if quality:
        frame = pd.DataFrame(quality).T.reset_index(names="scope")
        s.body.append("<h3>Quality against the generator's truth</h3>" + table(frame.round(4)))
    return s


def _identity_quality(settings: BatchSettings, lake: Lake) -> dict[str, Any] | None:
    saved = settings.reports_dir / "identity_quality.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    if (settings.truth_dir / "record_links.parquet").exists() and lake.has("identity_map"):
        from pipelines.identity.evaluate import evaluate

        return evaluate(lake, settings.truth_dir)
    return None


def quarantine_section(settings: BatchSettings) -> Section:
    s = Section("Quarantine")
    lake = Lake(settings.lake_dir)
    if "quarantine" not in lake.table_names():
        s.body.append(_note("no row was quarantined"))
        return s
    with lake.connect(["quarantine"]) as con:
        frame = con.execute(
            "SELECT source, reason, count(*) AS rows FROM quarantine GROUP BY ALL ORDER BY rows DESC"
        ).df()
    s.body.append(_note(f"{int(frame['rows'].sum()):,} rows quarantined (lake table 'quarantine')."))
    s.body.append(table(frame, max_rows=100))
    return s


def export_section(settings: BatchSettings, info: RunInfo) -> Section:
    s = Section("Exports of this run")
    folder = settings.exports_dir / info.run_id
    rows = []
    for manifest in sorted(folder.glob("*/*.manifest.json")) if folder.exists() else []:
        m = json.loads(manifest.read_text())
        rows.append(
            {
                "destination": m["destination"],
                "segment": m["segment"],
                "members": m["members"],
                "exported": m["exported"],
                **{f"suppressed {k}": v for k, v in m["suppressed"].items()},
                "sha256": m["sha256"][:12],
            }
        )
    if not rows:
        s.body.append(_note("not exported yet: `cip export`"))
        return s
    s.body.append(_note(f"files and manifests in {folder}"))
    s.body.append(table(pd.DataFrame(rows).fillna(0), max_rows=300))
    return s


# --- the page ----------------------------------------------------------------------------------------
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem} h2{border-bottom:2px solid #4477aa;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f2f5fa} td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:.6rem 0} .note{color:#555;font-size:.9rem}
nav a{margin-right:1rem}
.row{display:flex;flex-wrap:wrap;align-items:flex-start;gap:.5rem} .row img{max-width:32%}
.row img:last-child{max-width:64%}
"""
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-plots', broken.length ? 'broken' : 'ok');
  document.body.setAttribute('data-images', String(imgs.length));
  document.title = (broken.length ? '[broken plots] ' : '') + document.title;
});
"""


def render(settings: BatchSettings, info: RunInfo, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#s{i}">{_e(s.title.split(":")[0])}</a>' for i, s in enumerate(sections))
    body = "".join(
        f'<section id="s{i}"><h2>{_e(s.title)}</h2>{"".join(s.body)}</section>'
        for i, s in enumerate(sections)
    )
    versions = ", ".join(f"{m} v{v}" for m, v in info.versions.items())
    head = (
        f"<h1>CIP run report · {_e(info.run_id)}</h1>"
        f'<p class="note">as of {_e(info.as_of)} (features at {_e(info.features_at)}) · '
        f"{info.customers:,} customers scored · models {_e(versions)} · generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p><nav>{nav}</nav>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>CIP run report {_e(info.run_id)}</title><style>{STYLE}</style></head>"
        f"<body>{head}{body}<script>{SCRIPT}</script></body></html>"
    )


def write_report(settings: BatchSettings, run_id: str | None = None, path: Path | None = None) -> Path:
    """Render the report of the latest (or ``run_id``'s) run and write it atomically."""
    info = load_run(settings, run_id)
    lake = Lake(settings.lake_dir)
    scores = lake.read("scores", columns=[KEY, *info.score_columns]) if lake.has("scores") else pd.DataFrame()
    sections = [
        score_section(scores, info) if len(scores) else Section("Score distributions", [_note("no scores")]),
        model_section(settings, info),
        segment_section(settings, info),
        export_section(settings, info),
        identity_section(settings),
        quarantine_section(settings),
    ]
    out = path or settings.report_path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(settings, info, sections), encoding="utf-8")
    tmp.replace(out)
    return out
