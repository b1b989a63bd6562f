"""LightGBM wrapped in scikit-learn's estimator contract, with calibration and reason codes.

``fit`` returns ``self``; learned attributes end in ``_``; ``clone`` works (``__init__`` only
stores its parameters). A fitted model saves to and loads from plain files (the LightGBM model
text and a JSON of everything else): no pickles travel with a model.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from training import attribution

BOOSTER_FILE = "booster.txt"
_COMPILE_LOCK = threading.Lock()
META_FILE = "meta.json"


class GBMModel(BaseEstimator):
    """A LightGBM booster for ``task`` = ``binary`` (calibrated probabilities) or ``regression``
    (Tweedie: zero-inflated, heavy-tailed amounts).

    ``monotone`` maps features to +1/-1: the score may only rise (fall) with them, so business
    logic such as "more days since the last order never lowers churn risk" holds for every customer.

    ``categorical`` names columns whose values are mapped to fixed codes (the map is learned in
    ``fit`` and saved with the model, so unseen values score as missing).
    """

    def __init__(
        self,
        task: str = "binary",
        params: dict[str, Any] | None = None,
        max_rounds: int = 2000,
        early_stopping_rounds: int = 50,
        calibrate: bool = True,
        categorical: tuple[str, ...] = (),
        monotone: dict[str, int] | None = None,
        num_threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.task = task
        self.params = params
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.calibrate = calibrate
        self.categorical = categorical
        self.monotone = monotone
        self.num_threads = num_threads
        self.seed = seed

    # --- training ---------------------------------------------------------------------------------
    def lgb_params(self) -> dict[str, Any]:
        """LightGBM parameters: the task's objective and metric under the user's ``params``."""
        base: dict[str, Any] = (
            {"objective": "binary", "metric": "auc"}
            if self.task == "binary"
            else {"objective": "tweedie", "tweedie_variance_power": 1.5, "metric": "rmse"}
        )
        base |= {
            "verbosity": -1,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "max_bin": 127,
        }
        if self.num_threads:
            base["num_threads"] = self.num_threads
        if self.monotone and hasattr(self, "feature_names_"):
            base["monotone_constraints"] = [int(self.monotone.get(f, 0)) for f in self.feature_names_]
            base["monotone_constraints_method"] = "advanced"
        return base | dict(self.params or {})

    def dataset(self, X: pd.DataFrame, y: Any = None, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            self._matrix(X),
            label=None if y is None else np.asarray(y, dtype=float),
            feature_name=list(self.feature_names_),
            categorical_feature=[c for c in self.categorical if c in self.feature_names_] or "auto",
            reference=reference,
            free_raw_data=True,
        )

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
        callbacks: list | None = None,
    ) -> GBMModel:
        """Train; with ``eval_set`` stop early on it and calibrate probabilities on it."""
        if self.task not in ("binary", "regression"):
            raise ValueError(f"task must be 'binary' or 'regression', not {self.task!r}")
        self.feature_names_ = list(X.columns)
        self.categories_ = {c: sorted(map(str, pd.unique(X[c].dropna()))) for c in self.categorical}
        train = self.dataset(X, y)
        valid_sets, cbs = [], list(callbacks or [])
        if eval_set is not None:
            valid_sets = [self.dataset(eval_set[0], eval_set[1], reference=train)]
            cbs.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        self.booster_ = lgb.train(
            self.lgb_params(), train, num_boost_round=self.max_rounds, valid_sets=valid_sets, callbacks=cbs
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.calibration_: dict[str, list[float]] | None = None
        if self.task == "binary" and self.calibrate and eval_set is not None:
            self.calibration_ = _isotonic(self._uncalibrated(eval_set[0]), np.asarray(eval_set[1], float))
        return self

    # --- scoring ----------------------------------------------------------------------------------
    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise KeyError(f"the frame lacks model features {missing[:5]}{' …' if len(missing) > 5 else ''}")
        out = X[self.feature_names_].copy()
        for c, values in self.categories_.items():
            codes = pd.Categorical(out[c].astype("string"), categories=values).codes.astype(float)
            out[c] = np.where(codes < 0, np.nan, codes)
        return out.astype(float)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the booster reads: model features in order, categories as codes."""
        return self._matrix(X).to_numpy(dtype=float)

    def raw_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's raw score (log-odds, or log of the expected amount); ``X`` is a frame or
        a :meth:`matrix`. After :meth:`use_compiled`, from the compiled trees."""
        m = X if isinstance(X, np.ndarray) else self._matrix(X)
        if getattr(self, "_compile_to", None) is not None:
            return self._compiled().raw_score(np.asarray(m, dtype=float))
        return self.booster_.predict(m, raw_score=True, num_iteration=self.best_iteration_)

    def use_compiled(self, cache_dir: Path | None, threads: int = 0) -> GBMModel:
        """Predict raw scores with lleaves-compiled trees (:mod:`training.compiled`), compiled on
        first use into (or loaded from) ``cache_dir``; ``None`` goes back to LightGBM."""
        self._compile_to = (Path(cache_dir), threads) if cache_dir is not None else None
        self._compiled_trees = None
        return self

    def _compiled(self) -> Any:
        from training.compiled import compile_booster

        with _COMPILE_LOCK:
            if self._compiled_trees is None:
                cache_dir, threads = self._compile_to
                self._compiled_trees = compile_booster(
                    self.booster_, self.best_iteration_, cache_dir, threads
                )
        return self._compiled_trees

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Scores from raw scores: calibrated probabilities (binary) or expected amounts."""
        if self.task != "binary":
            return np.exp(raw)
        p = 1.0 / (1.0 + np.exp(-raw))
        if self.calibration_:
            p = np.interp(p, self.calibration_["x"], self.calibration_["y"])
        return p

    def _uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.raw_score(X)
        return 1.0 / (1.0 + np.exp(-raw)) if self.task == "binary" else np.exp(raw)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated ``P(label = 1)`` as an ``(n, 2)`` array (binary task)."""
        if self.task != "binary":
            raise AttributeError("predict_proba is for binary models")
        p = self._uncalibrated(X)
        if self.calibration_:
            p = np.interp(p, self.calibration_["x"], self.calibration_["y"])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class (binary) or the expected amount (regression)."""
        return self.from_raw(self.raw_score(X))

    def contributions(self, X: pd.DataFrame | np.ndarray, method: str = "tree_shap") -> np.ndarray:
        """Per-feature contributions to the raw score by ``method`` (``tree_shap`` or ``path``, see
        :mod:`training.attribution`); the last column is the base value, and each row sums to
        :meth:`raw_score`. ``X`` is a frame or a :meth:`matrix`."""
        m = X if isinstance(X, np.ndarray) else self._matrix(X)
        table = self.path_table() if method == "path" else None
        return attribution.contributions(self.booster_, m, method, self.best_iteration_, table)

    def path_table(self) -> attribution.PathTable:
        """The leaves' path credits (built once per fitted booster)."""
        key = (id(self.booster_), self.best_iteration_)
        cached = getattr(self, "_path_table", None)
        if cached is None or cached[0] != key:
            cached = (key, attribution.PathTable.from_booster(self.booster_, self.best_iteration_))
            self._path_table = cached
        return cached[1]

    def importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / BOOSTER_FILE), num_iteration=self.best_iteration_)
        meta = {
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "best_iteration": self.best_iteration_,
            "calibration": self.calibration_,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> GBMModel:
        meta = json.loads((Path(directory) / META_FILE).read_text())
        params = meta["params"]
        params["categorical"] = tuple(params.get("categorical") or ())
        model = cls(**params)
        model.booster_ = lgb.Booster(model_file=str(Path(directory) / BOOSTER_FILE))
        model.feature_names_ = meta["feature_names"]
        model.categories_ = meta["categories"]
        model.best_iteration_ = int(meta["best_iteration"])
        model.calibration_ = meta["calibration"]
        return model


def _isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Isotonic map from raw probability to observed rate, as interpolation knots."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
