"""Per-area statistical forecasters: exponential smoothing (ETS) and SARIMAX.

Each area gets its own model, fitted in parallel across areas with joblib. Both models work on
a transformed scale (``log1p`` by default, because displacement counts vary multiplicatively)
and read their predictive distribution as a Gaussian on that scale.

Rules shared by both models
---------------------------
- **Too little data, failed or non-converged fits.** An area with fewer than ``min_length``
  observed months, a constant history, a fit that raises, one that does not converge, or one
  with non-finite estimates falls back to the naive forecast: the last observed value, with a
  random-walk interval on the transformed scale: its variance per month is the mean of
  ``d**2 / k`` over the differences ``d`` between successive observed values ``k`` months
  apart (consecutive months, or DTM rounds with months between them), and it grows with the
  months since the last observation. An area with fewer than two differences takes the median
  variance of the other areas (NaN quantiles only when no area has two). Every fallback area
  is listed in ``fallback_areas_`` with its reason.
- **Diverged fits.** A fit whose forecast leaves the range the area has seen by more than
  that range's width (on the transformed scale), or is not finite, is not used: the area
  takes the naive forecast and interval, and ``diverged_areas_`` (the latest forecast call)
  says why. A damped trend fitted on a few DTM rounds can otherwise run away.
- **No observation at all.** The area's point and quantiles are NaN; it is listed in
  ``fallback_areas_`` as ``"no observed value"``.
- **Point forecast.** With ``transform="log1p"`` the point is the bias-corrected mean
  ``expm1(mu + sigma**2 / 2)`` of the log-normal predictive distribution, not the
  back-transformed median ``expm1(mu)``: a :class:`~forecast.models.Forecast` point is the mean
  for counts, and the median of a right-skewed count distribution under-forecasts totals
  (``level_ratio`` below 1). The median is available as the 0.5 quantile, and as the point
  with ``point="median"``: on volatile series the log-scale variance grows with the horizon
  and the mean explodes (measured on the Somalia sample: ETS's level ratio reached 3,919 at
  h6 with the mean), so the shipped specs use the median. With ``transform=None`` the point
  is ``mu``. Points are clipped at 0.
- **Quantiles** are Gaussian quantiles on the transformed scale, back-transformed one by one
  (valid because the transform is monotone), clipped at 0 and put in level order so that they
  never cross.
- **Warnings.** Every warning statsmodels raises while fitting is caught in the worker, never
  leaks, and is recorded in ``fit_warnings_`` (area -> messages) and counted in
  ``n_warnings_``. A fit that still has not converged (a ``ConvergenceWarning`` or the
  optimizer's own flag) sends the area to the fallback; SARIMAX first retries once with Powell's
  method from the L-BFGS estimates. Warnings raised while forecasting are recorded in
  ``forecast_warnings_`` (the latest call only).
"""

from __future__ import annotations

import os
from abc import ABCMeta, abstractmethod
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.statespace.sarimax import SARIMAX as _StatsmodelsSARIMAX

from forecast.errors import ForecastError
from forecast.models._baselines import SeriesForecaster, last_value
from forecast.models._gaussian import (
    _diverged,
    _forward,
    _mean_from_gaussian,
    _naive_gaussian,
    _quantiles_from_gaussian,
)
from forecast.models._threads import caught_warnings, one_at_a_time
from forecast.features import Forecast, Panel

__all__ = ["ETS", "SARIMAX"]

TRANSFORMS = (None, "log1p")
NO_OBSERVATION = "no observed value"


@dataclass(frozen=True)
class _AreaFit:
    """What fitting one area returns from a worker."""

    result: object | None = None  # statsmodels results, None when the area falls back
    reason: str | None = None  # why the area falls back
    messages: tuple[str, ...] = ()  # warnings caught while fitting
    filled: int = 0  # interior cells filled before fitting (ETS only)
    offset: int = 0  # months between the last fitted month and the origin
    seasonal_dropped: bool = False


class _PerAreaForecaster(SeriesForecaster, metaclass=ABCMeta):
    """Fit one statsmodels model per area in parallel; shared fallback and output rules."""

    def fit(self, panel: Panel) -> _PerAreaForecaster:
        """Fit one model per area on a panel whose last month is the forecast origin.

        Parameters
        ----------
        panel : Panel
            The target (NaN = unobserved) and covariates up to and including the origin.

        Returns
        -------
        self
        """
        self._check_params()
        y = np.asarray(panel.y, dtype=float)
        if y.ndim != 2 or y.shape[0] != len(panel.areas):
            raise ForecastError(f"panel.y must have shape (n_areas, n_times) = ({len(panel.areas)}, ...), "
                                f"got {y.shape}")
        if self.transform == "log1p" and np.any(y < 0):
            area, t = np.argwhere(y < 0)[0]
            raise ForecastError(
                f"transform='log1p' needs non-negative counts, but area {panel.areas[area]!r} has "
                f"{y[area, t]:g} at {panel.time[t]:%Y-%m}; fix the data or use transform=None")
        self._check_panel(panel, y.shape)
        return super().fit(panel)

    def _fit(self, panel: Panel) -> None:
        y_t = _forward(self.y_, self.transform)
        reasons = [self._precheck_area(row) for row in self.y_]
        todo = [i for i, reason in enumerate(reasons) if reason is None]
        tasks = self._tasks(panel, y_t, todo)
        fitted = Parallel(n_jobs=self.n_jobs)(delayed(self._fit_area)(*args) for args in tasks)
        fits = [_AreaFit(reason=reason) for reason in reasons]
        for i, area_fit in zip(todo, fitted):
            fits[i] = area_fit
        self._collect(fits)

    def _collect(self, fits: list[_AreaFit]) -> None:
        areas = [str(a) for a in self.areas_]
        self.results_ = [f.result if f.reason is None else None for f in fits]
        self.offsets_ = np.array([f.offset for f in fits], dtype=int)
        self.fallback_areas_ = {a: f.reason for a, f in zip(areas, fits) if f.reason is not None}
        self.n_fallback_ = len(self.fallback_areas_)
        self.fit_warnings_ = {a: f.messages for a, f in zip(areas, fits) if f.messages}
        self.n_warnings_ = sum(len(m) for m in self.fit_warnings_.values())
        self._store(fits)

    def forecast(self, horizons: Sequence[int], quantiles: Sequence[float] = ()) -> Forecast:
        """Forecast every area at the given horizons.

        Parameters
        ----------
        horizons : sequence of int
            Months after the origin, 1-based, any subset (e.g. ``(1, 3, 6)``).
        quantiles : sequence of float, default ()
            Levels strictly between 0 and 1; empty gives ``quantiles=None``.

        Returns
        -------
        Forecast
            ``point`` of shape (n_areas, n_horizons); ``quantiles`` of shape
            (n_areas, n_horizons, n_quantiles) in the order of ``quantiles``, or None.
        """
        check_is_fitted(self, "results_")
        horizons = _check_horizons(horizons)
        levels = _check_quantiles(quantiles)
        self._check_horizons_allowed(horizons)
        n_areas, n_h = self.y_.shape[0], len(horizons)
        mu = np.full((n_areas, n_h), np.nan)
        var = np.full((n_areas, n_h), np.nan)
        # one context for all areas: entering threadpool_limits costs milliseconds, a closed-form
        # forecast microseconds
        with caught_warnings() as caught:
            y_t = _forward(self.y_, self.transform)
            self.diverged_areas_ = {}
            for i, result in enumerate(self.results_):
                if result is None:
                    continue
                steps = horizons + self.offsets_[i]
                mean, variance = self._predict_area(i, result, int(steps.max()))
                mu[i], var[i] = mean[steps - 1], variance[steps - 1]
                why = _diverged(y_t[i], mu[i], var[i])
                if why:  # the guard: an exploding fit never reaches a forecast
                    self.diverged_areas_[str(self.areas_[i])] = f"{why}; naive forecast instead"
        self.forecast_warnings_ = list(_messages(caught))
        model = np.array([r is not None and str(a) not in self.diverged_areas_
                          for r, a in zip(self.results_, self.areas_)])
        naive_mu, naive_var = _naive_gaussian(y_t, horizons)
        mu[~model], var[~model] = naive_mu[~model], naive_var[~model]

        point = (_mean_from_gaussian(mu, var, self.transform) if self.point == "mean"
                 else _mean_from_gaussian(mu, np.zeros_like(var), self.transform))
        point[~model] = last_value(self.y_)[~model][:, None]
        point = np.maximum(point, 0.0)
        if not len(levels):
            return Forecast(point=point, quantiles=None)
        return Forecast(point=point, quantiles=_quantiles_from_gaussian(mu, var, levels, self.transform))

    # hooks for the subclasses
    def _check_params(self) -> None:
        _check_choice("transform", self.transform, TRANSFORMS)
        _check_choice("point", self.point, ("mean", "median"))
        _check_int("min_length", self.min_length, minimum=1)
        if self.n_jobs is not None and (not isinstance(self.n_jobs, (int, np.integer)) or self.n_jobs == 0):
            raise ForecastError(f"n_jobs must be a non-zero integer (-1 = all cores) or None, "
                                f"got {self.n_jobs!r}")

    def _check_panel(self, panel: Panel, shape: tuple[int, int]) -> None:
        pass

    def _precheck_area(self, row: np.ndarray) -> str | None:
        """Why an area's series cannot be fitted at all (None if it can)."""
        return _precheck(row, self.min_length)

    def _check_horizons_allowed(self, horizons: np.ndarray) -> None:
        pass

    @abstractmethod
    def _tasks(self, panel: Panel, y_t: np.ndarray, todo: list[int]) -> list[tuple]:
        """One fitting task per area index in ``todo`` (run in parallel)."""

    def _store(self, fits: list[_AreaFit]) -> None:
        pass

    @abstractmethod
    def _predict_area(self, i: int, result, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of area ``i``'s transformed target, ``steps`` months ahead."""


class ETS(_PerAreaForecaster):
    """Exponential smoothing with additive errors on the transformed scale, one model per area.

    Uses :class:`statsmodels.tsa.exponential_smoothing.ets.ETSModel` (``error="add"``; with
    ``transform="log1p"`` that is close to multiplicative errors on counts) and its exact
    Gaussian prediction variance.

    ETS cannot read missing values, so each area's series is taken from its first to its last
    observed month, and interior gaps are filled by linear interpolation on the transformed
    scale (counted in ``filled_cells_``). When the origin itself is unobserved the model
    forecasts on from the last observed month, so horizon ``h`` is ``h + gap`` steps ahead.
    Seasonality is used only for an area with at least two full seasons from its first to its
    last observed month; otherwise that area is fitted without it (listed in
    ``seasonal_dropped_``). See the module docstring for the fallback, point and quantile rules.

    Parameters
    ----------
    trend : {None, "add"}, default None
    damped_trend : bool, default False
        Damp the trend; needs ``trend="add"``.
    seasonal : {None, "add"}, default None
    seasonal_periods : int, default 12
    transform : {"log1p", None}, default "log1p"
    point : {"mean", "median"}, default "mean"
        The bias-corrected mean or the back-transformed median (see the module docstring).
    min_length : int, default 24
        Fewer observed months than this and the area falls back to the naive forecast.
    max_gap_share : float, default 0.25
        The largest share of the months from an area's first to its last observation that may
        be missing (interpolated). A stock seen in DTM rounds misses most: ETS refuses it (naive
        forecast, reason stated) rather than fit lines drawn between rounds.
    n_jobs : int or None, default 1
        Areas fitted in parallel (joblib); -1 uses all cores.

    Attributes
    ----------
    y_ : ndarray of shape (n_areas, n_times)
    areas_ : pandas.Index
    results_ : list
        The statsmodels results per area, None for a fallback area.
    fallback_areas_ : dict of str to str
        Area -> why it gets the naive forecast.
    n_fallback_ : int
    diverged_areas_ : dict of str to str
        Area -> why its fit's forecast was not used (the latest :meth:`forecast` call).
    offsets_ : ndarray of int, shape (n_areas,)
        Months from each area's last observed month to the origin: horizon ``h`` is
        ``h + offsets_[i]`` steps after the end of the fitted series.
    filled_cells_ : int
        Interior months filled by interpolation before fitting, over all fitted areas.
    seasonal_dropped_ : list of str
        Areas fitted without seasonality for lack of two full seasons.
    fit_warnings_ : dict of str to tuple of str
        Area -> the warnings statsmodels raised while fitting it.
    n_warnings_ : int

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from forecast.models import Panel
    >>> t = np.arange(48)
    >>> y = np.vstack([100 + 30 * np.sin(2 * np.pi * t / 12), np.full(48, np.nan)])
    >>> panel = Panel(y=y, areas=pd.Index(["A1", "A2"]),
    ...               time=pd.date_range("2020-01-01", periods=48, freq="MS"))
    >>> fc = ETS(seasonal="add").fit(panel).forecast([1, 2, 3], quantiles=[0.1, 0.9])
    >>> fc.point.shape, fc.quantiles.shape
    ((2, 3), (2, 3, 2))
    """

    def __init__(self, trend: str | None = None, damped_trend: bool = False, seasonal: str | None = None,
                 seasonal_periods: int = 12, transform: str | None = "log1p", point: str = "mean",
                 min_length: int = 24, max_gap_share: float = 0.25, n_jobs: int | None = 1):
        self.point = point
        self.max_gap_share = max_gap_share
        self.trend = trend
        self.damped_trend = damped_trend
        self.seasonal = seasonal
        self.seasonal_periods = seasonal_periods
        self.transform = transform
        self.min_length = min_length
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        super()._check_params()
        _check_choice("trend", self.trend, (None, "add"))
        _check_choice("seasonal", self.seasonal, (None, "add"))
        _check_int("seasonal_periods", self.seasonal_periods, minimum=2)
        if self.damped_trend and self.trend is None:
            raise ForecastError("damped_trend=True needs a trend to damp; "
                                "set trend='add' or damped_trend=False")
        if not (isinstance(self.max_gap_share, (int, float)) and 0 <= self.max_gap_share <= 1):
            raise ForecastError(f"max_gap_share is a share of months between 0 and 1, got {self.max_gap_share!r}")

    def _precheck_area(self, row: np.ndarray) -> str | None:
        reason = _precheck(row, self.min_length)
        if reason is None:
            seen = np.flatnonzero(~np.isnan(row))
            span = seen[-1] - seen[0] + 1
            if (span - seen.size) > self.max_gap_share * span:
                return (f"{span - seen.size} of the {span} months from its first to its last observation are "
                        f"missing (more than max_gap_share={self.max_gap_share:g}): ETS reads no missing months "
                        "and would fit a line drawn between rounds")
        return reason

    def _form(self) -> dict:
        return {"trend": self.trend, "damped_trend": bool(self.damped_trend),
                "seasonal": self.seasonal, "seasonal_periods": int(self.seasonal_periods)}

    def _tasks(self, panel, y_t, todo):
        spec = self._form()
        return [(y_t[i], spec) for i in todo]

    @staticmethod
    def _fit_area(row: np.ndarray, spec: dict) -> _AreaFit:
        return _fit_ets_area(row, spec)

    def _store(self, fits):
        self.filled_cells_ = int(sum(f.filled for f in fits))
        self.seasonal_dropped_ = [str(a) for a, f in zip(self.areas_, fits) if f.seasonal_dropped]

    def update(self, panel: Panel) -> ETS:
        """A copy that forecasts from ``panel``'s last month with the parameters estimated at
        :meth:`fit`: each area's model runs its filter over the new months, without estimating
        again (milliseconds instead of a fit). Areas that fell back at fit time, or whose model
        form changes, are fitted afresh. The backtest calls this between refits
        (``refit_every`` in a spec)."""
        check_is_fitted(self, "results_")
        if not pd.Index(panel.areas).equals(pd.Index(self.areas_)):
            raise ForecastError("update needs the areas the model was fitted on, in the same order")
        new = clone(self)
        new._check_params()
        new.y_, new.areas_ = np.asarray(panel.y, dtype=float), panel.areas
        if new.y_.shape[1] < self.y_.shape[1]:
            raise ForecastError("update extends the history; this panel is shorter than the fitted one")
        y_t = _forward(new.y_, self.transform)
        reasons = [self._precheck_area(row) for row in new.y_]
        spec = self._form()
        dropped = set(self.seasonal_dropped_)
        todo = [i for i, reason in enumerate(reasons) if reason is None]
        jobs = [(y_t[i], None if self.results_[i] is None else np.asarray(self.results_[i].params),
                 str(self.areas_[i]) in dropped) for i in todo]
        # a few large batches, not one task per area: each filter takes about a millisecond
        n_batches = max(1, min(len(jobs), abs(self.n_jobs or 1) if self.n_jobs != -1 else (os.cpu_count() or 1)))
        batches = [jobs[k::n_batches] for k in range(n_batches)]
        done = Parallel(n_jobs=self.n_jobs)(delayed(_update_ets_areas)(batch, spec) for batch in batches)
        fits = [_AreaFit(reason=reason) for reason in reasons]
        for k, batch in enumerate(done):
            for j, area_fit in enumerate(batch):
                fits[todo[k + j * n_batches]] = area_fit
        new._collect(fits)
        return new

    def _predict_area(self, i, result, steps):
        if isinstance(result, _ETSFit):
            return result.predict(steps)
        n = int(result.model.nobs)
        prediction = result.get_prediction(start=n, end=n + steps - 1)
        return (np.asarray(prediction.predicted_mean, dtype=float),
                np.asarray(prediction.var_pred_mean, dtype=float))


class SARIMAX(_PerAreaForecaster):
    """Seasonal ARIMA with lagged covariates, one model per area, via the Kalman filter.

    Uses :class:`statsmodels.tsa.statespace.sarimax.SARIMAX`, which reads missing months of the
    target as missing: gaps are *not* filled. Each area's series starts at its first observed
    month and runs to the origin (an unobserved origin is simply a missing last month).

    Covariates named in ``exog`` (keys of ``panel.exog``) enter lagged by ``exog_lag`` months:
    the model for month ``t`` reads ``x[t - exog_lag]``, so every covariate value a forecast up
    to ``exog_lag`` months ahead needs is known at the origin; longer horizons are refused.
    Missing lagged covariate values (unobserved months, and months before the panel starts) are
    filled with the area's mean of that covariate's observed values up to the origin, or 0 when
    it has none. See the module docstring for the fallback, point and quantile rules.

    Parameters
    ----------
    order : tuple of int, default (1, 0, 0)
        ``(p, d, q)``.
    seasonal_order : tuple of int, default (0, 0, 0, 0)
        ``(P, D, Q, s)``.
    trend : str or None, default "c"
        As statsmodels reads it (``"n"``, ``"c"``, ``"t"``, ``"ct"``).
    exog : tuple of str, default ()
        Covariates from ``panel.exog``.
    exog_lag : int, default 6
        Months by which covariates are lagged; the longest horizon allowed when ``exog`` is used.
    transform : {"log1p", None}, default "log1p"
        Applied to the target only, not to the covariates.
    point : {"mean", "median"}, default "mean"
        The bias-corrected mean or the back-transformed median (see the module docstring).
    min_length : int, default 24
        Fewer observed months than this and the area falls back to the naive forecast.
    n_jobs : int or None, default 1
        Areas fitted in parallel (joblib); -1 uses all cores.

    Attributes
    ----------
    y_ : ndarray of shape (n_areas, n_times)
    areas_ : pandas.Index
    results_ : list
        The statsmodels results per area, None for a fallback area.
    exog_future_ : ndarray of shape (n_areas, exog_lag, n_exog)
        The lagged covariates for the ``exog_lag`` months after the origin (empty without exog).
    fallback_areas_ : dict of str to str
    n_fallback_ : int
    fit_warnings_ : dict of str to tuple of str
        Area -> the warnings statsmodels raised while fitting it.
    n_warnings_ : int
    """

    def __init__(self, order: tuple[int, int, int] = (1, 0, 0),
                 seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0), trend: str | None = "c",
                 exog: tuple[str, ...] = (), exog_lag: int = 6, transform: str | None = "log1p",
                 point: str = "mean", min_length: int = 24, n_jobs: int | None = 1):
        self.point = point
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.exog = exog
        self.exog_lag = exog_lag
        self.transform = transform
        self.min_length = min_length
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.exog, str):
            raise ForecastError(f"exog must be a tuple of covariate names, got the string {self.exog!r}; "
                                f"write exog=({self.exog!r},)")
        if self.exog:
            _check_int("exog_lag", self.exog_lag, minimum=1)
        with caught_warnings(blas_threads=None):  # recorded, so not shown
            try:  # let statsmodels judge order/trend once, before any area is fitted
                _StatsmodelsSARIMAX(np.zeros(60), order=self.order, seasonal_order=self.seasonal_order,
                                    trend=self.trend)
            except Exception as exc:
                raise ForecastError(f"statsmodels SARIMAX rejects order={self.order!r}, "
                                    f"seasonal_order={self.seasonal_order!r}, trend={self.trend!r}: {exc}"
                                    ) from exc

    def _check_horizons_allowed(self, horizons):
        if self.exog and horizons.max() > self.exog_lag:
            raise ForecastError(
                f"horizon {int(horizons.max())} is beyond exog_lag={self.exog_lag}: the covariates "
                f"{list(self.exog)} for that month are not known at the origin; ask for horizons up to "
                f"{self.exog_lag} or refit with exog_lag >= {int(horizons.max())}")

    def _check_panel(self, panel, shape):
        missing = [name for name in self.exog if name not in panel.exog]
        if missing:
            present = ", ".join(sorted(panel.exog)) or "none"
            raise ForecastError(f"exog {missing} not in the panel; its covariates are: {present}")
        for name in self.exog:
            if np.shape(panel.exog[name]) != shape:
                raise ForecastError(f"covariate {name!r} has shape {np.shape(panel.exog[name])}, "
                                    f"the target {shape}; they must share the area x month grid")

    def _tasks(self, panel, y_t, todo):
        names = tuple(self.exog)
        n_areas, n_t = self.y_.shape
        lag = int(self.exog_lag) if names else 0
        lagged = np.empty((n_areas, n_t + lag, len(names)))  # months 0 .. origin + lag
        for k, name in enumerate(names):
            lagged[:, :, k] = _lagged_with_fill(np.asarray(panel.exog[name], dtype=float), lag)
        self.exog_future_ = lagged[:, n_t:, :]  # what forecasting will read, known at the origin
        spec = {"order": tuple(self.order), "seasonal_order": tuple(self.seasonal_order), "trend": self.trend}
        return [(y_t[i], lagged[i, :n_t] if names else None, spec) for i in todo]

    @staticmethod
    def _fit_area(row: np.ndarray, exog: np.ndarray | None, spec: dict) -> _AreaFit:
        return _fit_sarimax_area(row, exog, spec)

    def _predict_area(self, i, result, steps):
        future = self.exog_future_[i, :steps] if self.exog else None
        prediction = result.get_forecast(steps=steps, exog=future)
        return (np.asarray(prediction.predicted_mean, dtype=float).reshape(-1),
                np.asarray(prediction.var_pred_mean, dtype=float).reshape(-1))


# fitting one area (module-level so that joblib workers can import them)

def _ets_series(row: np.ndarray, spec: dict):
    """The area's series from its first to its last observed month, interior gaps interpolated,
    and whether the season is dropped for lack of two full seasons."""
    seen = np.flatnonzero(~np.isnan(row))
    first, last = seen[0], seen[-1]
    series = row[first:last + 1].copy()
    gaps = np.isnan(series)
    if gaps.any():
        idx = np.arange(series.size)
        series[gaps] = np.interp(idx[gaps], idx[~gaps], series[~gaps])
    seasonal = spec["seasonal"]
    dropped = seasonal is not None and series.size < 2 * spec["seasonal_periods"]
    if dropped:
        seasonal = None
    # a pandas Series, because ETSResults.get_prediction fails on a bare ndarray (statsmodels 0.15)
    model = ETSModel(pd.Series(series), error="add", trend=spec["trend"],
                     damped_trend=spec["damped_trend"] if spec["trend"] else False, seasonal=seasonal,
                     seasonal_periods=spec["seasonal_periods"] if seasonal else None)
    return model, int(gaps.sum()), row.size - 1 - last, dropped


@dataclass(frozen=True)
class _ETSFit:
    """What forecasting a non-seasonal additive-error ETS needs: its parameters, its last state
    and its residual variance. Small to send between processes, and forecast in microseconds
    with the closed forms statsmodels itself uses (mean by the state equations, variance =
    scale x ``ETSResults._relative_forecast_variance``, Hyndman & Athanasopoulos, FPP3)."""

    short_name: str
    params: np.ndarray
    param_names: tuple[str, ...]
    level: float
    slope: float
    scale: float

    @classmethod
    def from_raw(cls, model, params, yhat, xhat) -> _ETSFit:
        states = np.asarray(xhat, dtype=float)
        resid = np.asarray(model.endog, dtype=float) - np.asarray(yhat, dtype=float)
        return cls(model.short_name, np.asarray(params, dtype=float), tuple(model.param_names),
                   float(states[-1, 0]), float(states[-1, 1]) if model.has_trend else 0.0,
                   float(np.mean(resid ** 2)))

    def _param(self, name: str) -> float:
        return float(self.params[self.param_names.index(name)])

    def predict(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        h = np.arange(1, steps + 1, dtype=float)
        alpha = self._param("smoothing_level")
        if self.short_name == "ANN":
            return np.full(steps, self.level), self.scale * (1 + alpha ** 2 * (h - 1))
        beta = self._param("smoothing_trend")
        if self.short_name == "AAN":
            rel = 1 + (h - 1) * (alpha ** 2 + alpha * beta * h + beta ** 2 * h / 6 * (2 * h - 1))
            return self.level + h * self.slope, self.scale * rel
        phi = self._param("damping_trend")  # AAdN
        mean = self.level + np.cumsum(phi ** h) * self.slope
        rel = (1 + alpha ** 2 * (h - 1)
               + (beta * phi * h) / ((1 - phi) ** 2) * (2 * alpha * (1 - phi) + beta * phi)
               - (beta * phi * (1 - phi ** h)) / ((1 - phi) ** 2 * (1 - phi ** 2))
               * (2 * alpha * (1 - phi ** 2) + beta * phi * (1 + 2 * phi - phi ** h)))
        return mean, self.scale * rel


_FAST_FORMS = ("ANN", "AAN", "AAdN")


def _fit_ets_area(row: np.ndarray, spec: dict) -> _AreaFit:
    model, filled, offset, dropped = _ets_series(row, spec)
    result, reason, messages = _guarded_fit(lambda: model.fit(disp=False))
    if result is not None and model.short_name in _FAST_FORMS:
        result = _ETSFit.from_raw(model, result.params, result.fittedvalues, result.states)
    return _AreaFit(result=result, reason=reason, messages=messages, filled=filled, offset=offset,
                    seasonal_dropped=dropped)


def _update_ets_areas(jobs: list[tuple], spec: dict) -> list[_AreaFit]:
    """Filter (or, without parameters, fit) a batch of areas under one BLAS-thread limit."""
    with one_at_a_time, threadpool_limits(limits=1, user_api="blas"):
        return [_fit_ets_area(row, spec) if params is None else _filter_ets_area(row, spec, params, dropped)
                for row, params, dropped in jobs]


def _filter_ets_area(row: np.ndarray, spec: dict, params: np.ndarray, was_dropped: bool) -> _AreaFit:
    """The area's model with parameters already estimated, run over its longer series: no
    optimisation, only the filter. A change of model form (the season becomes possible) refits."""
    model, filled, offset, dropped = _ets_series(row, spec)
    if dropped != was_dropped:
        return _fit_ets_area(row, spec)
    with caught_warnings(blas_threads=None) as caught:  # the caller limits BLAS threads
        try:
            if model.short_name in _FAST_FORMS:  # the filter alone, without statsmodels' results object
                result = _ETSFit.from_raw(model, params, *model.smooth(params, return_raw=True))
                finite = np.isfinite([result.level, result.slope, result.scale]).all()
            else:
                result = model.smooth(params)
                finite = np.isfinite(result.llf)
        except Exception as exc:  # as with a failed fit: this area falls back
            return _AreaFit(reason=f"filter failed: {type(exc).__name__}: {exc}", messages=_messages(caught))
    reason = None if finite else "filter gave non-finite states"
    return _AreaFit(result=result if reason is None else None, reason=reason, messages=_messages(caught),
                    filled=filled, offset=offset, seasonal_dropped=dropped)


def _fit_sarimax_area(row: np.ndarray, exog: np.ndarray | None, spec: dict) -> _AreaFit:
    first = np.flatnonzero(~np.isnan(row))[0]

    def build():
        model = _StatsmodelsSARIMAX(row[first:], exog=None if exog is None else exog[first:],
                                    order=spec["order"], seasonal_order=spec["seasonal_order"],
                                    trend=spec["trend"])
        return model.fit(disp=False)

    def retry(first):
        # L-BFGS often stops on a line-search failure near a good optimum (gaps in the series make
        # it likelier); Powell, started from there, usually settles it at little cost
        return first.model.fit(start_params=first.params, method="powell", maxiter=1000, disp=False)

    result, reason, messages = _guarded_fit(build, retry)
    return _AreaFit(result=result, reason=reason, messages=messages, offset=0)


def _guarded_fit(build: Callable[[], object], retry: Callable[[object], object] | None = None
                 ) -> tuple[object | None, str | None, tuple[str, ...]]:
    """Fit with every warning caught; say why the result cannot be used, if so.

    ``retry(result)`` gets one more try when the first fit did not converge (SARIMAX restarts
    from its estimates with another optimizer); the warnings of both tries are kept.
    """
    messages: list[str] = []
    result, reason = None, None
    for attempt in (build, retry):
        if attempt is None:
            break
        # one BLAS thread: these matrices are tiny, and a threaded BLAS spends far longer
        # synchronising than computing (a 30-month SARIMAX fit went from 8 s to 0.1 s)
        with caught_warnings() as caught:
            try:
                result = attempt() if attempt is build else attempt(result)
            except Exception as exc:  # one area's failure must not stop the others: it falls back
                return None, f"fit failed: {type(exc).__name__}: {exc}", (*messages, *_messages(caught))
        messages.extend(_messages(caught))
        reason = _unusable(result, caught)
        if reason is None or not reason.startswith("did not converge"):
            break
    return (result if reason is None else None), reason, tuple(messages)


def _unusable(result, caught: list[warnings.WarningMessage]) -> str | None:
    retvals = getattr(result, "mle_retvals", None) or {}
    not_converged = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    if not_converged or retvals.get("converged") is False:
        return "did not converge: " + (not_converged[0] if not_converged
                                       else "the optimizer reported no convergence")
    if not np.all(np.isfinite(np.asarray(result.params, dtype=float))) or not np.isfinite(result.llf):
        return "fit gave non-finite estimates"
    return None


def _messages(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(f"{w.category.__name__}: {w.message}" for w in caught)


def _precheck(row: np.ndarray, min_length: int) -> str | None:
    """Why an area cannot be fitted at all (None if it can)."""
    values = row[~np.isnan(row)]
    if values.size == 0:
        return NO_OBSERVATION
    if values.size < min_length:
        return f"fewer than min_length={min_length} observed months ({values.size})"
    if np.ptp(values) == 0:
        return f"constant history (every observed month is {values[0]:g}): nothing to fit"
    return None


def _lagged_with_fill(x: np.ndarray, lag: int) -> np.ndarray:
    """``out[:, t] = x[:, t - lag]`` for t in 0 .. n_times + lag - 1, gaps filled per area."""
    n_areas, n_t = x.shape
    seen = ~np.isnan(x)
    count = seen.sum(axis=1)
    total = np.where(seen, x, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros(n_areas), where=count > 0)
    out = np.full((n_areas, n_t + lag), np.nan)
    out[:, lag:] = x
    return np.where(np.isnan(out), mean[:, None], out)


# validation

def _check_horizons(horizons: Sequence[int]) -> np.ndarray:
    h = np.asarray(horizons)
    if h.ndim != 1 or h.size == 0:
        raise ForecastError(f"horizons must be a non-empty sequence of months ahead, got {horizons!r}")
    if not np.issubdtype(h.dtype, np.integer) or np.any(h < 1):
        raise ForecastError(f"horizons are 1-based whole months after the origin (1, 2, ...), got {list(h)}")
    return h.astype(int)


def _check_quantiles(quantiles: Sequence[float]) -> np.ndarray:
    q = np.asarray(quantiles, dtype=float).reshape(-1)
    if q.size and (np.any(q <= 0) or np.any(q >= 1) or np.any(np.isnan(q))):
        raise ForecastError(f"quantiles must lie strictly between 0 and 1, got {list(quantiles)}")
    return q


def _check_choice(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ForecastError(f"{name} must be one of {allowed}, got {value!r}")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ForecastError(f"{name} must be an integer >= {minimum}, got {value!r}")
