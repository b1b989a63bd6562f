"""Paths are decided once, independent of the working directory, and reads create no store."""

from __future__ import annotations

import json
from pathlib import Path

from cip.lake import Lake
from cip.settings import project_root
from cli.settings import Settings
from tests.test_cli import cip

FX = "date,currency,rate_to_base\n2024-01-01,EUR,1.10\n"
EVENT = {
    "type": "page",
    "messageId": "m1",
    "timestamp": "2024-01-02T12:00:00Z",
    "anonymousId": "a1",
    "name": "Home",
}


def _ingest_small_lake(data_dir: Path, raw: Path) -> None:
    from pipelines.ingest.pipeline import run

    (raw / "events").mkdir(parents=True)
    (raw / "fx_rates.csv").write_text(FX)
    (raw / "events" / "2024-01.jsonl").write_text(json.dumps(EVENT) + "\n")
    run(Settings(data_dir=data_dir), raw)


def test_the_default_data_folder_is_the_projects_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("CIP_DATA_DIR", raising=False)
    monkeypatch.delenv("CIP_MLRUNS_DIR", raising=False)
    monkeypatch.delenv("CIP_CONFIG", raising=False)
    seen = set()
    for folder in (tmp_path / "a", tmp_path / "a" / "b"):
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(folder)
        s = Settings()
        seen.add((s.data_dir, s.mlruns_dir, s.lake_dir))
    assert len(seen) == 1
    data_dir, mlruns_dir, _ = seen.pop()
    assert data_dir == project_root() / "data" and mlruns_dir == project_root() / "mlruns"


def test_relative_paths_are_resolved_once_against_the_config_files_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "cip.yaml").write_text("data_dir: lake-data\nmlruns_dir: ../runs\n")
    monkeypatch.delenv("CIP_DATA_DIR", raising=False)
    monkeypatch.delenv("CIP_MLRUNS_DIR", raising=False)
    monkeypatch.chdir(project)  # cip.yaml in the working directory
    here = Settings()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the file named by CIP_CONFIG, relative to the working directory
    monkeypatch.setenv("CIP_CONFIG", "../project/cip.yaml")
    there = Settings()
    assert here.data_dir == there.data_dir == project / "lake-data"
    assert here.mlruns_dir == there.mlruns_dir == tmp_path / "runs"
    # an environment value is read against the working directory once, when settings load
    monkeypatch.setenv("CIP_DATA_DIR", "env-data")
    s = Settings()
    monkeypatch.chdir(project)
    assert s.data_dir == elsewhere / "env-data" and s.lake_dir == elsewhere / "env-data" / "lake"


def test_cip_status_from_another_folder_sees_the_same_lake(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "cip.yaml").write_text("data_dir: data\n")
    _ingest_small_lake(project / "data", tmp_path / "raw")
    assert Lake(project / "data" / "lake").table_names()
    other = tmp_path / "somewhere" / "else"
    other.mkdir(parents=True)
    config = {"CIP_CONFIG": str(project / "cip.yaml")}
    at_home = cip("status", cwd=project, env=config)
    away = cip("status", cwd=other, env=config)
    assert at_home.returncode == away.returncode == 0, at_home.stdout + at_home.stderr
    assert "events" in at_home.stdout and "is empty" not in at_home.stdout
    assert at_home.stdout == away.stdout
    assert not (other / "data").exists()


def test_reads_create_no_store(tmp_path):
    data, runs = tmp_path / "data", tmp_path / "runs"
    env = {"CIP_DATA_DIR": str(data), "CIP_MLRUNS_DIR": str(runs)}
    status = cip("status", cwd=tmp_path, env=env)
    assert status.returncode == 0 and "is empty" in status.stdout
    show = cip("features", "show", "cus_0123456789ab", cwd=tmp_path, env=env)
    assert show.returncode == 2 and "cip features materialize" in show.stdout, show.stdout + show.stderr
    assert "Traceback" not in show.stdout + show.stderr
    models = cip("models", "list", cwd=tmp_path, env=env)
    assert models.returncode == 0 and "no models registered" in models.stdout
    assert not data.exists() and not runs.exists()
    (data / "features").mkdir(parents=True)  # a features folder without a registry: the Feast read path
    from features.store import open_store

    try:
        open_store(Settings(data_dir=data)).online_features("churn_v1", ["cus_0123456789ab"])
    except Exception as exc:  # noqa: BLE001 - the error is checked below
        assert "cip features materialize" in str(exc)
    else:
        raise AssertionError("a read of a store that was never applied must fail")
    assert list((data / "features").iterdir()) == []
