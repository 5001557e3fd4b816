"""The target panel every forecaster reads, and the forecast every forecaster returns.

A :class:`Panel` is one target variable on the ``(area, time)`` grid with its covariates, as
NumPy arrays. Backtests hand each per-series forecaster ``panel.upto(origin)``: a panel that
simply has no columns after the origin, so that a model cannot look at the future even by
mistake. Global models read the feature matrix instead (see :mod:`forecast.features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, TIME, observed_name
from forecast.errors import ForecastError

__all__ = ["Panel", "Forecast", "MISSING_TARGET"]

#: How an unobserved target cell is read: ``skip`` (not observed: neither trained on nor
#: scored; DTM rounds) or ``zero`` (an event log such as flow monitoring, where an area-month
#: with no record within the monitoring period means no arrivals).
MISSING_TARGET = ("skip", "zero")


@dataclass(frozen=True)
class Panel:
    """One target on the area × month grid, with covariates.

    Attributes
    ----------
    y : ndarray, shape (n_areas, n_times)
        The target; NaN where it was not observed (after ``missing_target`` is applied).
    areas : pandas.Index
        Area keys (P-codes), in the order of the rows of ``y``.
    time : pandas.DatetimeIndex
        Month starts, in the order of the columns of ``y``.
    exog : dict of str to ndarray
        Covariates on the same grid, NaN where unobserved.
    target : str
        The cube variable ``y`` came from.
    """

    y: np.ndarray
    areas: pd.Index
    time: pd.DatetimeIndex
    exog: dict[str, np.ndarray] = field(default_factory=dict)
    target: str = "arrivals"

    @classmethod
    def from_cube(
        cls,
        cube: xr.Dataset,
        target: str,
        *,
        exog: tuple[str, ...] = (),
        missing_target: str = "skip",
    ) -> Panel:
        """Take ``target`` (and covariates ``exog``) out of a cube.

        Parameters
        ----------
        cube : xarray.Dataset
            A cube from :func:`forecast.ingest` or :func:`forecast.load_cube`.
        target : str
            A variable with dims ``(area, time)``, e.g. ``arrivals`` or ``idp_stock``.
        exog : tuple of str
            Covariates to carry; those the cube lacks are left out.
        missing_target : {"skip", "zero"}
            ``zero`` reads an unobserved cell from the first month the data set observed anything
            onwards as 0 (event logs); ``skip`` leaves it missing (DTM rounds). The rule looks
            only backwards, so a backtest origin sees the same panel with or without later data.
        """
        if target not in cube.data_vars:
            known = [v for v, da in cube.data_vars.items() if da.dims == (AREA, TIME)
                     and not v.endswith("_observed")]
            raise ForecastError(f"the cube has no variable {target!r}; it has {', '.join(known)}")
        if missing_target not in MISSING_TARGET:
            raise ForecastError(f"missing_target must be one of {MISSING_TARGET}, got {missing_target!r}")
        y = cube[target].transpose(AREA, TIME).values.astype(float)
        if missing_target == "zero":
            y = _zero_fill_from_start(y)
        extra = {name: cube[name].transpose(AREA, TIME).values.astype(float)
                 for name in exog if name in cube.data_vars}
        return cls(y=y, areas=pd.Index(cube[AREA].values.astype(str), name=AREA),
                   time=pd.DatetimeIndex(cube[TIME].values, name=TIME), exog=extra, target=target)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape

    def upto(self, origin: int) -> Panel:
        """The panel with nothing after time index ``origin`` (inclusive bound)."""
        end = origin + 1
        return Panel(y=self.y[:, :end], areas=self.areas, time=self.time[:end],
                     exog={k: v[:, :end] for k, v in self.exog.items()}, target=self.target)


def _zero_fill_from_start(y: np.ndarray) -> np.ndarray:
    months = np.flatnonzero((~np.isnan(y)).any(axis=0))
    if months.size == 0:
        return y
    out = y.copy()
    span = slice(months[0], None)
    block = out[:, span]
    block[np.isnan(block)] = 0.0
    return out


@dataclass(frozen=True)
class Forecast:
    """What a forecaster returns at one origin.

    Attributes
    ----------
    point : ndarray, shape (n_areas, n_horizons)
        The point forecast (the mean for count objectives).
    quantiles : ndarray, shape (n_areas, n_horizons, n_quantiles), or None
        Raw quantiles when the model has its own; the backtest calibrates them (or builds
        them from residuals when None).
    """

    point: np.ndarray
    quantiles: np.ndarray | None = None


def observed_mask(cube: xr.Dataset, variable: str) -> np.ndarray:
    """Where ``variable`` was observed, as an (area, time) boolean array."""
    present = ~np.isnan(cube[variable].transpose(AREA, TIME).values.astype(float))
    name = observed_name(variable)
    if name in cube:
        return cube[name].transpose(AREA, TIME).values.astype(bool) & present
    return present
