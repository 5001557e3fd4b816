"""Feature rows after a forecast origin, rebuilt from the target extended with the model's forecasts.

The recursive strategy forecasts one month ahead, appends the forecast to the target and
forecasts again. Only features that are functions of the target and the calendar can be
rebuilt that way (``lags``, ``rolling``, ``season``); covariates, neighbours and flows would
need forecasts of their own, so specs that use them keep the direct strategy.

Each step computes the matrix's columns at the new month only, from the months each looks back
over (the longest lag or window), which is what makes a step cheap; the three columns that look
back over the whole history (last value, its age, the expanding mean) are carried exactly.
``tests/test_recursive.py`` checks the rows against ``build_features`` on the extended target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.features._build import FeatureMatrix, resolve_families
from forecast.features import _windows as w
from forecast.features._families import DEFAULT_PARAMS

__all__ = ["RECURSIVE_FAMILIES", "RecursiveRows", "check_recursive"]

#: Families a recursive forecast can rebuild from its own forecasts.
RECURSIVE_FAMILIES = ("lags", "rolling", "season")


def check_recursive(families: Sequence[str] | str) -> None:
    """Refuse families the recursive strategy cannot rebuild, naming them."""
    other = [f for f in resolve_families(families) if f not in RECURSIVE_FAMILIES]
    if other:
        raise ForecastError(
            f"strategy recursive feeds the model's own forecasts back as the target, so it can rebuild only "
            f"target and calendar features ({', '.join(RECURSIVE_FAMILIES)}), not {', '.join(other)}; "
            f"set features: [{', '.join(RECURSIVE_FAMILIES)}] or use strategy direct")


class RecursiveRows:
    """The target up to origin ``o``, extended month by month with forecasts, and its feature rows.

    Parameters
    ----------
    fm : FeatureMatrix
        The matrix the model was trained on (its columns and families).
    params : mapping
        The spec's ``feature_params`` (merged over the defaults, as ``build_features`` does).
    o : int
        The origin's month index.
    steps : int
        Months to extend by.
    """

    def __init__(self, fm: FeatureMatrix, params: Mapping | None, o: int, steps: int):
        check_recursive(list(fm.families))
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.families = list(fm.families)
        self.columns = list(fm.X.columns)
        y = fm.panel.y[:, : o + 1]
        self.o = o
        self.y = np.full((y.shape[0], o + 1 + steps), np.nan)
        self.y[:, : o + 1] = y
        time = fm.panel.time[: o + 1]
        self.time = time.append(pd.date_range(time[-1], periods=steps + 1, freq="MS")[1:])
        seen = ~np.isnan(y)
        self._sum, self._count = np.where(seen, y, 0.0).sum(axis=1), seen.sum(axis=1).astype(float)

    def push(self, k: int, values: np.ndarray) -> None:
        """The forecast for month ``o + k`` becomes the target there."""
        self.y[:, self.o + k] = np.asarray(values, dtype=float)

    def rows(self, t: int) -> np.ndarray:
        """Feature rows (one per area, the matrix's columns) at month ``t > o``.

        Only the matrix's columns are computed, each from the months it looks back over, with
        the families' window operations (``_windows``): a step costs a few vector operations
        per column, not the families over the whole span."""
        if not self.o < t < self.y.shape[1]:
            raise ValueError(f"rows after the origin only: o={self.o}, t={t}")
        need, y, n_areas = set(self.columns), self.y, self.y.shape[0]
        row = {}
        if "lags" in self.families:
            for k in self.params["lags"]:
                if f"y_lag{k}" in need:
                    row[f"y_lag{k}"] = y[:, t - int(k)] if t >= int(k) else np.full(n_areas, np.nan)
        if "rolling" in self.families:
            for n in (int(n) for n in self.params["windows"]):
                row.update(_window_stats(y[:, max(0, t + 1 - n): t + 1], n, need))
        if "season" in self.families:
            month = float(self.time[t].month)
            angle = 2 * np.pi * (month - 1) / 12
            row.update(month=np.full(n_areas, month), month_sin=np.full(n_areas, np.sin(angle)),
                       month_cos=np.full(n_areas, np.cos(angle)))
        hist = y[:, : t + 1]
        if "y_last" in need or "y_age" in need:  # the whole history: the latest value there, and its age
            idx = np.maximum.accumulate(np.where(np.isfinite(hist), np.arange(t + 1), -1), axis=1)[:, -1]
            found = idx >= 0
            row["y_last"] = np.where(found, hist[np.arange(len(idx)), np.maximum(idx, 0)], np.nan)
            row["y_age"] = np.where(found, t - idx, np.nan).astype(float)
        if "y_mean_all" in need:  # the sums up to the origin, plus the months since
            after = y[:, self.o + 1 : t + 1]
            seen = np.isfinite(after)
            total = self._sum + np.where(seen, after, 0.0).sum(axis=1)
            count = self._count + seen.sum(axis=1)
            row["y_mean_all"] = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
        missing = [c for c in self.columns if c not in row]
        if missing:  # a family's column this module does not know how to rebuild
            raise ForecastError(f"cannot rebuild {missing} after the origin; the recursive strategy rebuilds "
                                f"{', '.join(RECURSIVE_FAMILIES)} columns only")
        return np.column_stack([row[c] for c in self.columns]).astype(np.float32)


def _window_stats(window: np.ndarray, n: int, need: set) -> dict[str, np.ndarray]:
    """The needed ones of ``y_mean{n}``, ``y_std{n}`` and ``y_max{n}`` at the window's last month,
    by the families' own window operations on the (at most n) months of ``window``."""
    ops = {f"y_mean{n}": w.rolling_mean, f"y_std{n}": w.rolling_std, f"y_max{n}": w.rolling_max}
    return {name: op(window, n)[:, -1] for name, op in ops.items() if name in need}
