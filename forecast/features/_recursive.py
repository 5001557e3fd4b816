"""Feature rows after a forecast origin, rebuilt from the target extended with the model's forecasts.

The recursive strategy forecasts one month ahead, appends the forecast to the target and
forecasts again. Only features that are functions of the target and the calendar can be
rebuilt that way (``lags``, ``rolling``, ``season``); covariates, neighbours and flows would
need forecasts of their own, so specs that use them keep the direct strategy.

Each step computes the families on the last few months only (enough for the longest lag and
window), which is what makes a step cheap; the three columns that look back over the whole
history (last value, its age, the expanding mean) are carried exactly instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.features._build import FeatureMatrix, resolve_families
from forecast.features._families import DEFAULT_PARAMS, FAMILIES, Inputs

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
        lags = [int(k) for k in self.params["lags"]] if "lags" in self.families else [0]
        windows = [int(n) for n in self.params["windows"]] if "rolling" in self.families else [1]
        self.span = max(max(lags) + 1, max(windows))
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
        """Feature rows (one per area, the matrix's columns) at month ``t > o``."""
        if not self.o < t < self.y.shape[1]:
            raise ValueError(f"rows after the origin only: o={self.o}, t={t}")
        s = max(0, t + 1 - self.span)
        inputs = Inputs(y=self.y[:, s : t + 1], exog={}, time=self.time[s : t + 1], parents=np.array([]),
                        neighbours=[])
        row = {}
        for name in self.families:
            row.update({k: v[:, -1] for k, v in FAMILIES[name](inputs, self.params).items()})
        hist = self.y[:, : t + 1]
        if "y_last" in row:  # the whole history: the latest value that is there, and its age
            idx = np.maximum.accumulate(np.where(np.isfinite(hist), np.arange(t + 1), -1), axis=1)[:, -1]
            found = idx >= 0
            row["y_last"] = np.where(found, hist[np.arange(len(idx)), np.maximum(idx, 0)], np.nan)
            row["y_age"] = np.where(found, t - idx, np.nan).astype(float)
        if "y_mean_all" in row:  # the sums up to the origin, plus the months since
            after = self.y[:, self.o + 1 : t + 1]
            seen = np.isfinite(after)
            total = self._sum + np.where(seen, after, 0.0).sum(axis=1)
            count = self._count + seen.sum(axis=1)
            row["y_mean_all"] = np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)
        return np.column_stack([row[c] for c in self.columns]).astype(np.float32)
