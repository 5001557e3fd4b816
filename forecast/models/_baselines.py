"""Baselines that run beside every model: naive, seasonal naive, moving average, EWM, mean.

Each reads only the panel it is fitted on, which in a backtest ends at the origin. Missing
months are skipped, never read as zero: "the last value" is the last *observed* value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecast.features import Forecast, Panel

__all__ = [
    "SeriesForecaster", "Naive", "SeasonalNaive", "MovingAverage", "ExponentialMean",
    "HistoricalMean", "BASELINES",
]


class SeriesForecaster(BaseEstimator):
    """A forecaster that reads the target's own history (and covariates) per area.

    ``fit(panel)`` learns from a panel whose last month is the forecast origin;
    ``forecast(horizons)`` returns a :class:`~forecast.models.Forecast` for every area.
    """

    def fit(self, panel: Panel) -> SeriesForecaster:
        self.y_ = np.asarray(panel.y, dtype=float)
        self.areas_ = panel.areas
        self._fit(panel)
        return self

    def _fit(self, panel: Panel) -> None:  # learned state beyond the history, if any
        pass

    def forecast(self, horizons: Sequence[int], quantiles: Sequence[float] = ()) -> Forecast:
        check_is_fitted(self, "y_")
        horizons = np.asarray(horizons, dtype=int)
        return Forecast(point=self._point(horizons))

    def _point(self, horizons: np.ndarray) -> np.ndarray:
        # the hook of simple forecasters; models with intervals override forecast() instead
        raise TypeError(f"{type(self).__name__} must define _point(horizons) or override forecast()")


def last_value(y: np.ndarray) -> np.ndarray:
    """The last non-NaN value of each row (NaN for a row with none)."""
    seen = ~np.isnan(y)
    idx = np.where(seen, np.arange(y.shape[1]), -1).max(axis=1)
    out = np.full(y.shape[0], np.nan)
    ok = idx >= 0
    out[ok] = y[ok, idx[ok]]
    return out


def _observed_mean(y: np.ndarray) -> np.ndarray:
    """Mean of each row's non-NaN values (NaN for a row with none), without a warning."""
    seen = ~np.isnan(y)
    count = seen.sum(axis=1)
    total = np.where(seen, y, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(total), np.nan), where=count > 0)


class Naive(SeriesForecaster):
    """The last observed value, for every horizon."""

    def _point(self, horizons):
        return np.repeat(last_value(self.y_)[:, None], len(horizons), axis=1)


class SeasonalNaive(SeriesForecaster):
    """The value observed one season before the target month; the naive value where that is missing.

    Parameters
    ----------
    season : int, default 12
        Season length in months.
    """

    def __init__(self, season: int = 12):
        self.season = season

    def _point(self, horizons):
        n_t = self.y_.shape[1]
        fallback = last_value(self.y_)
        out = np.empty((self.y_.shape[0], len(horizons)))
        for j, h in enumerate(horizons):
            back = self.season * int(np.ceil(h / self.season))
            idx = n_t - 1 + h - back
            col = self.y_[:, idx] if 0 <= idx < n_t else np.full(self.y_.shape[0], np.nan)
            out[:, j] = np.where(np.isnan(col), fallback, col)
        return out


class MovingAverage(SeriesForecaster):
    """The mean of the observed values in the last ``window`` months (the naive value if none).

    Parameters
    ----------
    window : int, default 3
    """

    def __init__(self, window: int = 3):
        self.window = window

    def _point(self, horizons):
        mean = _observed_mean(self.y_[:, -self.window:])
        mean = np.where(np.isnan(mean), last_value(self.y_), mean)
        return np.repeat(mean[:, None], len(horizons), axis=1)


class ExponentialMean(SeriesForecaster):
    """An exponentially weighted mean of the observed values (weights halve every ``halflife`` months).

    Parameters
    ----------
    halflife : float, default 3
    """

    def __init__(self, halflife: float = 3.0):
        self.halflife = halflife

    def _point(self, horizons):
        n_t = self.y_.shape[1]
        age = (n_t - 1) - np.arange(n_t)
        weight = np.broadcast_to(0.5 ** (age / self.halflife), self.y_.shape)
        seen = ~np.isnan(self.y_)
        w = np.where(seen, weight, 0.0)
        total = (w * np.where(seen, self.y_, 0.0)).sum(axis=1)
        norm = w.sum(axis=1)
        mean = np.divide(total, norm, out=np.full(len(total), np.nan), where=norm > 0)
        return np.repeat(mean[:, None], len(horizons), axis=1)


class HistoricalMean(SeriesForecaster):
    """The mean of every observed value up to the origin."""

    def _point(self, horizons):
        return np.repeat(_observed_mean(self.y_)[:, None], len(horizons), axis=1)


#: The baselines every backtest runs, under the names their MLflow runs take.
BASELINES = {
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
    "moving_average": MovingAverage,
    "ewm": ExponentialMean,
    "historical_mean": HistoricalMean,
}
