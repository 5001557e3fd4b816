"""Causal, missing-aware window operations on (area, time) arrays.

Every function here computes the value at month ``t`` from months ``<= t`` only, and treats
NaN as "not observed" (never as zero). They are the building blocks of the feature families,
so that leakage is excluded by construction rather than by care at each call site.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["lag", "rolling_mean", "rolling_std", "rolling_max", "expanding_mean", "forward_fill",
           "months_since_observed", "safe_divide"]


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or NaN (without a warning)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = np.isfinite(den) & (den != 0) & np.isfinite(num)
    np.divide(num, den, out=out, where=ok)
    return out


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """x at month t − k (NaN before the start)."""
    if k < 0:
        raise ValueError("a negative lag would read the future")
    if k == 0:
        return x.copy()
    out = np.full_like(x, np.nan, dtype=float)
    out[:, k:] = x[:, :-k]
    return out


def _window_sums(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seen = ~np.isnan(x)
    v = np.where(seen, x, 0.0)
    pad = ((0, 0), (1, 0))
    c_v = np.cumsum(np.pad(v, pad), axis=1)
    c_v2 = np.cumsum(np.pad(v * v, pad), axis=1)
    c_n = np.cumsum(np.pad(seen.astype(float), pad), axis=1)
    t = np.arange(x.shape[1])
    lo = np.maximum(t + 1 - w, 0)
    hi = t + 1
    return c_v[:, hi] - c_v[:, lo], c_v2[:, hi] - c_v2[:, lo], c_n[:, hi] - c_n[:, lo]


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean of the observed values in months (t − w, t]; NaN when none was observed."""
    s, _, n = _window_sums(x, w)
    return safe_divide(s, n)


def rolling_std(x: np.ndarray, w: int) -> np.ndarray:
    """Population standard deviation of the observed values in (t − w, t]; NaN with fewer than 2."""
    s, s2, n = _window_sums(x, w)
    mean = safe_divide(s, n)
    var = safe_divide(s2, n) - mean * mean
    var = np.where(n >= 2, np.maximum(var, 0.0), np.nan)
    return np.sqrt(var)


def rolling_max(x: np.ndarray, w: int) -> np.ndarray:
    """Largest observed value in (t − w, t]; NaN when none was observed."""
    padded = np.pad(np.where(np.isnan(x), -np.inf, x), ((0, 0), (w - 1, 0)), constant_values=-np.inf)
    out = sliding_window_view(padded, w, axis=1).max(axis=2)
    return np.where(np.isneginf(out), np.nan, out)


def expanding_mean(x: np.ndarray) -> np.ndarray:
    """Mean of every observed value up to and including month t."""
    seen = ~np.isnan(x)
    return safe_divide(np.cumsum(np.where(seen, x, 0.0), axis=1), np.cumsum(seen, axis=1).astype(float))


def forward_fill(x: np.ndarray) -> np.ndarray:
    """The latest observed value at or before month t (forward fill)."""
    idx = _last_index(x)
    rows = np.arange(x.shape[0])[:, None]
    out = x[rows, np.maximum(idx, 0)]
    return np.where(idx >= 0, out, np.nan)


def months_since_observed(x: np.ndarray) -> np.ndarray:
    """Months since the latest observation at or before t (0 when t itself is observed)."""
    idx = _last_index(x)
    t = np.arange(x.shape[1])[None, :]
    return np.where(idx >= 0, t - idx, np.nan).astype(float)


def _last_index(x: np.ndarray) -> np.ndarray:
    t = np.arange(x.shape[1])[None, :]
    return np.maximum.accumulate(np.where(~np.isnan(x), t, -1), axis=1)
