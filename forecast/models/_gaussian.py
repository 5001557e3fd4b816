"""The predictive distribution of the per-area models (:mod:`forecast.models._local`): a
Gaussian on the transformed scale, the naive random walk that stands in for an area without a
usable fit, the guard that refuses a diverged fit, and what is read from them (mean, quantiles)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from forecast.models._baselines import last_value

def _naive_gaussian(y_t: np.ndarray, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random walk from the last observed value, on the transformed scale.

    Its variance per month is the mean of ``d**2 / k`` over the differences ``d`` between
    successive observed values ``k`` months apart (consecutive months, or DTM rounds with
    months between them). An area with fewer than two differences takes the median variance of
    the areas that have them (NaN only when none has)."""
    n_t = y_t.shape[1]
    seen = ~np.isnan(y_t)
    last_idx = np.where(seen, np.arange(n_t), -1).max(axis=1)
    sigma2 = np.full(y_t.shape[0], np.nan)
    for i, row in enumerate(y_t):
        at = np.flatnonzero(~np.isnan(row))
        if at.size >= 3:
            sigma2[i] = np.mean(np.diff(row[at]) ** 2 / np.diff(at))
    pooled = np.nanmedian(sigma2) if np.isfinite(sigma2).any() else np.nan
    sigma2 = np.where(np.isfinite(sigma2), sigma2, pooled)
    ahead = horizons[None, :] + (n_t - 1 - last_idx)[:, None]
    mu = np.repeat(last_value(y_t)[:, None], len(horizons), axis=1)
    return mu, sigma2[:, None] * ahead


def _diverged(history: np.ndarray, mu: np.ndarray, var: np.ndarray) -> str | None:
    """Why a fit's forecast cannot be used: a median outside the range the area has seen,
    widened by that range's width on each side (transformed scale), or a non-finite one."""
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(var))):
        return "the fit gave a non-finite forecast or variance"
    seen = history[~np.isnan(history)]
    lo, hi = seen.min(), seen.max()
    span = hi - lo
    if np.any(mu < lo - span) or np.any(mu > hi + span):
        return (f"the fit diverged: its forecast ({mu.min():.3g} to {mu.max():.3g} on the model's scale) leaves "
                f"the range the area has seen ({lo:.3g} to {hi:.3g}) by more than that range")
    return None


def _mean_from_gaussian(mu: np.ndarray, var: np.ndarray, transform: str | None) -> np.ndarray:
    if transform == "log1p":
        return np.expm1(mu + var / 2.0)
    return mu.copy()


def _quantiles_from_gaussian(mu: np.ndarray, var: np.ndarray, levels: np.ndarray,
                             transform: str | None) -> np.ndarray:
    sd = np.sqrt(np.maximum(var, 0.0))
    q = _inverse(mu[..., None] + sd[..., None] * norm.ppf(levels), transform)
    q = np.maximum(q, 0.0)
    order = np.argsort(levels, kind="stable")
    q[..., order] = np.sort(q[..., order], axis=-1)  # monotone already; guards against rounding
    return q


def _forward(y: np.ndarray, transform: str | None) -> np.ndarray:
    return np.log1p(y) if transform == "log1p" else np.asarray(y, dtype=float)


def _inverse(z: np.ndarray, transform: str | None) -> np.ndarray:
    return np.expm1(z) if transform == "log1p" else z
