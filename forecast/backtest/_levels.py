"""One model backtested at every admin level and reconciled: districts that add up to regions
and to the country.

Planners read totals (a region's figure for a response plan, the national one for an appeal).
:func:`backtest_levels` runs the same spec on the cube and on its sums to each coarser level
(:func:`forecast.cube.aggregate`), with the same folds, and reconciles the forecasts of every
origin and horizon (:func:`~forecast.backtest.reconcile`): the means are coherent exactly, the
quantiles come from coherent sample paths. The scores are per level, of the base forecasts and of
the reconciled ones, so that a reconciliation is kept only where it earns its place.

Example::

    from forecast.backtest import RollingOrigin, backtest_levels
    levels = backtest_levels(cube, spec, folds=RollingOrigin(n_origins=12, calibration_origins=12))
    levels.scores()                      # level x horizon x forecast (base, reconciled): MASE, coverage, ...
    levels.forecasts.query("level == 1") # the regions' reconciled forecasts
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

from forecast.backtest._folds import RollingOrigin
from forecast.backtest._metrics import score
from forecast.backtest._progress import Progress
from forecast.backtest._reconcile import Hierarchy, hierarchy_of, reconcile
from forecast.backtest._run import BacktestResult, backtest
from forecast.cube import aggregate
from forecast.errors import ForecastError
from forecast.models import ModelSpec

__all__ = ["LevelsResult", "backtest_levels"]

#: What a reconciled forecast table's level is called, coarse to fine.
LEVEL_NAMES = {0: "national", 1: "admin1", 2: "admin2", 3: "admin3"}


@dataclass
class LevelsResult:
    """The base backtest of each level and the reconciled forecasts of every level.

    Attributes
    ----------
    forecasts : DataFrame
        :func:`~forecast.backtest.reconcile`'s table: one row per series (``level``, ``area``),
        origin and horizon, with ``base_point`` and the reconciled ``point`` and quantiles.
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
        :func:`~forecast.backtest.score` (``mase``, ``crps``, ``coverage80``, ``level_ratio``, ...)."""
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
                    bottom: BacktestResult | None = None) -> LevelsResult:
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
    return LevelsResult(forecasts=table, base=base, hierarchy=hierarchy, method=method, spec=spec, notes=notes)
