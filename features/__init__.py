"""CIP's feature store: a Python package that is also the Feast repo (``feature_store.yaml`` + ``repo.py``).

* ``features.catalog``      every feature, view and service, declared once
* ``features.snapshots``    DuckDB snapshot computation (``compute_snapshots``) and ``build_snapshots``
* ``features.repo``         the Feast objects, derived from the catalogue
* ``features.store``        the API: build / apply / materialize / training frames / online reads / push
* ``features.materialize``  incremental, chunked, two-process materialization
* ``features.online``       exact, fast writes into Feast's SQLite online store

Feast itself is imported only when a store is opened.
"""

from typing import Any

from features.catalog import SERVICES, service_features

_API = (
    "CipFeatureStore",
    "apply",
    "build",
    "materialize",
    "online_features",
    "open_store",
    "push_events",
    "training_frame",
)


def __getattr__(name: str) -> Any:  # the store API loads pandas/pyarrow: import it on first use
    if name in _API:
        from features import store

        return getattr(store, name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")


__all__ = ["SERVICES", "service_features", *_API]
