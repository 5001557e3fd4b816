"""Shocks: how a scenario rewrites one covariate (``rainfall=-50%``, ``conflict_incidents=x2``,
``maize_price=+10``, ``rainfall=p10``), read from the command line and applied to a cube.

A percentile shock sets each month to the area's own percentile of the same calendar month in
the years BEFORE it: what a dry (p10) or wet (p90) month is there, never read from later data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, TIME
from forecast.errors import ForecastError

__all__ = ["Shock", "parse_shock", "apply_shock", "percentile_of_earlier_years", "SHOCK_FORMS", "MIN_YEARS"]

#: The ways to write a shock's change, for messages and help texts.
SHOCK_FORMS = ("-50% or +20% (relative change), x2 or 0.5x (multiply), +10 or -10 (add an amount), p10 (the "
               "area's 10th percentile of the same calendar month in earlier years)")
#: Earlier years a percentile shock needs for each area and month.
MIN_YEARS = 5
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_FORMS = (
    ("relative", re.compile(rf"^([+-]){_NUMBER}%$")),
    ("multiply", re.compile(rf"^[x*]{_NUMBER}$")),
    ("multiply", re.compile(rf"^{_NUMBER}x$")),
    ("add", re.compile(rf"^([+-]){_NUMBER}$")),
    ("percentile", re.compile(rf"^p{_NUMBER}$")),
)


@dataclass(frozen=True)
class Shock:
    """One rewrite of a covariate: ``variable`` changed by ``value`` in the way ``kind`` says.

    ``relative``: by ``value`` percent (-50: halved); ``multiply``: times ``value``; ``add``:
    plus ``value`` in the variable's own unit; ``percentile``: set to the area's ``value``-th
    percentile of the same calendar month in the years before (``rainfall=p10``: a season as
    dry as one year in ten there, whatever this year was).
    """

    variable: str
    kind: Literal["relative", "multiply", "add", "percentile"]
    value: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The shocked values (a missing value stays missing); a percentile shock needs the
        history (:func:`percentile_of_earlier_years`)."""
        if self.kind == "percentile":
            raise ForecastError(f"{self}: a percentile shock is computed from each area's earlier years, "
                                "not from the values alone; use run_scenario")
        if self.kind == "relative":
            return values * (1.0 + self.value / 100.0)
        if self.kind == "multiply":
            return values * self.value
        return values + self.value

    @property
    def change(self) -> str:
        """The change as written on the command line: ``-50%``, ``x2``, ``+10``."""
        return {"relative": f"{self.value:+g}%", "multiply": f"x{self.value:g}", "add": f"{self.value:+g}",
                "percentile": f"p{self.value:g}"}[self.kind]

    @property
    def label(self) -> str:
        """A file-name-safe label: ``rainfall-50pct``, ``conflict_incidents_x2``, ``price+10``."""
        return self.variable + {"relative": f"{self.value:+g}pct", "multiply": f"_x{self.value:g}",
                                "percentile": f"_p{self.value:g}",
                                "add": f"{self.value:+g}"}[self.kind]

    def __str__(self) -> str:
        return f"{self.variable}={self.change}"


def parse_shock(text: str | Shock) -> Shock:
    """Read ``VARIABLE=CHANGE``: ``rainfall=-50%``, ``conflict_incidents=x2``, ``price=+10``.

    Raises
    ------
    ForecastError
        The text is not one of the accepted forms (the message names it and lists them), or it
        changes nothing (``x1``, ``+0``, ``+0%``).

    Examples
    --------
    >>> parse_shock("rainfall=-50%")
    Shock(variable='rainfall', kind='relative', value=-50.0)
    >>> parse_shock("conflict_incidents=x2").label
    'conflict_incidents_x2'
    >>> parse_shock("rainfall=p10")
    Shock(variable='rainfall', kind='percentile', value=10.0)
    """
    if isinstance(text, Shock):
        return text
    found = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$", str(text))
    for kind, form in _FORMS if found else ():
        match = form.match(found.group(2).lower())
        if match is None:
            continue
        sign = -1.0 if match.group(1) == "-" else 1.0
        value = sign * float(match.group(match.lastindex)) if kind not in ("multiply", "percentile") \
            else float(match.group(1))
        if kind == "percentile" and not 0 <= value <= 100:
            raise ForecastError(f"the shock {text!r}: a percentile is between p0 and p100")
        shock = Shock(found.group(1), kind, value)
        if kind == "percentile":
            return shock
        if (kind == "multiply" and value == 1.0) or (kind != "multiply" and value == 0.0):
            raise ForecastError(f"the shock {text!r} changes nothing; write a change such as {SHOCK_FORMS}")
        return shock
    raise ForecastError(f"cannot read the shock {text!r}: write VARIABLE=CHANGE, where CHANGE is {SHOCK_FORMS}; "
                        "e.g. rainfall=-50%, conflict_incidents=x2, maize_price=+10")


def apply_shock(cube: xr.Dataset, shock: Shock, a_idx: np.ndarray, t_idx: np.ndarray) -> tuple[xr.Dataset, int]:
    """``cube`` with ``shock`` applied over the areas and months; how many values were clipped at 0.

    A variable that is never negative in the cube (counts, prices, rainfall) stays so: a shock
    that would push a value below 0 sets it to 0. One with negative values (an anomaly) is not clipped.
    """
    da, block = cube[shock.variable], np.ix_(a_idx, t_idx)
    values = da.transpose(AREA, TIME).values.astype(float)
    if shock.kind == "percentile":
        new = percentile_of_earlier_years(values, pd.DatetimeIndex(cube[TIME].values), a_idx, t_idx, shock.value)
        if not np.isfinite(new).any():
            raise ForecastError(f"{shock}: no area has {MIN_YEARS} earlier years of {shock.variable} in the same "
                                "calendar months to take a percentile of")
        new = np.where(np.isfinite(new), new, values[block])  # an area without the history keeps its values
        values[block] = new
        return cube.assign({shock.variable: da.transpose(AREA, TIME).copy(data=values).transpose(*da.dims)}), 0
    if not np.isfinite(values[block]).any():
        raise ForecastError(f"{shock.variable} has no observed value in the chosen areas and months: "
                            "there is nothing to change")
    new = shock.apply(values[block])
    below = new < 0 if not (values[np.isfinite(values)] < 0).any() else np.zeros(new.shape, bool)
    new[below] = 0.0
    values[block] = new
    return cube.assign({shock.variable: da.transpose(AREA, TIME).copy(data=values).transpose(*da.dims)}), int(below.sum())


def percentile_of_earlier_years(values: np.ndarray, time: pd.DatetimeIndex, a_idx: np.ndarray, t_idx: np.ndarray,
                                q: float) -> np.ndarray:
    """Per area of ``a_idx`` and month of ``t_idx``: the ``q``-th percentile of the area's values in
    the same calendar month of the years before that month (NaN with fewer than :data:`MIN_YEARS`).

    ``values`` is (area, time). Only earlier years count, so the percentile is what the area's
    own past says a dry (p10) or a wet (p90) month is, never a value from after the month.
    """
    out = np.full((len(a_idx), len(t_idx)), np.nan)
    months = time.month.to_numpy()
    for j, t in enumerate(t_idx):
        earlier = np.flatnonzero((months == months[t]) & (np.arange(len(time)) < t))
        history = values[np.ix_(a_idx, earlier)]
        enough = np.isfinite(history).sum(axis=1) >= MIN_YEARS
        if enough.any():
            out[enough, j] = np.nanpercentile(history[enough], q, axis=1)
    return out
