"""Probability of crossing a threshold, from forecast quantiles, and its recalibration.

The forecast route reads a predictive distribution off the calibrated quantiles: on the
``log1p`` scale, the quantile function is taken as piecewise linear in the normal score
``z = Phi^-1(tau)`` between the forecast levels, and extended beyond the outermost levels with
the slope of the outermost segment. With levels 0.1/0.5/0.9 that is a split normal on
``log(1 + arrivals)``: right-skewed counts, no negative values, and exactly the forecast
quantiles at their levels.

A lead-time window of several months crosses the threshold if any of its months does. The
months' errors share the origin's shock, so the window probability is taken as the largest of
the monthly ones (their errors moving together); that is a lower bound, and the Platt
recalibration fitted on past origins corrects what it misses (see the README's measurement).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

__all__ = ["exceedance_probability", "PlattCalibrator", "recalibrator", "RECALIBRATE", "MIN_CALIBRATION_EVENTS"]

#: Fewer past events (or non-events) than this and probabilities stay as the model gave them.
MIN_CALIBRATION_EVENTS = 10
_EPS = 1e-4


def exceedance_probability(quantiles: np.ndarray, levels, threshold: np.ndarray) -> np.ndarray:
    """P(Y >= threshold) per row from that row's quantiles.

    Parameters
    ----------
    quantiles : ndarray, shape (n, k)
        Non-decreasing along the last axis (forecast quantiles never cross).
    levels : sequence of float, length k
    threshold : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n,)
        NaN where a quantile or the threshold is missing.
    """
    q = np.log1p(np.maximum(np.asarray(quantiles, dtype=float), 0.0))
    x = np.log1p(np.maximum(np.asarray(threshold, dtype=float), 0.0))
    z = norm.ppf(np.asarray(levels, dtype=float))
    n, k = q.shape
    out = np.full(n, np.nan)
    ok = np.isfinite(q).all(axis=1) & np.isfinite(x)
    if k == 1:
        out[ok] = np.where(x[ok] <= q[ok, 0], 1.0, 0.0)
        return out
    zx = np.full(n, np.nan)
    # segment j covers [q_j, q_{j+1}]; the first and last extend to -inf / +inf
    for j in range(k - 1):
        lo, hi = q[:, j], q[:, j + 1]
        inside = ok & np.isnan(zx) & (
            ((x <= hi) | (j == k - 2)) & ((x >= lo) | (j == 0)))
        width = hi - lo
        flat = inside & (width <= 1e-12)
        slope = inside & ~flat
        zx[slope] = z[j] + (x[slope] - lo[slope]) * (z[j + 1] - z[j]) / width[slope]
        # a flat segment is a point mass: below it P(Y >= x) is the mass above, above it what is above
        zx[flat] = np.where(x[flat] <= lo[flat], z[j] - 8.0 * (x[flat] < lo[flat]), z[j + 1] + 8.0 * (x[flat] > hi[flat]))
    out[ok] = norm.sf(zx[ok])
    out[ok & (x <= 0)] = 1.0  # counts are never negative: every outcome is >= 0
    return np.clip(out, 0.0, 1.0)


class PlattCalibrator:
    """Logistic recalibration of probabilities: ``p' = expit(a * logit(p) + b)``.

    Fitted on (probability, outcome) pairs whose outcomes were known; left as the identity when
    they hold fewer than ``min_events`` events or non-events (``fitted_`` says which).
    """

    def __init__(self, min_events: int = MIN_CALIBRATION_EVENTS):
        self.min_events = min_events

    def fit(self, probability: np.ndarray, outcome: np.ndarray) -> PlattCalibrator:
        p = np.asarray(probability, dtype=float)
        y = np.asarray(outcome, dtype=float)
        ok = np.isfinite(p) & np.isfinite(y)
        p, y = p[ok], y[ok]
        self.n_ = int(len(y))
        self.n_events_ = int(y.sum())
        self.fitted_ = min(self.n_events_, self.n_ - self.n_events_) >= self.min_events
        self.coef_, self.intercept_ = 1.0, 0.0
        if self.fitted_:
            lr = LogisticRegression(C=1e4, max_iter=1000)
            lr.fit(logit(np.clip(p, _EPS, 1 - _EPS))[:, None], y.astype(int))
            self.coef_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def transform(self, probability: np.ndarray) -> np.ndarray:
        p = np.asarray(probability, dtype=float)
        if not getattr(self, "fitted_", False):
            return p
        out = expit(self.coef_ * logit(np.clip(p, _EPS, 1 - _EPS)) + self.intercept_)
        return np.where(np.isfinite(p), out, np.nan)


RECALIBRATE = ("always", "auto", "never")


def recalibrator(probability: np.ndarray, outcome: np.ndarray, origin: np.ndarray,
                 *, mode: str = "always", holdout: float = 1 / 3) -> PlattCalibrator:
    """The Platt calibrator for the next origin (the identity where it is not to be used).

    ``always``: fitted whenever the known outcomes hold enough events and non-events.
    ``auto``: only where calibration is poor: a calibrator fitted on the earlier known origins
    must lower the Brier score on the most recent ``holdout`` share of them. ``never``: raw.
    Everything passed in must be known at the origin it will serve (the caller's duty).
    On the Somalia sample ``always`` scored the lower Brier summed over leads and routes
    (1.643 against 1.666 for ``auto``; README).
    """
    if mode not in RECALIBRATE:
        raise ValueError(f"recalibrate must be one of {RECALIBRATE}, got {mode!r}")
    p = np.asarray(probability, dtype=float)
    y = np.asarray(outcome, dtype=float)
    origins = np.unique(origin)
    identity = PlattCalibrator(min_events=len(y) + 1).fit(p, y)  # never fitted: passes through
    if mode == "always":
        return PlattCalibrator().fit(p, y)
    if mode == "never" or len(origins) < 3:
        return identity
    cut = origins[-max(1, int(round(len(origins) * holdout)))]
    early, late = origin < cut, origin >= cut
    trial = PlattCalibrator().fit(p[early], y[early])
    if not trial.fitted_:
        return identity
    raw_brier = np.mean((p[late] - y[late]) ** 2)
    new_brier = np.mean((trial.transform(p[late]) - y[late]) ** 2)
    return PlattCalibrator().fit(p, y) if new_brier < raw_brier else identity
