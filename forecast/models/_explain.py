"""Explanations per forecast: each feature's contribution, added up by driver family.

A global LightGBM model explains each prediction with TreeSHAP (``pred_contrib``): the base
value (the model's expected raw score) plus one contribution per feature add up to the raw
score of that prediction. The raw score is on the model's link scale: the log of the mean for
the Poisson and Tweedie objectives (``scale="log"``), the forecast itself for the median
(quantile objective) and squared error (``scale="identity"``). A per-area SARIMAX with
covariates explains its forecast mean on its transformed scale (``log1p`` by default): each
covariate's contribution is its lagged value times its coefficient, and the base is the rest
of the forecast (level, autoregression, trend).

Contributions add up by driver family (:data:`forecast.features.DRIVERS`) through
:func:`forecast.features.column_drivers`, so a reader sees "rainfall and drought" rather than
``rain_anomaly_lag1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.features import DRIVERS, FeatureMatrix, RecursiveRows, column_drivers, variable_driver
from forecast.models._threads import side_by_side

__all__ = ["Contributions", "by_driver", "has_contributions", "explain_horizons", "exog_contributions",
           "explain_series", "SCALES"]

#: The scales contributions are on: the raw score's (log of the mean, or the forecast itself)
#: or a series model's transform.
SCALES = ("log", "identity", "log1p", "log_ratio")


@dataclass(frozen=True)
class Contributions:
    """Per-prediction contributions of each feature to a model's raw score.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_features)
        Each feature's contribution.
    base : ndarray of shape (n_samples,)
        The base value (the model's expected raw score, the same for every sample of a tree model).
    columns : list of str
        The feature names, in the order of ``values``' columns.
    scale : {"log", "identity", "log1p"}
        What ``base + values.sum(axis=1)`` is: the log of the forecast mean (``log``), the
        forecast itself (``identity``), log1p of the forecast (``log1p``, series models), or
        the forecast change from the last observed value, ``log1p(forecast) - log1p(last)``
        (``log_ratio``: a global model of a stock, ``target_transform: log_ratio``).
    """

    values: np.ndarray
    base: np.ndarray
    columns: list[str]
    scale: str

    def __post_init__(self):
        if self.values.ndim != 2 or self.values.shape[1] != len(self.columns):
            raise ForecastError(f"contributions of shape {self.values.shape} do not match "
                                f"{len(self.columns)} column names")
        if self.base.shape != (self.values.shape[0],):
            raise ForecastError(f"base of shape {self.base.shape}; expected ({self.values.shape[0]},)")
        if self.scale not in SCALES:
            raise ForecastError(f"scale must be one of {SCALES}, got {self.scale!r}")

    @property
    def total(self) -> np.ndarray:
        """Base plus contributions: the raw score of each prediction."""
        return self.base + self.values.sum(axis=1)

    def to_array(self) -> np.ndarray:
        """As LightGBM gives them: shape (n_samples, n_features + 1), the base value last."""
        return np.column_stack([self.values, self.base])


def by_driver(contributions: Contributions, drivers: Mapping[str, str]) -> pd.DataFrame:
    """Contributions summed per driver family.

    Parameters
    ----------
    contributions : Contributions
    drivers : mapping of column to driver
        :func:`forecast.features.column_drivers` of the columns; a column it does not name
        counts as ``other``.

    Returns
    -------
    DataFrame
        One row per sample, one column per driver of :data:`forecast.features.DRIVERS` (in
        that order, 0.0 for a driver no column speaks for), then any other driver named in
        ``drivers``. Rows add up to ``contributions.total - contributions.base``.
    """
    names = [drivers.get(c, "other") for c in contributions.columns]
    order = list(DRIVERS) + sorted(set(names) - set(DRIVERS))
    index = {d: k for k, d in enumerate(order)}
    summed = np.zeros((contributions.values.shape[0], len(order)))
    for j, name in enumerate(names):
        summed[:, index[name]] += contributions.values[:, j]
    return pd.DataFrame(summed, columns=order)


def has_contributions(estimator) -> bool:
    """Whether :func:`explain_horizons` or :func:`explain_series` can explain ``estimator``'s
    forecasts: LightGBM global models, and SARIMAX with covariates (``exog``). A dict of fitted
    models (:func:`forecast.models.fit_horizons`) has them when every one has."""
    from forecast.models._global import LightGBMForecaster
    from forecast.models._local import SARIMAX

    if isinstance(estimator, Mapping):
        return bool(estimator) and all(has_contributions(m) for m in estimator.values())
    if isinstance(estimator, LightGBMForecaster):
        return True
    return isinstance(estimator, SARIMAX) and bool(estimator.exog)


def _frame(areas, horizons, base, drivers: pd.DataFrame, scale) -> pd.DataFrame:
    """Area × horizon rows from ``base`` (n_areas, n_h) and per-horizon driver tables."""
    n_a, n_h = base.shape
    out = pd.DataFrame({"area": np.repeat(np.asarray(areas), n_h), "horizon": np.tile(np.asarray(horizons), n_a),
                        "base": base.ravel(), "scale": scale})
    return pd.concat([out, drivers.reset_index(drop=True)], axis=1)


def explain_horizons(models: Mapping, fm: FeatureMatrix, o: int, horizons: Sequence[int], strategy: str,
                     feature_params=None, transform: str = "level") -> pd.DataFrame:
    """Driver contributions of a global model's forecasts from origin ``o``, per area and horizon.

    The same rows :func:`forecast.models.predict_horizons` forecasts from: the direct
    strategy's model per horizon, the pooled model with the horizon as a feature (which counts
    as recent arrivals and level), or the recursive model at each step, on the row rebuilt from
    the forecasts fed back.

    Parameters
    ----------
    models : dict
        :func:`forecast.models.fit_horizons` output; every model a ``LightGBMForecaster``.
    fm : FeatureMatrix
    o : int
        The origin's month index.
    horizons : sequence of int
    strategy : {"direct", "pooled", "recursive"}
    feature_params : mapping, optional
        The spec's feature parameters (the recursive strategy rebuilds rows with them).
    transform : {"level", "log_ratio"}
        What the models learned (a spec's ``target_transform``): with ``log_ratio`` the raw
        score is the change from the last observed value and ``scale`` says so.

    Returns
    -------
    DataFrame
        One row per area × horizon (areas in the panel's order): ``area, horizon, base, scale``
        and one column per driver; ``base`` plus the drivers is the point model's raw score.

    Raises
    ------
    ForecastError
        A model without per-prediction contributions (HistGradientBoosting).
    """
    for model in models.values():
        if not hasattr(model, "contributions"):
            raise ForecastError(f"{type(model).__name__} has no per-prediction contributions; "
                                "LightGBM global models have them")
    columns = list(fm.X.columns)
    X = fm.X.to_numpy()[fm.rows_at(o)]
    horizons = list(horizons)
    parts: dict[int, Contributions] = {}
    if strategy == "recursive":
        model = models["recursive"]
        extended = RecursiveRows(fm, feature_params, o, max(horizons))
        for k in range(1, max(horizons) + 1):
            if k in horizons:
                parts[k] = model.contributions(X, columns)
            if k < max(horizons):
                extended.push(k, model.predict(X))
                X = extended.rows(o + k)
    elif strategy == "direct":
        # TreeSHAP costs ~50x a prediction: the horizons' models side by side in threads, as
        # fit_horizons fits them
        parts = dict(zip(horizons, side_by_side(lambda h: models[h].contributions(X, columns),
                                                [(h,) for h in horizons])))
    else:
        parts = {h: models["pooled"].contributions(np.column_stack([X, np.full(len(X), h, np.float32)]),
                                                   [*columns, "horizon"]) for h in horizons}
    drivers = column_drivers(fm.families, parts[horizons[0]].columns)
    tables = [by_driver(parts[h], drivers) for h in horizons]
    # rows area-major (area, then horizon), as the forecasts tables are
    stacked = np.stack([t.to_numpy() for t in tables], axis=1).reshape(-1, tables[0].shape[1])
    base = np.column_stack([parts[h].base for h in horizons])
    scale = "log_ratio" if transform == "log_ratio" else parts[horizons[0]].scale
    return _frame(fm.panel.areas.to_numpy(), horizons, base, pd.DataFrame(stacked, columns=tables[0].columns), scale)


def exog_contributions(model, horizons: Sequence[int]) -> pd.DataFrame:
    """Each covariate's contribution to a fitted SARIMAX's forecasts: its value times its coefficient.

    SARIMAX is a regression on the lagged covariates with ARMA errors, so its forecast mean of
    the transformed target ``h`` months ahead is ``sum_k beta_k x_k[t + h - exog_lag]`` plus
    the forecast of the errors; each term ``beta_k x_k`` is that covariate's contribution, on
    the model's transformed scale (``log1p`` by default). Areas that fell back to the naive
    forecast have no coefficients and no rows.

    Parameters
    ----------
    model : SARIMAX
        Fitted, with ``exog``.
    horizons : sequence of int

    Returns
    -------
    DataFrame
        ``area, horizon, term, value, coefficient, contribution`` (one row per area with a
        model × horizon × covariate).
    """
    from forecast.models._local import SARIMAX

    if not isinstance(model, SARIMAX):
        raise ForecastError(f"{type(model).__name__} has no covariate terms to explain; SARIMAX with exog has")
    if not getattr(model, "results_", None):
        raise ForecastError("this SARIMAX is not fitted: fit it on a panel first")
    if not model.exog:
        raise ForecastError("this SARIMAX has no covariates (exog), so no driver breakdown: its forecast "
                            "is the series' own dynamics")
    steps = np.asarray(horizons, dtype=int)
    if steps.min() < 1 or steps.max() > model.exog_lag:
        raise ForecastError(f"horizons {list(horizons)} outside 1..exog_lag={model.exog_lag}")
    rows = []
    for i, result in enumerate(model.results_):
        if result is None:
            continue
        coefficients = _exog_coefficients(result, len(model.exog))
        future = model.exog_future_[i]  # (exog_lag, n_exog): the lagged covariates after the origin
        for h in steps:
            step = int(h + model.offsets_[i])
            for k, term in enumerate(model.exog):
                value = float(future[step - 1, k])
                rows.append((str(model.areas_[i]), int(h), term, value, coefficients[k], value * coefficients[k]))
    return pd.DataFrame(rows, columns=["area", "horizon", "term", "value", "coefficient", "contribution"])


def _exog_coefficients(result, n_exog: int) -> np.ndarray:
    """The covariates' coefficients of one statsmodels SARIMAX result, in ``exog`` order."""
    names = list(result.model.param_names)
    exog_names = list(result.model.exog_names or [])
    if len(exog_names) != n_exog:
        raise ForecastError(f"the fitted SARIMAX has {len(exog_names)} covariate terms, expected {n_exog}")
    params = np.asarray(result.params, dtype=float)
    return np.array([params[names.index(name)] for name in exog_names])


def explain_series(model, horizons: Sequence[int]) -> pd.DataFrame:
    """Driver contributions of a fitted SARIMAX's forecasts, per area and horizon.

    Each covariate's term (:func:`exog_contributions`) goes to the covariate's driver
    (:func:`forecast.features.variable_driver`); ``base`` is the rest of the forecast mean on
    the transformed scale (level, autoregression, trend), so base plus the drivers is that
    mean. Areas that fell back to the naive forecast are left out.

    Returns
    -------
    DataFrame
        ``area, horizon, base, scale`` and one column per driver.
    """
    terms = exog_contributions(model, horizons)
    drivers = {t: variable_driver(t) for t in model.exog}
    steps = np.asarray(horizons, dtype=int)
    fitted = [i for i, r in enumerate(model.results_) if r is not None]
    means = np.full((len(fitted), len(steps)), np.nan)
    for j, i in enumerate(fitted):
        shifted = steps + model.offsets_[i]
        mean, _ = model._predict_area(i, model.results_[i], int(shifted.max()))
        means[j] = mean[shifted - 1]
    scale = "log1p" if model.transform == "log1p" else "identity"
    values = terms.pivot_table(index=["area", "horizon"], columns="term", values="contribution", sort=False)
    areas = [str(model.areas_[i]) for i in fitted]
    values = values.reindex(pd.MultiIndex.from_product([areas, list(steps)]))[list(model.exog)]
    summed = by_driver(Contributions(values.to_numpy(), np.zeros(len(values)), list(model.exog), scale), drivers)
    base = means - summed.to_numpy().sum(axis=1).reshape(means.shape)
    return _frame(areas, list(steps), base, summed, scale)
