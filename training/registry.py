"""MLflow tracking and the model registry: where runs go, champions by alias, promotion.

The embedded default is a SQLite store ``<mlruns>/mlflow.db`` with artifacts under
``<mlruns>/artifacts`` (MLflow 3 refuses a plain file store); ``training.tracking_uri`` in settings
selects an MLflow server instead.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cip.errors import CipError
from training.specs import MODELS, spec

if TYPE_CHECKING:
    from training.config import TrainingSettings

CHAMPION = "champion"


def tracking_uri(settings: TrainingSettings) -> str:
    if settings.training.tracking_uri:
        return settings.training.tracking_uri
    return f"sqlite:///{(settings.mlflow_dir / 'mlflow.db').as_posix()}"


def optuna_storage(settings: TrainingSettings) -> str:
    return f"sqlite:///{(settings.mlflow_dir / 'optuna.db').as_posix()}"


def connect(settings: TrainingSettings) -> Any:
    """Point MLflow at the settings' store and return a client."""
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not settings.training.tracking_uri:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, registry_uri=uri)


def experiment_id(settings: TrainingSettings, client: Any, model: str) -> str:
    """The experiment ``cip-<model>`` (artifacts under mlruns/artifacts/<model> on the default store)."""
    name = f"cip-{model}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if not settings.training.tracking_uri:
        location = (settings.mlflow_dir / "artifacts" / model).as_uri()
    return client.create_experiment(name, artifact_location=location)


def champion(client: Any, registered: str) -> Any | None:
    """The version holding the ``champion`` alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(registered, CHAMPION)
    except MlflowException:
        return None


def bundle_path(settings: TrainingSettings, name: str, ref: str = CHAMPION) -> tuple[Path, Any]:
    """Download (or locate) the bundle of model ``name`` at alias or version ``ref``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = connect(settings)
    registered = spec(name).registered
    try:
        mv = (
            client.get_model_version(registered, ref)
            if ref.isdigit()
            else client.get_model_version_by_alias(registered, ref)
        )
    except MlflowException:
        raise CipError(
            f"no model '{registered}' with {'version' if ref.isdigit() else 'alias'} '{ref}' in {tracking_uri(settings)}",
            fix=f"train it first: `cip train {name}` (or list what exists: `cip models list`)",
        ) from None
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{registered}/{mv.version}")
    return Path(local) / "artifacts" / "bundle", mv


def list_models(settings: TrainingSettings) -> pd.DataFrame:
    """Every registered CIP model version with its aliases and key metrics."""
    client = connect(settings)
    rows: list[dict[str, Any]] = []
    for s in MODELS.values():
        aliases = _aliases(client, s.registered)
        for mv in client.search_model_versions(f"name='{s.registered}'"):
            run = client.get_run(mv.run_id) if mv.run_id else None
            m = run.data.metrics if run else {}
            rows.append(
                {
                    "model": s.registered,
                    "version": int(mv.version),
                    "aliases": ",".join(aliases.get(str(mv.version), [])),
                    f"test_{s.metric}": m.get(f"test_{s.metric}"),
                    "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC").strftime(
                        "%Y-%m-%d %H:%M"
                    ),
                    "run_id": mv.run_id,
                }
            )
    return pd.DataFrame(rows).sort_values(["model", "version"]) if rows else pd.DataFrame(rows)


def _aliases(client: Any, registered: str) -> dict[str, list[str]]:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(registered)
    except MlflowException:
        return {}
    out: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        out.setdefault(str(version), []).append(alias)
    return out


def promote(settings: TrainingSettings, name: str, version: int) -> None:
    """Make ``version`` of model ``name`` the champion (a person's decision, logged as a tag)."""
    from mlflow.exceptions import MlflowException

    client = connect(settings)
    registered = spec(name).registered
    try:
        client.get_model_version(registered, str(version))
    except MlflowException:
        raise CipError(
            f"'{registered}' has no version {version}", fix="see `cip models list` for the versions"
        ) from None
    client.set_registered_model_alias(registered, CHAMPION, str(version))
    client.set_model_version_tag(registered, str(version), "promoted_by", "cip models promote")
