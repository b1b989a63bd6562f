"""The `cip` command as a user meets it: help everywhere, clear errors, non-zero exits, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CIP = [sys.executable, "-m", "cli"]


def cip(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*CIP, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["generate"],
        ["ingest"],
        ["identity"],
        ["identity", "run"],
        ["identity", "explain"],
        ["identity", "split"],
        ["profiles"],
        ["features"],
        ["features", "build"],
        ["features", "apply"],
        ["features", "materialize"],
        ["demo"],
        ["status"],
        ["settings"],
        ["train"],
        ["train", "churn"],
        ["train", "all"],
        ["models"],
        ["models", "list"],
        ["models", "promote"],
    ],
)
def test_help_on_every_command(command, tmp_path):
    result = cip(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_missing_source_folder_is_a_clear_error(tmp_path):
    result = cip("ingest", "--source", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "does not exist" in out and "fix:" in out and "Traceback" not in out


def test_stage_before_its_input_says_what_to_run(tmp_path):
    result = cip("profiles", cwd=tmp_path, env={"CIP_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 2
    assert "cip identity run" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_training_before_its_inputs_and_unknown_models_are_clear_errors(tmp_path):
    env = {"CIP_DATA_DIR": str(tmp_path / "d"), "CIP_MLRUNS_DIR": str(tmp_path / "mlruns")}
    result = cip("train", "churn", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "cip profiles" in result.stdout
    result = cip("models", "promote", "churn", "3", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "no version 3" in result.stdout
    result = cip("models", "list", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "no models registered" in result.stdout
    for out in (result.stdout, result.stderr):
        assert "Traceback" not in out


def test_bad_settings_name_the_field(tmp_path):
    (tmp_path / "cip.yaml").write_text("identity:\n  probabilistic_threshold: 7\n")
    result = cip("settings", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "identity.probabilistic_threshold" in result.stdout
        and "Traceback" not in result.stdout + result.stderr
    )


def test_env_and_yaml_override_defaults(tmp_path):
    (tmp_path / "cip.yaml").write_text("seed: 11\n")
    result = cip("settings", cwd=tmp_path, env={"CIP_DATA_DIR": str(tmp_path / "elsewhere")})
    assert result.returncode == 0, result.stdout
    assert '"seed": 11' in result.stdout and "elsewhere" in result.stdout


def test_broken_source_file_names_file_and_column(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "crm_customers.csv").write_text("crm_id,first_name\nC1,Ann\n")
    result = cip("ingest", "--source", str(raw), cwd=tmp_path, env={"CIP_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 2
    assert (
        "crm_customers.csv" in result.stdout
        and "country" in result.stdout
        and "Traceback" not in result.stdout
    )


def test_a_mixed_folder_publishes_every_good_file_and_says_what_happened(tmp_path):
    """One broken file: the run publishes every other file, reports per file, exits non-zero;
    repeated messageIds are skipped and counted, a binary line is quarantined with its number."""
    import json

    from cip.lake import Lake

    raw = tmp_path / "raw"
    (raw / "events").mkdir(parents=True)
    (raw / "fx_rates.csv").write_text("date,currency,rate_to_base\n2024-01-01,EUR,1.10\n")
    (raw / "crm_customers.csv").write_text("crm_id,first_name\nC1,Ann\n")  # required columns missing

    def event(i: int) -> bytes:
        record = {
            "type": "page",
            "messageId": f"m{i}",
            "timestamp": "2024-01-02T12:00:00Z",
            "anonymousId": "a",
        }
        return json.dumps(record).encode()

    (raw / "events" / "2024-01.jsonl").write_bytes(b"\n".join([event(1), b"\xff\xfe\x00garbage", event(2)]))
    (raw / "events" / "2024-02.jsonl").write_bytes(b"\n".join([event(2), event(3)]))  # m2 again
    data = tmp_path / "data"
    result = cip("ingest", "--source", str(raw), cwd=tmp_path, env={"CIP_DATA_DIR": str(data)})
    out = result.stdout
    assert result.returncode == 2, out + result.stderr
    assert "Traceback" not in out + result.stderr
    assert "1 of 4 file(s) not ingested" in out and "crm_customers.csv" in out and "were published" in out
    assert "events: skipped 1 duplicates already in the lake" in out
    lake = Lake(data / "lake")
    assert [b.file_name for b in lake.batches()] == ["fx_rates.csv", "2024-01.jsonl", "2024-02.jsonl"]
    q = lake.read("quarantine")
    assert q[["source_file", "_row", "reason"]].values.tolist() == [["2024-01.jsonl", 2, "invalid_encoding"]]
    assert sorted(lake.read("events")["message_id"]) == ["m1", "m2", "m3"]
