"""The direct route: a classifier of "crosses the trigger within the lead time" per origin.

At origin ``o`` the classifier learns from months ``s <= o - lead`` only, the months whose
whole window had happened by ``o``, each labelled against the threshold as it stood at ``s``.
Its features are the model's feature matrix plus the threshold itself (``log1p``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from forecast.errors import ForecastError
from forecast.features import FeatureMatrix
from forecast.models import side_by_side

__all__ = ["CLASSIFIERS", "classifier_probabilities"]


def _lightgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
                          subsample=0.8, subsample_freq=1, colsample_bytree=0.8, max_bin=63,
                          n_jobs=1, random_state=0, verbose=-1)


def _signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


def _logistic():
    # imputer, scaler and model are refitted at each origin: no statistic from after it.
    # Counts are heavy-tailed: on a log scale one district's 90,000 arrivals do not swamp the fit.
    # A feature never observed before the origin (a climatology with too few earlier years) is
    # kept as a constant, so the columns are the same at every origin.
    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         FunctionTransformer(_signed_log1p), StandardScaler(),
                         LogisticRegression(C=0.1, max_iter=2000))


#: Classifiers a trigger evaluation can run, by name.
CLASSIFIERS: dict[str, Callable] = {"lightgbm": _lightgbm, "logistic": _logistic}


def _design(fm: FeatureMatrix, thresholds: np.ndarray) -> np.ndarray:
    X = fm.X.to_numpy()
    thr = np.log1p(np.maximum(thresholds, 0.0)).T.ravel().astype(np.float32)  # rows (time, area)
    return np.column_stack([X, thr])


def classifier_probabilities(
    name: str,
    fm: FeatureMatrix,
    thresholds: np.ndarray,
    events: np.ndarray,
    lead: int,
    origins: Sequence[int],
    *,
    refit_every: int = 1,
    min_events: int = 5,
) -> np.ndarray:
    """P(crossing) at each origin from classifier ``name``, shape ``(len(origins), n_areas)``.

    NaN where the area has no threshold at the origin. An origin whose past holds fewer than
    ``min_events`` events or non-events gets the past event rate (no classifier can learn).
    """
    if name not in CLASSIFIERS:
        raise ForecastError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")
    X = _design(fm, thresholds)
    labels = events.T.ravel()
    n_a = fm.n_areas

    def at(o: int):
        rows = fm.rows_upto(o - lead) if o - lead >= 0 else slice(0, 0)
        y = labels[rows]
        ok = np.isfinite(y)
        Xt, yt = X[rows][ok], y[ok].astype(int)
        now = X[fm.rows_at(o)]
        has = np.isfinite(thresholds[:, o])
        n_pos = int(yt.sum())
        if min(n_pos, len(yt) - n_pos) < min_events:
            rate = n_pos / len(yt) if len(yt) else np.nan
            return np.where(has, rate, np.nan), None
        return None, (Xt, yt, now, has)

    out = np.full((len(origins), n_a), np.nan)
    jobs, fitted = [], None
    for i, o in enumerate(origins):
        fallback, data = at(o)
        if fallback is not None:
            out[i] = fallback
            continue
        refit = fitted is None or i % refit_every == 0
        jobs.append((i, data, refit))
        fitted = True

    def run(data):
        Xt, yt, now, has = data
        model = clone(CLASSIFIERS[name]()).fit(Xt, yt)
        return model

    refits = [j for j in jobs if j[2]]
    # one thread per fit, fits side by side: BLAS or OpenMP threads inside each would
    # oversubscribe the cores (a 0.15 s logistic fit took 3 s on a busy 2-core machine). BLAS's
    # limit here holds for the whole process; OpenMP's is each thread's own: side_by_side sets it
    with threadpool_limits(limits=1):
        models = list(side_by_side(run, [(data,) for _, data, _ in refits]))
        by_index = dict(zip((j[0] for j in refits), models))
        model = None
        for i, data, refit in jobs:
            model = by_index[i] if refit else model
            _, _, now, has = data
            out[i] = np.where(has, model.predict_proba(now)[:, 1], np.nan)
    return out
