"""How fast can DuckDB alone parse and rewrite the event files? The floor under `cip ingest`.

    .venv/bin/python benchmarks/floor_events.py /path/to/raw/events

Each step is one SQL statement over all ``*.jsonl`` files, with no validation or
standardization. Prints events/s per step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cip.contracts import CONTRACTS  # noqa: E402
from pipelines.ingest.readers import _accessor, _duckdb_type, json_structure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("events_dir", type=Path)
    args = ap.parse_args()
    contract = next(c for c in CONTRACTS if c.source == "events")
    structure = json_structure(contract)
    columns = "{" + ", ".join(f"'{k}': '{_duckdb_type(v)}'" for k, v in structure.items()) + "}"
    scan = (
        f"read_json('{(args.events_dir / '*.jsonl').as_posix()}', format = 'newline_delimited', "
        f"ignore_errors = true, columns = {columns})"
    )
    flat = ", ".join(f'p{_accessor(f.path or "$." + f.name)} AS "{f.name}"' for f in contract.fields)
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.parquet"
        steps = {
            "parse, count(*)": f"SELECT count(*) FROM {scan}",
            f"parse -> {len(contract.fields)} string columns -> Parquet zstd-1": (
                f"COPY (SELECT {flat} FROM {scan} p) TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
            ),
            "same, uncompressed": (
                f"COPY (SELECT {flat} FROM {scan} p) TO '{out}' (FORMAT parquet, COMPRESSION uncompressed)"
            ),
            "parse -> nested structs -> Parquet zstd-1": (
                f"COPY (SELECT * FROM {scan}) TO '{out}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
            ),
        }
        n = con.execute(f"SELECT count(*) FROM {scan}").fetchall()[0][0]
        for name, sql in steps.items():
            started = time.perf_counter()
            con.execute(sql).fetchall()
            seconds = time.perf_counter() - started
            print(f"{name:<50} {seconds:6.2f} s  {n / seconds:>12,.0f} events/s")


if __name__ == "__main__":
    main()
