"""Per-area thresholds at every origin, and whether the lead-time window crossed them.

Everything here is causal: the threshold at time index ``t`` reads months ``0..t`` only, so a
backtest origin sees the same threshold whether or not later data exist.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast._names import AREA
from forecast.errors import ForecastError
from forecast.triggers._spec import TriggerSpec

__all__ = ["threshold_matrix", "window_events", "window_max"]


def threshold_matrix(trigger: TriggerSpec, y: np.ndarray, cube: xr.Dataset | None = None) -> np.ndarray:
    """Thresholds, shape ``(n_areas, n_times)``: column ``t`` uses data up to ``t`` only.

    NaN where an area has no threshold yet (too little history, no population figure).
    """
    n_a, n_t = y.shape
    if trigger.kind == "absolute":
        thr = np.full((n_a, n_t), float(trigger.value))
    elif trigger.kind == "population":
        if cube is None or trigger.population not in cube.coords or cube[trigger.population].dims != (AREA,):
            have = [] if cube is None else [c for c in cube.coords if cube[c].dims == (AREA,) and c != AREA]
            raise ForecastError(
                f"trigger {trigger.name!r} is relative to population, but the cube has no area "
                f"coordinate {trigger.population!r} (it has: {', '.join(have) or 'none'}); ingest an "
                "attributes table with a population column (forecast ingest --attributes)")
        pop = np.asarray(cube[trigger.population].values, dtype=float)
        pop = np.where(pop > 0, pop, np.nan)
        thr = np.repeat((trigger.value * pop / trigger.per)[:, None], n_t, axis=1)
    else:
        thr = _expanding_percentile(y, trigger.value, trigger.min_history)
    return np.where(np.isfinite(thr), np.maximum(thr, trigger.floor), np.nan)


def _expanding_percentile(y: np.ndarray, q: float, min_history: int) -> np.ndarray:
    """Per row and month ``t``, the ``q``-th percentile of the row's observed months ``0..t``
    (``np.nanpercentile``, "linear"), where at least ``min_history`` of them are observed.

    The percentile changes only in a month with an observation, so it is computed once per
    observation, grouped by how many the row has had (``np.percentile`` of the first ``k``
    observed values of every row that has ``k``), and carried forward to the next one.
    """
    n_a, n_t = y.shape
    out = np.full((n_a, n_t), np.nan)
    finite = np.isfinite(y)
    counts = finite.sum(axis=1)
    if n_a == 0 or counts.max(initial=0) < max(min_history, 1):
        return out
    # each row's observed values first, in month order (a stable sort keeps the order)
    order = np.argsort(~finite, axis=1, kind="stable")
    values = np.take_along_axis(y, order, axis=1)
    at = np.full((n_a, n_t), np.nan)  # the percentile in each month with an observation
    for k in range(max(min_history, 1), int(counts.max()) + 1):
        rows = np.flatnonzero(counts >= k)
        at[rows, order[rows, k - 1]] = np.percentile(values[rows, :k], q, axis=1)
    # carry each month's value forward to the row's next observation
    last = np.where(np.isfinite(at), np.arange(n_t), -1)
    last = np.maximum.accumulate(last, axis=1)
    has = last >= 0
    out[has] = at[np.nonzero(has)[0], last[has]]
    return out


def window_max(y: np.ndarray, lead: int) -> tuple[np.ndarray, np.ndarray]:
    """Max of months ``t+1..t+lead`` and whether all of them were observed, shape (A, T)."""
    n_a, n_t = y.shape
    top = np.full((n_a, n_t), np.nan)
    complete = np.zeros((n_a, n_t), dtype=bool)
    for t in range(n_t - lead):
        win = y[:, t + 1: t + 1 + lead]
        finite = np.isfinite(win)
        complete[:, t] = finite.all(axis=1)
        top[:, t] = np.where(finite.any(axis=1), np.nanmax(np.where(finite, win, -np.inf), axis=1), np.nan)
    return top, complete


def window_events(y: np.ndarray, thresholds: np.ndarray, lead: int) -> np.ndarray:
    """1.0 where a month in ``t+1..t+lead`` reached the threshold set at ``t``, 0.0 where every
    month of the window was observed below it, NaN where that cannot be told (a month of the
    window unobserved or beyond the data, or no threshold at ``t``)."""
    top, complete = window_max(y, lead)
    crossed = np.isfinite(top) & (top >= thresholds)
    out = np.where(crossed, 1.0, np.where(complete, 0.0, np.nan))
    return np.where(np.isfinite(thresholds), out, np.nan)
