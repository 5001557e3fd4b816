"""Global models across horizons: the rows each horizon trains on, the fits, the forecasts.

A global model is fitted at an origin on every feature row whose target (``h`` months later)
was known then: one model per horizon (``direct``), one model with the horizon as a feature
(``pooled``), or one month-ahead model whose forecasts are fed back (``recursive``). The
backtest runner and :func:`forecast.train` share these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from forecast.errors import ForecastError
from forecast.features import FeatureMatrix, RecursiveRows
from forecast.models._spec import ModelSpec
from forecast.models._threads import side_by_side

__all__ = ["train_index", "train_rows", "fit_horizons", "predict_horizons", "to_level", "feature_importance", "TooFewRows", "MIN_ROWS"]


def train_index(fm: FeatureMatrix, o: int, h: int, complete: bool = False,
                transform: str = "level") -> tuple[np.ndarray, np.ndarray]:
    """Row numbers whose target (h months later) is known at origin o, and those targets;
    ``complete``: only rows whose every feature is observed (a spec's ``drop_incomplete_rows``);
    ``transform="log_ratio"``: the targets are the changes ``log1p(y[t+h]) - log1p(y_last[t])``
    from each row's last observed value, and rows with none are left out."""
    if o - h < 0:
        return np.empty(0, np.int64), np.empty(0)
    upto = fm.rows_upto(o - h)
    y = fm.target(h)[upto]
    keep = np.isfinite(y)
    if transform == "log_ratio":
        anchor = fm.anchor[upto]
        keep &= np.isfinite(anchor)
        y = np.log1p(np.maximum(y, 0.0)) - np.log1p(np.maximum(np.nan_to_num(anchor), 0.0))
    elif transform != "level":
        raise ForecastError(f"unknown target transform {transform!r}; known: level, log_ratio")
    if complete:
        keep &= fm.complete[upto]
    rows = np.flatnonzero(keep)
    return rows, y[rows]


def train_rows(fm: FeatureMatrix, o: int, h: int, complete: bool = False,
               transform: str = "level") -> tuple[np.ndarray, np.ndarray]:
    """The feature rows whose target (h months later) is known at origin o, and those targets."""
    rows, y = train_index(fm, o, h, complete, transform)
    return fm.X.to_numpy()[rows], y


def to_level(fm: FeatureMatrix, o: int, values: np.ndarray, transform: str) -> np.ndarray:
    """Forecasts of a model of ``transform`` as levels: for ``log_ratio``, each area's change
    applied to its last value observed by origin ``o`` (NaN for an area never observed), never
    negative. ``values`` has one row per area (any trailing dims: horizons, quantiles)."""
    if transform == "level":
        return values
    anchor = fm.anchor[fm.rows_at(o)].astype(float)
    anchor = anchor.reshape(-1, *([1] * (np.ndim(values) - 1)))
    return np.maximum(np.expm1(np.log1p(np.maximum(anchor, 0.0)) + values), 0.0)


def _fit_rows(spec: ModelSpec, fm: FeatureMatrix, o: int, h: int, bins, found=None):
    """Fit ``spec`` for horizon ``h`` at origin ``o``; ``found``: its ``(rows, y)`` already taken."""
    rows, y = found if found is not None else _checked_index(spec, fm, o, h)
    if bins is not None:
        return clone(spec.build()).fit_binned(bins, rows, y)
    return clone(spec.build()).fit(fm.X.to_numpy()[rows], y)


def _checked_index(spec: ModelSpec, fm: FeatureMatrix, o: int, h: int):
    rows, y = train_index(fm, o, h, spec.drop_incomplete_rows, spec.resolved_target_transform)
    _check_rows(spec, fm, rows, o, h)
    return rows, y


def fit_horizons(spec: ModelSpec, fm: FeatureMatrix, o: int, horizons, bins=None) -> dict:
    if spec.strategy == "recursive":  # one month ahead; the forecasts are fed back (predict_horizons)
        return {"recursive": _fit_rows(spec, fm, o, 1, bins)}
    if spec.strategy == "direct":
        # every horizon's rows in horizon order, before any fit: the same error wherever it runs
        found = {h: _checked_index(spec, fm, o, h) for h in horizons}

        def fit_one(h):
            return _fit_rows(spec, fm, o, h, bins, found[h])
        # one model per horizon, fitted side by side in threads, each fit on one thread
        return dict(zip(horizons, side_by_side(fit_one, [(h,) for h in horizons])))
    parts = [(*train_rows(fm, o, h, spec.drop_incomplete_rows, spec.resolved_target_transform), h)
             for h in horizons]
    X = np.vstack([np.column_stack([x, np.full(len(x), h, np.float32)]) for x, _, h in parts])
    y = np.concatenate([y for _, y, _ in parts])
    _check_rows(spec, fm, X, o, None)
    return {"pooled": clone(spec.build()).fit(X, y)}


class TooFewRows(ForecastError):
    """A global model has too few training rows at an origin (the target is observed too rarely).

    ``n_rows``: how many it had (``MIN_ROWS`` are needed)."""

    def __init__(self, message: str, n_rows: int = 0):
        super().__init__(message)
        self.n_rows = n_rows


#: The fewest training rows a global model is fitted on.
MIN_ROWS = 50


def _check_rows(spec, fm, X, o, h):
    if len(X) < MIN_ROWS:
        complete = " with every feature observed (drop_incomplete_rows)" if spec.drop_incomplete_rows else ""
        raise TooFewRows(f"{spec.name}: only {len(X)} training rows{complete} at origin {fm.panel.time[o]:%Y-%m}"
                            f"{'' if h is None else f' for horizon {h}'}; the target is observed too "
                            "rarely for a global model here (use more history or fewer origins)", len(X))


def predict_horizons(models: dict, fm: FeatureMatrix, o: int, horizons, strategy, feature_params=None,
                     transform: str = "level"):
    """Point forecasts (areas × horizons) and the models' quantiles (areas × horizons × levels,
    or None) from origin ``o``, as levels (``transform``: what the models learned, see
    :func:`to_level`)."""
    X = fm.X.to_numpy()[fm.rows_at(o)]
    if strategy == "recursive":
        return _predict_recursive(models["recursive"], fm, X, o, horizons, feature_params)
    points, quants = [], []
    for h in horizons:
        if strategy == "direct":
            model, Xh = models[h], X
        else:
            model, Xh = models["pooled"], np.column_stack([X, np.full(len(X), h, np.float32)])
        point, quant = _predict(model, Xh)
        points.append(point)
        quants.append(quant)
    point = to_level(fm, o, np.column_stack(points), transform)
    raw = to_level(fm, o, np.stack(quants, axis=1), transform) if quants[0].shape[1] else None
    return point, raw


def _predict(model, X) -> tuple[np.ndarray, np.ndarray]:
    """The point forecast and the model's own quantiles (none for a plain scikit-learn regressor:
    conformal intervals come from its errors)."""
    if hasattr(model, "predict_with_quantiles"):
        return model.predict_with_quantiles(X)
    quantiles = model.predict_quantiles(X) if hasattr(model, "predict_quantiles") else np.empty((len(X), 0))
    return model.predict(X), quantiles


def _predict_recursive(model, fm: FeatureMatrix, X: np.ndarray, o: int, horizons, feature_params):
    """Forecast month o+1 from row o, append the point forecast to the target, rebuild the row
    of month o+1 from it, forecast o+2, and so on; the quantiles of each step are kept."""
    steps = max(horizons)
    extended = RecursiveRows(fm, feature_params, o, steps)
    points, quants = {}, {}
    for k in range(1, steps + 1):
        points[k], quants[k] = _predict(model, X)
        extended.push(k, points[k])
        if k < steps:
            X = extended.rows(o + k)
    point = np.column_stack([points[h] for h in horizons])
    raw = np.stack([quants[h] for h in horizons], axis=1) if quants[1].shape[1] else None
    return point, raw


def feature_importance(models: dict, fm: FeatureMatrix) -> pd.Series | None:
    if not all(hasattr(m, "feature_importances_") for m in models.values()):
        return None
    names = list(fm.X.columns)
    total = np.zeros(len(names))
    for m in models.values():
        total += m.feature_importances_[: len(names)]
    return pd.Series(total / max(total.sum(), 1e-12), index=names).sort_values(ascending=False)
