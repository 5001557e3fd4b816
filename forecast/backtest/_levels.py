"""One model backtested at every admin level and reconciled: districts that add up to regions
and to the country.

Planners read totals (a region's figure for a response plan, the national one for an appeal).
:func:`backtest_levels` runs the same spec on the cube and on its sums to each coarser level
(:func:`forecast.cube.aggregate`), with the same folds, and reconciles the forecasts of every
origin and horizon (:func:`~forecast.backtest.reconcile`): the points and the means (the forecast
whose totals hold) are coherent exactly, the quantiles come from coherent sample paths. The
paths are too narrow for regions and the country (their errors move together more than the
districts' past errors ranked together show), so by default each level's quantiles are then
shifted by the conformal shifts of that level's own earlier errors (:func:`calibrate_by_level`):
on the Somalia sample that took the regions' 80% coverage from 0.52-0.56 to 0.76-0.81 and the
districts' from 0.60-0.63 to 0.80-0.86 under MinT (README). The country's one series has too
few earlier errors to be calibrated so and keeps the paths' quantiles. The scores are per
level, of the base forecasts and of the reconciled ones, so that a reconciliation is kept only
where it earns its place.

Example::

    from forecast.backtest import RollingOrigin, backtest_levels
    levels = backtest_levels(cube, spec, folds=RollingOrigin(n_origins=12, calibration_origins=12))
    levels.scores()                      # level x horizon x forecast (base, reconciled): MASE, coverage,
                                         # level_ratio (point) and mean_level_ratio (mean), ...
    levels.forecasts.query("level == 1") # the regions' reconciled forecasts
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from forecast.backtest._conformal import MIN_CALIBRATION, conformal_shifts
from forecast.backtest._folds import RollingOrigin
from forecast.backtest._metrics import numeric_column, quantile_column, score
from forecast.backtest._progress import Progress
from forecast.backtest._reconcile import Hierarchy, hierarchy_of, reconcile
from forecast.backtest._run import BacktestResult, backtest
from forecast.cube import aggregate
from forecast.errors import ForecastError
from forecast.models import ModelSpec

__all__ = ["LevelsResult", "backtest_levels", "calibrate_by_level"]

#: What a reconciled forecast table's level is called, coarse to fine.
LEVEL_NAMES = {0: "national", 1: "admin1", 2: "admin2", 3: "admin3"}


@dataclass
class LevelsResult:
    """The base backtest of each level and the reconciled forecasts of every level.

    Attributes
    ----------
    forecasts : DataFrame
        :func:`~forecast.backtest.reconcile`'s table: one row per series (``level``, ``area``),
        origin and horizon, with ``base_point``, ``base_mean`` and the reconciled ``point``,
        ``mean`` and quantiles; calibrated by level (:func:`calibrate_by_level`), also the
        paths' own quantiles (``raw_q...``) and ``calibrated_by``; ``size_bin``: the series'
        bin in its level's own backtest (``scores(by=("horizon", "size_bin"))``).
    base : dict of int to BacktestResult
        Each level's own backtest (admin level -> result).
    hierarchy : Hierarchy
    method : str
    """

    forecasts: pd.DataFrame
    base: dict[int, BacktestResult]
    hierarchy: Hierarchy
    method: str
    spec: ModelSpec
    notes: dict[int, list[str]] = field(default_factory=dict)

    def scores(self, by: Sequence[str] = ("horizon",)) -> pd.DataFrame:
        """Scored origins' metrics per level, of the base forecasts and of the reconciled ones:
        columns ``level, forecast`` (``base`` or the method), then ``by`` and the metrics of
        :func:`~forecast.backtest.score` (``mase``, ``crps``, ``coverage80``, ``level_ratio`` of
        the points, ``mean_level_ratio`` of the means, ...). A base level without a mean of its
        own (the national series: too few earlier errors) has a NaN ``mean_level_ratio``."""
        frames = []
        for level, result in self.base.items():
            own = result.scored[result.scored["model"] == self.spec.name]
            frames.append(score(own, by=list(by)).assign(level=level, forecast="base"))
        done = self.forecasts[self.forecasts["role"] == "scored"]
        for level, part in done.groupby("level"):
            frames.append(score(part, by=list(by)).assign(level=level, forecast=self.method))
        table = pd.concat(frames, ignore_index=True)
        first = ["level", "forecast", *by]
        table = table[first + [c for c in table.columns if c not in first]]
        return table.sort_values(first, kind="stable").reset_index(drop=True)


def backtest_levels(cube: xr.Dataset, spec: ModelSpec, *, folds: RollingOrigin | None = None,
                    method: str = "mint_shrink", levels: Sequence[int] | None = None,
                    progress: Progress | bool | None = None, n_samples: int = 500, seed: int = 0,
                    bottom: BacktestResult | None = None, calibrate_levels: bool = True) -> LevelsResult:
    """Backtest ``spec`` at every admin level of ``cube`` and reconcile the forecasts.

    Parameters
    ----------
    cube : xarray.Dataset
        An admin2 (or finer) cube whose areas name their parents (``admin1_pcode``, ``admin0_pcode``).
    spec : ModelSpec
    folds : RollingOrigin, optional
        The same for every level (default: :class:`RollingOrigin`'s).
    method : {"mint_shrink", "wls_struct", "ols", "bottom_up"}
    levels : sequence of int, optional
        The admin levels (default: every level from 0 to the cube's).
    progress, n_samples, seed
        As in :func:`~forecast.backtest.backtest` and :func:`~forecast.backtest.reconcile`.
    bottom : BacktestResult, optional
        The cube's own backtest of ``spec`` with these folds, when it was run already (it is
        not run again).
    calibrate_levels : bool
        Shift each level's reconciled quantiles by the conformal shifts of that level's earlier
        reconciled errors (:func:`calibrate_by_level`); False: the sample paths' quantiles as
        they are.

    Raises
    ------
    ForecastError
        Areas without a parent (named), a spec that cannot run at some level, or levels whose
        forecasts do not cover the same origins and horizons.
    """
    hierarchy = hierarchy_of(cube, levels)  # areas without a parent: refused before anything runs
    finest = hierarchy.levels[-1]
    if bottom is not None and spec.name not in bottom.models:
        raise ForecastError(f"the backtest given has no model {spec.name!r} (it has {', '.join(bottom.models)})")
    base, by_level, notes = {}, {}, {}
    for level in hierarchy.levels:
        if level == finest and bottom is not None:
            result = bottom
        else:
            data = cube if level == finest else aggregate(cube, level)
            result = backtest(data, [spec], folds=folds, baselines=False, progress=progress)
        base[level] = result
        by_level[level] = result.forecasts[result.forecasts["model"] == spec.name]
        if spec.name in result.notes:
            notes[level] = list(result.notes[spec.name])
    table = reconcile(by_level, hierarchy, method, quantiles=spec.quantiles, n_samples=n_samples, seed=seed)
    if calibrate_levels:
        table = calibrate_by_level(table, spec.quantiles)
    table = _with_size_bins(table, by_level)
    return LevelsResult(forecasts=table, base=base, hierarchy=hierarchy, method=method, spec=spec, notes=notes)


def _with_size_bins(table: pd.DataFrame, by_level: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Each reconciled forecast's size bin: its series' bin at the origin in its level's own
    backtest (a tercile among that level's areas), so that coverage can be read per bin."""
    keys = ["level", "area", "origin", "horizon"]
    sizes = [f[keys[1:] + ["size_bin"]].assign(level=level) for level, f in by_level.items() if "size_bin" in f]
    if not sizes:
        return table
    bins = pd.concat(sizes, ignore_index=True).drop_duplicates(keys)
    return table.merge(bins[keys + ["size_bin"]], on=keys, how="left", validate="many_to_one")


def calibrate_by_level(forecasts: pd.DataFrame, quantiles, *, min_calibration: int = MIN_CALIBRATION) -> pd.DataFrame:
    """Shift each level's reconciled quantiles by the conformal shifts of that level's earlier errors.

    For every level, horizon and origin ``o``, the quantile ``tau`` moves by the ``tau``-quantile
    (:func:`~forecast.backtest.conformal_shifts`) of the scaled errors ``(actual - q_tau) / scale``
    of the same level and horizon whose target month is at or before ``o`` (outcomes known at the
    origin only), times the series' ``scale`` (1 without one). With fewer than ``min_calibration``
    such errors the quantiles stay as the sample paths gave them. Quantiles are sorted again and
    kept at 0 or above; ``point`` and ``mean`` are untouched, so they stay coherent (the shifted
    quantiles are not: quantiles never add up anyway).

    Parameters
    ----------
    forecasts : DataFrame
        :func:`~forecast.backtest.reconcile`'s table (``level, origin, horizon, time, actual``
        and the quantile columns; ``scale`` optional).
    quantiles : sequence of float
        The levels of its quantile columns.
    min_calibration : int
        Fewest earlier errors of a level and horizon that calibrate it.

    Returns
    -------
    DataFrame
        A copy with the shifted quantile columns, the paths' own in ``raw_q...`` and
        ``calibrated_by``: ``level`` (shifted) or ``none`` (too few earlier errors).
    """
    columns = [quantile_column(q) for q in quantiles]
    missing = [c for c in ["level", "origin", "horizon", "time", "actual", *columns] if c not in forecasts]
    if missing:
        raise ForecastError(f"the reconciled forecasts lack column(s) {missing}; pass reconcile()'s table")
    levels = np.asarray(quantiles, dtype=float)
    raw = np.column_stack([numeric_column(forecasts, c) for c in columns])
    actual = numeric_column(forecasts, "actual")
    scale = numeric_column(forecasts, "scale") if "scale" in forecasts else np.ones(len(forecasts))
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    error = (actual[:, None] - raw) / scale[:, None]
    known = np.isfinite(error).all(axis=1)
    origin, time = forecasts["origin"].to_numpy(), forecasts["time"].to_numpy()
    out, used = raw.copy(), np.full(len(forecasts), "none", dtype=object)
    for rows in forecasts.groupby(["level", "horizon"], sort=False).indices.values():
        for o in np.unique(origin[rows]):
            pool = rows[known[rows] & (time[rows] <= o)]  # outcomes known at the origin only
            if len(pool) < min_calibration:
                continue
            now = rows[origin[rows] == o]
            out[now] = raw[now] + conformal_shifts(error[pool], levels)[None, :] * scale[now, None]
            used[now] = "level"
    result = forecasts.copy()
    for j, column in enumerate(columns):
        result[column] = np.maximum(np.sort(out, axis=1)[:, j], 0.0)
        result[f"raw_{column}"] = raw[:, j]
    result["calibrated_by"] = used
    return result
