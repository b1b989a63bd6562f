"""`cip serve`: check what the service needs, then run ``bentoml serve serving.service:CIP``."""

from __future__ import annotations

import os
import sys

from cip.errors import MissingInputError
from cip.lake import Lake
from features.quick import online_config
from serving.config import ServingSettings

SERVICE = "serving.service:CIP"


def preflight(settings: ServingSettings) -> None:
    """Stop with a clear error before starting workers that could not load."""
    from training.registry import champion, connect
    from training.specs import SPECS

    online = online_config(settings)
    if online.path is not None and not online.path.exists():
        raise MissingInputError(
            f"no online store at {online.path}", fix="run `cip features materialize` first"
        )
    if not Lake(settings.lake_dir).derived_path("identity_map").exists():
        raise MissingInputError("no identity map in the lake", fix="run `cip identity run` first")
    client = connect(settings)
    if not any(champion(client, s.registered) for s in SPECS.values()):
        raise MissingInputError("no champion model is registered", fix="train them first: `cip train all`")
    if not settings.serving.api_keys:
        raise MissingInputError(
            "no API keys configured: every request would get 401",
            fix='set serving.api_keys in cip.yaml, or e.g. CIP_SERVING__API_KEYS=\'{"my-secret-key": "admin"}\'',
        )


def command(settings: ServingSettings) -> tuple[list[str], dict[str, str]]:
    """The ``bentoml serve`` command line and its environment (the workers load the same settings:
    paths made absolute, host/port/workers as given)."""
    cfg = settings.serving
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_MLRUNS_DIR": str(settings.mlruns_dir),
        "CIP_SERVING__HOST": cfg.host,
        "CIP_SERVING__PORT": str(cfg.port),
        "CIP_SERVING__WORKERS": str(cfg.workers),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    argv = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", cfg.host, "--port", str(cfg.port)]
    return argv, env


def serve(settings: ServingSettings) -> None:
    """Replace this process by the BentoML server (Ctrl+C stops it)."""
    preflight(settings)
    argv, env = command(settings)
    os.execvpe(argv[0], argv, env)
