"""Event ingestion's fast paths: files staged in parallel but published one batch per file in
order, malformed lines found without re-parsing every line, and trimming only where needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cip.lake import Lake
from cli.settings import Settings
from pipelines.ingest import rules
from pipelines.ingest.pipeline import run

NOW = datetime(2026, 7, 1, tzinfo=UTC)
FX = "date,currency,rate_to_base\n2024-01-01,EUR,1.10\n"


def _event(i: int, **extra: object) -> dict:
    return {
        "type": "page",
        "messageId": f"m{i}",
        "timestamp": "2024-01-02T12:00:00Z",
        "anonymousId": f"a{i}",
        "name": "Home",
    } | extra


def _write(folder: Path, name: str, lines: list[object]) -> Path:
    (folder / "events").mkdir(parents=True, exist_ok=True)
    (folder / "fx_rates.csv").write_text(FX)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    path = folder / "events" / name
    path.write_text(text, encoding="utf-8")
    return path


def _settings(tmp_path: Path, workers: int = 2) -> Settings:
    return Settings(data_dir=tmp_path / "data", ingest={"workers": workers})


def test_parallel_files_publish_one_batch_each_in_order_and_reingest_is_idempotent(tmp_path):
    raw = tmp_path / "raw"
    for month in range(1, 6):
        _write(raw, f"2024-{month:02d}.jsonl", [_event(month * 100 + i) for i in range(month)])
    _write(raw, "2024-06.jsonl", [_event(100)])  # same bytes as 2024-01.jsonl
    settings = _settings(tmp_path, workers=3)
    report = run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    events = [b for b in lake.batches() if b.source == "events"]
    assert [b.file_name for b in events] == [f"2024-{m:02d}.jsonl" for m in range(1, 6)]
    assert [b.rows_in for b in events] == [1, 2, 3, 4, 5]
    assert [f.status for f in report.files if f.source == "events"] == ["ingested"] * 5 + ["skipped"]
    assert len(lake.read("events")) == 15
    assert not list((settings.lake_dir / "_staging").iterdir())
    again = run(settings, raw, now=NOW)
    assert all(f.status == "skipped" for f in again.files)
    assert lake.batches() == [*lake.batches()[:1], *events]


def test_malformed_lines_are_exact_without_line_by_line_parsing(tmp_path):
    lines = [
        _event(1),
        "{}",  # valid object without fields: missing ids, not malformed
        "[1, 2]",
        '{"type": "page", "messageId": "m3"}}garbage',
        "null",
        _event(4),
    ]
    settings = _settings(tmp_path)
    report = run(settings, _write(tmp_path / "raw", "2024-01.jsonl", lines).parent.parent, now=NOW)
    q = Lake(settings.lake_dir).read("quarantine").sort_values("_row")
    assert q[["_row", "reason"]].values.tolist() == [
        [2, "missing_required"],
        [3, "malformed_json"],
        [4, "malformed_json"],
        [5, "malformed_json"],
    ]
    assert q["record"].tolist() == lines[1:5]
    events = [f for f in report.files if f.source == "events"][0]
    assert (events.rows_in, events.rows_accepted) == (6, 2)


def test_blank_lines_fall_back_to_line_by_line_parsing(tmp_path):
    path = _write(tmp_path / "raw", "2024-01.jsonl", [_event(1), "", "{broken", _event(2)])
    settings = _settings(tmp_path)
    run(settings, path.parent.parent, now=NOW)
    q = Lake(settings.lake_dir).read("quarantine").sort_values("_row")
    assert q[["_row", "reason", "record"]].values.tolist() == [
        [2, "malformed_json", ""],
        [3, "malformed_json", "{broken"],
    ]
    assert sorted(Lake(settings.lake_dir).read("events")["_row"]) == [1, 4]


@pytest.mark.parametrize("pad", [" ", "\u00a0", "\u3000"])
def test_values_are_trimmed_only_where_needed(tmp_path, pad):
    lines = [
        _event(1, name=f"{pad}Home{pad}", traits={"email": f"{pad}Anna@Example.com"}),
        _event(2, anonymousId=""),  # blank id: falls back to missing userId too
        _event(3, name="Café", userId="C3"),
        _event(4, messageId=f"m4{pad}", name="x y"),
    ]
    settings = _settings(tmp_path)
    run(settings, _write(tmp_path / "raw", "2024-01.jsonl", lines).parent.parent, now=NOW)
    lake = Lake(settings.lake_dir)
    ev = lake.read("events").set_index("message_id")
    assert ev.loc["m1", "page_name"] == "Home" and ev.loc["m1", "email"] == "anna@example.com"
    assert ev.loc["m3", "page_name"] == "Café" and ev.loc["m4", "page_name"] == "x y"
    q = lake.read("quarantine")
    assert q[["_row", "reason", "field"]].values.tolist() == [[2, "missing_required", "anonymous_id|user_id"]]
    assert pd.isna(q["value"].iloc[0]) or q["value"].iloc[0] == ""


def test_lookups_run_once_per_distinct_value_across_files():
    seen: list[str] = []

    def build(frame: pd.DataFrame) -> pd.DataFrame:
        seen.extend(frame["raw"])
        return rules.name_lookup(frame)

    first = pd.DataFrame({"raw": pd.array(["josé", "ANNA"], dtype="string[pyarrow]")})
    second = pd.DataFrame({"raw": pd.array(["ANNA", "o'neil", None], dtype="string[pyarrow]")})
    name = f"test_names_{id(seen)}"
    rules.cached_lookup(name, first, build)
    out = rules.cached_lookup(name, second, build)
    assert seen[:2] == ["josé", "ANNA"] and seen[2] == "o'neil" and pd.isna(seen[3]) and len(seen) == 4
    pd.testing.assert_frame_equal(out, rules.name_lookup(second))


def test_line_index_fetches_lines_across_chunk_boundaries(tmp_path, monkeypatch):
    from cip.lake import file_sha256
    from pipelines.ingest.readers import LineIndex

    lines = ["{}", "", '{"a": "é"}', "[1]\r", "x" * 20, "{}", "last without newline"]
    path = tmp_path / "f.jsonl"
    path.write_bytes("\n".join(lines).encode())
    monkeypatch.setattr(LineIndex, "CHUNK", 5)  # lines straddle many chunks
    index = LineIndex(path)
    assert index.count == len(lines) and index.sha256 == file_sha256(path)
    rows = [7, 1, 2, 3, 4, 5, 6]
    got = index.table(rows).to_pydict()
    assert got["_row"] == rows
    assert got["line"] == [lines[r - 1].removesuffix("\r") for r in rows]


@pytest.mark.parametrize("content", [b"", b"{}", b"{}\n", b"\n\n"])
def test_line_index_counts_lines_of_tiny_files(tmp_path, content):
    from cip.lake import file_sha256
    from pipelines.ingest.readers import LineIndex

    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    index = LineIndex(path)
    assert index.count == len(content.decode().splitlines()) and index.sha256 == file_sha256(path)


def test_a_file_truncated_while_ingested_gives_a_clear_error(tmp_path):
    from cip.errors import SourceFileError
    from pipelines.ingest.readers import LineIndex

    path = tmp_path / "f.jsonl"
    path.write_bytes(b"{}\n" * 100)
    index = LineIndex(path)
    with path.open("r+b") as fh:
        fh.truncate(30)  # log rotation with copytruncate, say
    with pytest.raises(SourceFileError, match="changed while ingested"):
        index.table([90])


def test_prefetch_is_only_a_hint(tmp_path):
    from pipelines.ingest.readers import LineIndex, prefetch

    path = tmp_path / "f.jsonl"
    path.write_bytes(b"{}\n" * 1000)
    prefetch(path)
    prefetch(tmp_path / "missing.jsonl")  # problems surface when the file is read, not here
    assert LineIndex(path).count == 1000


def test_parallel_stagings_are_limited_by_memory():
    from pipelines.ingest.pipeline import plan_workers

    gib = 1 << 30
    assert plan_workers(2, 0, 36, gib // 2, 24 * gib) == 2  # one per core
    assert plan_workers(8, 3, 36, gib // 2, 24 * gib) == 3  # as configured
    assert plan_workers(2, 0, 1, gib // 2, 24 * gib) == 1  # one file
    assert plan_workers(4, 0, 10, 2 * gib, 24 * gib) == 1  # two 8 GiB peaks would not fit in 12 GiB
    assert plan_workers(4, 0, 10, 20 * gib, 24 * gib) == 1  # never fewer than one


def _lake_raw(lake: Lake, batch) -> Path:
    return lake.root / "raw" / batch.source / batch.batch_id / batch.file_name


def test_a_file_changed_after_its_snapshot_is_ingested_as_snapshotted(tmp_path):
    """The hash, the parsed rows, the quarantine and the lake's raw copy all come from one copy of
    the file, taken in the read that hashes it: a writer still appending meanwhile changes none."""
    from cip.contracts import CONTRACTS
    from cip.lake import file_sha256
    from pipelines.ingest.pipeline import stage_file
    from pipelines.ingest.readers import take_snapshot

    raw = tmp_path / "raw"
    path = _write(raw, "2024-01.jsonl", [_event(1), "{broken", _event(2)])
    before = path.read_bytes()
    settings = _settings(tmp_path)
    lake = Lake(settings.lake_dir)
    staging = lake.new_staging("events.0")
    snapshot = take_snapshot(path, staging / "raw" / path.name, json_lines=True)
    with path.open("a") as fh:  # the exporter appends, then rewrites the start
        fh.write(json.dumps(_event(3)) + "\n")
    with path.open("r+b") as fh:
        fh.write(b"XXXX")
    contract = next(c for c in CONTRACTS if c.source == "events")
    fx = pd.DataFrame(columns=["date", "currency", "rate_to_base"])
    report, record = stage_file(contract, snapshot, staging, settings=settings, now=NOW, fx=fx)
    assert (record.rows_in, record.rows_accepted, record.rows_quarantined) == (3, 2, 1)
    assert record.sha256 == snapshot.sha256 and record.bytes == len(before)
    lake.publish(staging, record)
    lake.discard(staging)
    (batch,) = lake.batches()
    copy = _lake_raw(lake, batch)
    assert copy.read_bytes() == before and file_sha256(copy) == batch.sha256
    assert not copy.stat().st_mode & 0o222  # read-only
    assert sorted(lake.read("events")["message_id"]) == ["m1", "m2"]
    quarantined = lake.read("quarantine")
    assert quarantined["record"].tolist() == ["{broken"] and quarantined["source_file"].tolist() == [
        path.name
    ]


def test_raw_copies_match_the_manifest_and_reingest_hashes_without_copying(tmp_path, monkeypatch):
    """Every published raw copy hashes to its manifest record. A second run over the same files
    hashes them in place (same name and size as a batch) and copies nothing; a renamed copy of
    a file is snapshotted, found known by its hash, and skipped."""
    from cip.lake import file_sha256
    from pipelines.ingest import pipeline

    raw = tmp_path / "raw"
    for month in (1, 2):
        _write(raw, f"2024-{month:02d}.jsonl", [_event(month * 10 + i) for i in range(3)])
    settings = _settings(tmp_path)
    run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    batches = lake.batches()
    assert {b.source for b in batches} == {"fx_rates", "events"}
    for batch in batches:
        copy = _lake_raw(lake, batch)
        assert file_sha256(copy) == batch.sha256 and copy.stat().st_size == batch.bytes > 0

    snapshots: list[Path] = []
    real = pipeline.take_snapshot

    def counted(path: Path, dest: Path, **kwargs: object):
        snapshots.append(path)
        return real(path, dest, **kwargs)

    monkeypatch.setattr(pipeline, "take_snapshot", counted)
    (raw / "events" / "2024-03.jsonl").write_bytes((raw / "events" / "2024-01.jsonl").read_bytes())
    again = run(settings, raw, now=NOW)
    assert [f.status for f in again.files] == ["skipped"] * 4
    assert snapshots == [raw / "events" / "2024-03.jsonl"]
    assert lake.batches() == batches
    assert not list((settings.lake_dir / "_staging").iterdir())


def test_one_writer_per_lake_and_a_crashed_run_leaves_no_staging_behind(tmp_path):
    """A second ingest into a lake that another process is writing to stops with a clear error;
    staging folders left by a crashed run (raw copies can be large) are removed by the next run."""
    from cip.errors import LakeBusyError

    raw = tmp_path / "raw"
    _write(raw, "2024-01.jsonl", [_event(1)])
    settings = _settings(tmp_path)
    lake = Lake(settings.lake_dir)
    with lake.writing(), pytest.raises(LakeBusyError, match=r"another process \(pid \d+\) is writing"):
        run(settings, raw, now=NOW)
    left = lake.new_staging("events.0.deadbeef")  # as a killed run leaves it
    (left / "raw").mkdir()
    (left / "raw" / "2024-01.jsonl").write_bytes(b"x" * 1000)
    report = run(settings, raw, now=NOW)
    assert [f.status for f in report.files] == ["ingested", "ingested"]
    assert not list((settings.lake_dir / "_staging").iterdir())


def test_files_staged_one_after_another_on_a_thread_do_not_see_each_other(tmp_path):
    """A staging thread keeps its DuckDB database across files (a cursor per file): a file's
    tables and quarantine come out the same after another file as on a fresh thread."""
    first = [_event(1), "{bad", _event(2, type="identify", traits={"email": "A@X.COM"})]
    second = [_event(3), _event(3), _event(4, type="identify", traits={"email": " b@y.org "})]
    both, alone = tmp_path / "both", tmp_path / "alone"
    _write(both, "2024-01.jsonl", first)
    _write(both, "2024-02.jsonl", second)
    _write(alone, "2024-02.jsonl", second)
    lakes = {}
    for name, raw in (("both", both), ("alone", alone)):
        settings = Settings(data_dir=tmp_path / f"data-{name}", ingest={"workers": 1})
        run(settings, raw, now=NOW)
        lakes[name] = Lake(settings.lake_dir)

    def second_file(lake: Lake, table: str) -> pd.DataFrame:
        frame = lake.read(table)
        column = "source_file" if table == "quarantine" else "_source_file"
        frame = frame[frame[column] == "2024-02.jsonl"].drop(
            columns=["_ingested_at", "ingested_at"], errors="ignore"
        )
        return frame.sort_values(list(frame.columns)[:3]).reset_index(drop=True)

    for table in ("events", "quarantine"):
        pd.testing.assert_frame_equal(second_file(lakes["both"], table), second_file(lakes["alone"], table))
    assert len(second_file(lakes["both"], "quarantine")) == 1  # the repeated message id


def test_line_index_finds_lines_when_reads_come_short(tmp_path):
    """Chunks are where the reads ended, not multiples of the chunk size: a source that delivers
    short reads (a pipe here; a file growing while it is read) still gives the right lines."""
    import os
    import threading

    from cip.lake import file_sha256
    from pipelines.ingest.readers import take_snapshot

    lines = [json.dumps(_event(i)) for i in range(3_000)]
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as fh:
            for i in range(0, len(lines), 7):  # many small writes: the reader sees short reads
                fh.write(("\n".join(lines[i : i + 7]) + "\n").encode())
                fh.flush()

    writer = threading.Thread(target=write)
    writer.start()
    snapshot = take_snapshot(fifo, tmp_path / "copy.jsonl", json_lines=True)
    writer.join()
    index = snapshot.index
    assert len(index._starts) > 1 and index.count == len(lines)
    assert snapshot.sha256 == file_sha256(snapshot.path)
    rows = [1, 2, 999, 1500, 2999, 3000]
    assert index.table(rows)["line"].to_pylist() == [lines[r - 1] for r in rows]


def _order(i: int, **extra: object) -> dict:
    items = [{"product_id": "SKU1", "category": "toys", "price": 5.0, "quantity": 1}] * 2
    props = {"order_id": f"o{i}", "revenue": 10.0, "currency": "USD", "products": items}
    return _event(i, type="track", event="Order Completed", properties=props) | extra


@pytest.mark.parametrize("one_pass", [True, False])
def test_message_ids_already_in_the_lake_are_skipped_across_files_and_runs(tmp_path, one_pass):
    """Segment dedupes on messageId: a re-export or an overlapping backfill under another file name
    repeats ids; they are skipped and counted, in the same run and in a later one."""
    raw = tmp_path / "raw"
    _write(raw, "2024-01.jsonl", [_event(1), _event(2), _order(3), _event(4), _event(5)])
    _write(raw, "2024-01.reexport.jsonl", [_event(4), _event(5), _event(6), _event(6), _event(7)])
    settings = Settings(data_dir=tmp_path / "data", ingest={"workers": 2, "one_pass": one_pass})
    first = run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    counts = [(f.rows_in, f.rows_accepted, f.rows_quarantined, f.duplicates) for f in first.ingested[1:]]
    assert counts == [(5, 5, 0, 0), (5, 2, 1, 2)]  # m6 twice in one file: duplicate_key, as before
    _write(raw, "backfill.jsonl", [_event(2), _order(3), _event(8), _event(7)])  # a later run
    second = run(settings, raw, now=NOW)
    (backfill,) = second.ingested
    assert (backfill.rows_in, backfill.rows_accepted, backfill.duplicates) == (4, 1, 3)
    assert backfill.tables == {"events": 1, "order_lines": 0}
    events = lake.read("events")
    assert sorted(events["message_id"]) == [f"m{i}" for i in range(1, 9)]
    assert len(lake.read("order_lines")) == 2  # the repeated order's lines are not doubled
    for batch in lake.batches():
        assert batch.rows_in == batch.rows_accepted + batch.rows_quarantined + batch.duplicates
    assert [b.duplicates for b in lake.batches()] == [0, 0, 2, 3]
    assert (lake.batches()[-1].tables, lake.batches()[-1].rows_accepted) == (backfill.tables, 1)
    assert all(f.status == "skipped" for f in run(settings, raw, now=NOW).files)


@pytest.mark.parametrize("blank", [False, True], ids=["in place", "line by line"])
@pytest.mark.parametrize("one_pass", [True, False])
def test_a_line_that_is_not_utf8_is_quarantined_with_its_line_number(tmp_path, one_pass, blank):
    binary = b"\x00\xff\xfe\x89PNG\r\x1a" + bytes(range(128, 160))
    latin1 = json.dumps(_event(3, name="Caf\u00e9"), ensure_ascii=False).encode("latin-1")  # not UTF-8
    lines = [json.dumps(_event(1)).encode(), binary, latin1, json.dumps(_event(4)).encode()]
    if blank:
        lines.append(b"")  # rows no longer line up: every line parsed on its own
    lines.append(json.dumps(_event(5)).encode())
    path = _write(tmp_path / "raw", "2024-01.jsonl", [])
    path.write_bytes(b"\n".join(lines) + b"\n")
    settings = Settings(data_dir=tmp_path / "data", ingest={"one_pass": one_pass})
    report = run(settings, path.parent.parent, now=NOW)
    lake = Lake(settings.lake_dir)
    q = lake.read("quarantine").sort_values("_row")
    want = [[2, "invalid_encoding", "line"], [3, "invalid_encoding", "line"]]
    want += [[5, "malformed_json", "line"]] if blank else []  # the blank line, as before
    assert q[["_row", "reason", "field"]].values.tolist() == want
    escaped = "".join(f"\\x{b:x}" for b in range(128, 160))  # bytes kept, escaped
    assert q["record"].iloc[0] == "\x00\\xff\\xfe\\x89PNG\r\x1a" + escaped
    assert q["record"].iloc[1] == latin1.decode("utf-8", errors="backslashreplace")
    assert sorted(lake.read("events")["message_id"]) == ["m1", "m4", "m5"]  # the rest of the file lands
    (events,) = [f for f in report.files if f.source == "events"]
    assert events.reasons["invalid_encoding"] == 2 and events.rows_accepted == 3
