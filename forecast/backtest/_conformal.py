"""Prediction intervals calibrated on past backtest errors (split conformal, online).

For each model and horizon, the quantile ``tau`` forecast at origin ``o`` is shifted by the
``tau``-quantile of the scaled errors ``(actual - q_tau) / scale`` of forecasts whose target
month is at or before ``o``. A model without quantiles of its own starts from its point
forecast, so the same rule gives empirical-residual intervals for the baselines. Scaling by
the area's MASE scale lets one pool of errors serve areas of very different sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.backtest._metrics import quantile_column

__all__ = ["calibrate", "conformal_shifts", "MIN_CALIBRATION"]

#: Fewer past errors than this and a forecast gets no interval rather than a made-up one.
MIN_CALIBRATION = 30


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
              min_calibration: int = MIN_CALIBRATION) -> pd.DataFrame:
    """Add calibrated quantile columns to one model's forecasts.

    Parameters
    ----------
    table : DataFrame
        One model's forecasts: ``origin, horizon, time, actual, point, scale``.
    raw : ndarray, shape (len(table), n_levels)
        The model's own quantiles, or the point forecast repeated when it has none.
    levels : sequence of float
    nonnegative : bool
        Clip at zero (counts).
    min_calibration : int
        Minimum past errors for an interval.
    """
    levels = np.asarray(levels, dtype=float)
    out = np.full(raw.shape, np.nan)
    actual = table["actual"].to_numpy(float)
    scale = table["scale"].to_numpy(float)
    resid = (actual[:, None] - raw) / scale[:, None]
    origin = table["origin"].to_numpy()
    target_time = table["time"].to_numpy()
    for h in np.unique(table["horizon"].to_numpy()):
        in_h = table["horizon"].to_numpy() == h
        for o in np.unique(origin[in_h]):
            pool = in_h & (target_time <= o) & np.isfinite(actual)
            if pool.sum() < min_calibration:
                continue
            delta = conformal_shifts(resid[pool], levels)
            rows = in_h & (origin == o)
            out[rows] = raw[rows] + delta[None, :] * scale[rows, None]
    out = np.sort(out, axis=1)  # NaN rows stay NaN; others never cross
    if nonnegative:
        out = np.maximum(out, 0.0)
    result = table.copy()
    for j, q in enumerate(levels):
        result[quantile_column(q)] = out[:, j]
    for j, q in enumerate(levels):  # the model's own quantiles (or its point), before calibration
        result[f"raw_{quantile_column(q)}"] = raw[:, j]
    return result
