"""Prediction intervals calibrated on past backtest errors (split conformal, online).

For each model and horizon, the quantile ``tau`` forecast at origin ``o`` is shifted by the
``tau``-quantile of the scaled errors ``(actual - q_tau) / scale`` of forecasts whose target
month is at or before ``o``. A model without quantiles of its own starts from its point
forecast, so the same rule gives empirical-residual intervals for the baselines. Scaling by
the area's MASE scale lets one pool of errors serve areas of very different sizes.

Scaling is not enough in the tails: the errors of the largest areas are not the errors of the
smallest, scaled. With ``by_size`` (the default) the calibration is conditional on size
(Mondrian): an area's size bin at an origin is its tercile among the areas' recent levels (the
mean of the last :data:`LEVEL_MONTHS` observed months, known at that origin), and each bin is
calibrated on the past errors of its own bin. A bin with fewer than ``min_calibration`` past
errors falls back to the pooled calibration, and the forecast says so (``calibrated_by``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.backtest._metrics import quantile_column

__all__ = ["calibrate", "conformal_shifts", "total_ratio", "MIN_CALIBRATION", "SIZE_BINS", "LEVEL_MONTHS",
           "recent_level", "size_bins"]

#: Fewer past errors than this and a forecast gets no interval rather than a made-up one (and a
#: size bin with fewer is calibrated with the pooled errors).
MIN_CALIBRATION = 30
#: The size bins of conditional calibration, smallest first; an area with no recent level is
#: ``unknown`` and calibrated with the pooled errors.
SIZE_BINS = ("small", "medium", "large")
#: Months of the trailing mean that sizes an area at an origin.
LEVEL_MONTHS = 12


def recent_level(history: np.ndarray, months: int = LEVEL_MONTHS) -> np.ndarray:
    """Per area (rows of ``history``, months up to the origin in columns), the mean of its last
    ``months`` months that were observed; NaN when none was."""
    window = history[:, -months:]
    seen = np.isfinite(window)
    total = np.where(seen, window, 0.0).sum(axis=1)
    count = seen.sum(axis=1)
    return np.divide(total, count, out=np.full(len(window), np.nan), where=count > 0)


def size_bins(level: np.ndarray) -> np.ndarray:
    """Each area's size bin at one origin: ``small``, ``medium`` or ``large`` by the terciles of
    the recent levels of the areas that have one (ties stay in the lower bin), ``unknown`` without."""
    out = np.full(level.shape, "unknown", dtype=object)
    known = np.isfinite(level)
    if known.any():
        low, high = np.quantile(level[known], [1 / 3, 2 / 3])
        values = level[known]
        out[known] = np.where(values <= low, SIZE_BINS[0], np.where(values <= high, SIZE_BINS[1], SIZE_BINS[2]))
    return out


def conformal_shifts(residuals: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per level, the shift that puts a share ``tau`` of past outcomes at or below the quantile."""
    n = residuals.shape[0]
    out = np.empty(len(levels))
    for j, tau in enumerate(levels):
        # finite-sample conformal correction: move each level away from the median by 1/(n+1)
        adj = np.clip(tau + (np.sign(tau - 0.5) / (n + 1)), 0.0, 1.0)
        out[j] = np.quantile(residuals[:, j], adj, method="inverted_cdf" if tau < 0.5 else "higher")
    return out


def calibrate(table: pd.DataFrame, raw: np.ndarray, levels, *, nonnegative: bool = True,
              min_calibration: int = MIN_CALIBRATION, by_size: bool = True) -> pd.DataFrame:
    """Add calibrated quantile columns to one model's forecasts, ``calibrated_by``: ``size``
    (its size bin's own errors), ``pooled`` (every area's), or NaN (too few errors: no interval),
    and ``mean``: the point forecast times :func:`total_ratio` of the same earlier forecasts (the
    outcomes' total over the forecasts' total), a forecast whose totals hold. Within an origin and
    horizon every area is scaled alike, so ``mean`` ranks the areas as ``point`` does.

    Parameters
    ----------
    table : DataFrame
        One model's forecasts: ``origin, horizon, time, actual, point, scale`` (and ``size_bin``,
        each row's bin at its origin, for ``by_size``; without it every row is pooled).
    raw : ndarray, shape (len(table), n_levels)
        The model's own quantiles, or the point forecast repeated when it has none.
    levels : sequence of float
    nonnegative : bool
        Clip at zero (counts).
    min_calibration : int
        Minimum past errors for an interval, and for a size bin's own calibration.
    by_size : bool
        Calibrate each size bin on its own past errors (Mondrian); False: one pool for all.
    """
    levels = np.asarray(levels, dtype=float)
    out = np.full(raw.shape, np.nan)
    actual = table["actual"].to_numpy(float)
    scale = table["scale"].to_numpy(float)
    resid = (actual[:, None] - raw) / scale[:, None]
    origin = table["origin"].to_numpy()
    target_time = table["time"].to_numpy()
    point = table["point"].to_numpy(float)
    mean = np.full(len(table), np.nan)
    sized = by_size and "size_bin" in table
    bins = table["size_bin"].to_numpy() if sized else np.full(len(table), "unknown", dtype=object)
    codes, names = pd.factorize(bins, use_na_sentinel=False)  # bins as integers: fast to compare
    used = np.full(len(table), np.nan, dtype=object)
    horizon = table["horizon"].to_numpy()
    known = np.isfinite(actual)
    # per horizon, on index arrays: an origin's pool (outcomes known at the origin) is a prefix of
    # the horizon's known rows sorted by target month; only the rows of one horizon are scanned
    for h in np.unique(horizon):
        in_h = np.flatnonzero(horizon == h)
        seen = in_h[known[in_h]]
        seen = seen[np.argsort(target_time[seen], kind="stable")]
        seen_time = target_time[seen]
        by_origin = in_h[np.argsort(origin[in_h], kind="stable")]
        sorted_origins = origin[by_origin]
        firsts = np.flatnonzero(sorted_origins[1:] != sorted_origins[:-1]) + 1
        for rows in np.split(by_origin, firsts):
            # table order, as a mask would give it: the totals are summed in the same order
            pool = np.sort(seen[:np.searchsorted(seen_time, origin[rows[0]], side="right")])
            if len(pool) < min_calibration:
                continue
            pooled = conformal_shifts(resid[pool], levels)
            mean[rows] = point[rows] * total_ratio(actual[pool], point[pool])
            row_codes, pool_codes = codes[rows], codes[pool]
            for code in np.unique(row_codes):
                mine, own = rows[row_codes == code], pool[pool_codes == code]
                if names[code] in SIZE_BINS and len(own) >= min_calibration:
                    delta, used[mine] = conformal_shifts(resid[own], levels), "size"
                else:
                    delta, used[mine] = pooled, "pooled"
                out[mine] = raw[mine] + delta[None, :] * scale[mine, None]
    out = np.sort(out, axis=1)  # NaN rows stay NaN; others never cross
    if nonnegative:
        out = np.maximum(out, 0.0)
    result = table.copy()
    for j, q in enumerate(levels):
        result[quantile_column(q)] = out[:, j]
    for j, q in enumerate(levels):  # the model's own quantiles (or its point), before calibration
        result[f"raw_{quantile_column(q)}"] = raw[:, j]
    result["calibrated_by"] = used
    result["mean"] = np.maximum(mean, 0.0) if nonnegative else mean
    return result


def total_ratio(actual: np.ndarray, point: np.ndarray) -> float:
    """How much the outcomes totalled against the point forecasts, over the pairs where both are
    known: the factor that turns a point forecast into one whose totals hold (NaN without any)."""
    known = np.isfinite(actual) & np.isfinite(point)
    forecast = point[known].sum()
    return float(actual[known].sum() / forecast) if forecast > 0 else np.nan
