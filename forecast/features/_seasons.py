"""Causal climatologies and rainy seasons on (area, time) arrays.

Somalia has two rainy seasons a year: Gu (April-June) and Deyr (October-December). The
helpers here compare a value with the area's own history of the same calendar month, or of
the same season, in EARLIER years only, so that the value at month ``t`` never depends on a
later month. They work on a "year layout": the monthly axis padded with NaN to whole calendar
years and reshaped to ``(area, year, month of year)``, which turns "the same month of earlier
years" into "earlier rows of the same column".

The driver families (:mod:`forecast.features._drivers`) build on these functions; ``drought``
and ``pressure`` share them, so that a district's drought reads the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.features._windows import safe_divide

__all__ = ["RAINY_SEASONS", "same_month_anomaly", "trailing_sum", "season_totals", "SeasonState",
           "season_state"]

#: The rainy seasons, by name, as their calendar months (a season is known at its last month).
RAINY_SEASONS = {"gu": (4, 5, 6), "deyr": (10, 11, 12)}
#: Standardized anomalies are clipped to ±Z_CLIP (see :func:`same_month_anomaly`).
Z_CLIP = 5.0
_END_MONTHS = tuple(months[-1] for months in RAINY_SEASONS.values())  # June, December


def _check_monthly(time: pd.DatetimeIndex) -> None:
    if len(time) and not time.equals(pd.date_range(time[0], periods=len(time), freq="MS")):
        raise ForecastError("climatologies need a contiguous monthly time axis (month starts, no gaps); "
                            f"got {len(time)} months from {str(time[0])[:7]} to {str(time[-1])[:7]} with gaps "
                            "or days other than the 1st")


def _to_years(x: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """x (area, time) padded with NaN to whole calendar years: (area, year, 12)."""
    _check_monthly(time)
    n_areas, n_times = x.shape
    front = int(time[0].month) - 1 if n_times else 0
    back = -(front + n_times) % 12
    padded = np.pad(x.astype(float), ((0, 0), (front, back)), constant_values=np.nan)
    return padded.reshape(n_areas, -1, 12)


def _from_years(b: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """The inverse of :func:`_to_years`: back to (area, time)."""
    front = int(time[0].month) - 1 if len(time) else 0
    return b.reshape(b.shape[0], -1)[:, front:front + len(time)]


def _earlier_anomaly(b: np.ndarray, min_count: int) -> np.ndarray:
    """z of each value of b (area, year, k) against the observed values of earlier years in its
    column: (x - mean) / std (ddof=1), clipped to ±Z_CLIP; NaN with fewer than ``min_count``
    earlier values."""
    out = np.full(b.shape, np.nan)
    n = np.zeros(b[:, 0].shape)
    mean = np.zeros_like(n)
    m2 = np.zeros_like(n)
    for y in range(b.shape[1]):  # Welford's update, one year at a time: exact 0 for constant years
        x = b[:, y]
        std = np.sqrt(safe_divide(m2, n - 1))
        z = safe_divide(x - mean, std)
        out[:, y] = np.where(n >= min_count, np.clip(z, -Z_CLIP, Z_CLIP), np.nan)
        seen = ~np.isnan(x)
        n = n + seen
        delta = np.where(seen, x - mean, 0.0)
        mean = mean + np.where(seen, safe_divide(delta, n), 0.0)
        m2 = m2 + np.where(seen, delta * (np.where(seen, x, 0.0) - mean), 0.0)
    return out


def same_month_anomaly(x: np.ndarray, time: pd.DatetimeIndex, min_years: int = 3) -> np.ndarray:
    """Standardized anomaly against each area's climatology of the same calendar month, causally.

    The value at month t is ``(x_t - m) / s`` where ``m`` and ``s`` (ddof=1) are the mean and
    standard deviation of the same area's observed values in the same calendar month of
    EARLIER years only; NaN until ``min_years`` such values exist, or when ``s`` is 0. Clipped
    to ±``Z_CLIP`` (5): in a dry month whose earlier years were all near 0 mm, the spread is
    tiny and a few millimetres would otherwise read as hundreds of standard deviations, which
    would swamp the flow-weighted averages of origin pressure (trees are unaffected by a clip).

    Parameters
    ----------
    x : ndarray, shape (n_areas, n_times)
        NaN where not observed.
    time : pandas.DatetimeIndex
        Contiguous month starts, one per column of ``x``.
    min_years : int
        Earlier observed years needed (at least 2: a standard deviation needs two values).

    Examples
    --------
    >>> time = pd.date_range("2001-01", periods=48, freq="MS")
    >>> x = np.tile([1.0, 2.0, 4.0, 9.0], (12, 1)).T.reshape(1, -1)   # each month: 1, 2, 4, 9
    >>> float(same_month_anomaly(x, time)[0, 36])                      # (9 - 7/3) / std(1, 2, 4)
    4.364357804719847
    """
    if min_years < 2:
        raise ForecastError(f"a climatology needs at least 2 earlier years (min_years), got {min_years}")
    return _from_years(_earlier_anomaly(_to_years(x, time), min_years), time)


def trailing_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of months t − n + 1 .. t; NaN when any of them is missing or lies before the start."""
    padded = np.pad(x.astype(float), ((0, 0), (n - 1, 0)), constant_values=np.nan)
    return np.lib.stride_tricks.sliding_window_view(padded, n, axis=1).sum(axis=2)


def _running_years(b: np.ndarray) -> np.ndarray:
    """Running total of each season in progress (year layout); NaN outside the seasons and
    from a missing month to the season's end."""
    out = np.full(b.shape, np.nan)
    for months in RAINY_SEASONS.values():
        cols = [m - 1 for m in months]
        out[:, :, cols] = np.cumsum(b[:, :, cols], axis=2)  # NaN, once met, stays NaN
    return out


def season_totals(rainfall: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """Each rainy season's total at its last month (June for Gu, December for Deyr).

    NaN in every other month, and for a season with any month missing or before the start.

    Examples
    --------
    >>> time = pd.date_range("2020-01", periods=12, freq="MS")
    >>> totals = season_totals(np.arange(12.0).reshape(1, -1), time)
    >>> totals[0, 5], totals[0, 11]                   # Apr-Jun: 3 + 4 + 5; Oct-Dec: 9 + 10 + 11
    (np.float64(12.0), np.float64(30.0))
    """
    running = _running_years(_to_years(rainfall, time))
    ends = [m - 1 for m in _END_MONTHS]
    totals = np.full(running.shape, np.nan)
    totals[:, :, ends] = running[:, :, ends]
    return _from_years(totals, time)


def _earlier_quantile(b: np.ndarray, q: float, min_count: int) -> np.ndarray:
    """Per (area, year, k): the q-quantile (linear) of the observed values of earlier years in
    that column; NaN with fewer than ``min_count`` of them."""
    out = np.full(b.shape, np.nan)
    for y in range(min_count, b.shape[1]):
        earlier = np.sort(b[:, :y], axis=1)  # NaN sort last
        n = (~np.isnan(earlier)).sum(axis=1)
        pos = np.maximum(n - 1, 0) * q
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        low = np.take_along_axis(earlier, lo[:, None], axis=1)[:, 0]
        high = np.take_along_axis(earlier, hi[:, None], axis=1)[:, 0]
        out[:, y] = np.where(n >= min_count, low + (pos - lo) * (high - low), np.nan)
    return out


def _streak(failed: np.ndarray) -> np.ndarray:
    """Consecutive failures ending at each season (seasons in time order on axis 1): NaN when
    that season's state is unknown; counting back stops at an unknown season."""
    out = np.full(failed.shape, np.nan)
    run = np.zeros(failed.shape[0])
    for s in range(failed.shape[1]):
        run = np.where(failed[:, s] == 1, run + 1, 0.0)
        out[:, s] = np.where(np.isnan(failed[:, s]), np.nan, run)
    return out


def _last_completed(seasons: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """Per month: the value of the last season completed by then (seasons: (area, year, 2),
    Gu then Deyr). Before any season has ended: NaN."""
    n_areas, n_years, _ = seasons.shape
    order = np.concatenate([np.full((n_areas, 1), np.nan), seasons.reshape(n_areas, -1)], axis=1)
    month = np.arange(12)
    # 1 + index of the last completed season in (Gu y0, Deyr y0, Gu y1, ...): Jan-May of year y
    # read Deyr of y - 1, June-November Gu of y, December Deyr of y
    done = np.where(month < _END_MONTHS[0] - 1, 0, np.where(month < _END_MONTHS[1] - 1, 1, 2))
    index = (2 * np.arange(n_years)[:, None] + done[None, :]).ravel()
    return _from_years(order[:, index].reshape(n_areas, n_years, 12), time)


@dataclass(frozen=True)
class SeasonState:
    """Rainy-season conditions of each area at each month, all causal (see :func:`season_state`).

    Attributes
    ----------
    running_z : ndarray
        Running total of the season in progress vs the same partial window of earlier years
        (NaN outside the seasons).
    last_z : ndarray
        Total of the last completed season vs earlier seasons of the same kind.
    last_failed : ndarray
        1 when the last completed season failed, 0 when it did not, NaN when unknown.
    seasons_failed : ndarray
        Consecutive most recent completed seasons that failed (NaN when the last is unknown).
    """

    running_z: np.ndarray
    last_z: np.ndarray
    last_failed: np.ndarray
    seasons_failed: np.ndarray


def season_state(rainfall: np.ndarray, time: pd.DatetimeIndex, *, fail_quantile: float = 0.33,
                 min_years: int = 3) -> SeasonState:
    """Rainy-season conditions per area and month, from monthly rainfall, causally.

    A season's total is known at its last month. It *fails* when it falls below the
    ``fail_quantile`` quantile (linear interpolation) of the same area's totals of EARLIER
    seasons of the same kind (Gu with Gu, Deyr with Deyr); its state is unknown (NaN) with
    fewer than ``min_years`` such earlier totals, or when any of its months is missing.
    The failure streak counts back through Gu and Deyr alternately and stops at the first
    season that did not fail or whose state is unknown.

    Parameters
    ----------
    rainfall : ndarray, shape (n_areas, n_times)
        Monthly rainfall, NaN where missing.
    time : pandas.DatetimeIndex
        Contiguous month starts.
    fail_quantile : float
        In (0, 1).
    min_years : int
        Earlier seasons of the same kind needed (at least 2).
    """
    if not 0 < fail_quantile < 1:
        raise ForecastError(f"season_fail_quantile lies strictly between 0 and 1, got {fail_quantile}")
    if min_years < 2:
        raise ForecastError(f"season_min_years must be at least 2 (a standard deviation needs two "
                            f"seasons), got {min_years}")
    b = _to_years(rainfall, time)
    running = _running_years(b)
    running_z = _earlier_anomaly(running, min_years)
    ends = [m - 1 for m in _END_MONTHS]
    totals = running[:, :, ends]
    threshold = _earlier_quantile(totals, fail_quantile, min_years)
    failed = np.where(np.isnan(totals) | np.isnan(threshold), np.nan, (totals < threshold).astype(float))
    streak = _streak(failed.reshape(failed.shape[0], -1)).reshape(failed.shape)
    return SeasonState(running_z=_from_years(running_z, time),
                       last_z=_last_completed(running_z[:, :, ends], time),
                       last_failed=_last_completed(failed, time),
                       seasons_failed=_last_completed(streak, time))
