"""One plain-language reason per flagged district: its largest drivers, each said with a fact from the data.

A forecast's contributions by driver family (``TrainedModel.explain``) say which drivers push
it up; a reader needs what happened. For the one or two largest positive drivers this module
looks in the cube for a fact that speaks for the driver and is true there (arrivals rising
for months, rains below their usual for those months in the district or where its arrivals
come from, conflict incidents up, prices up or terms of trade down, departures up where people
come from, arrivals up next door) and says it. A driver with no such fact is named as the model's reading, never
dressed up as a fact. A model without contributions gets the facts alone, said as such.

Numbers of people are never quoted (a reason is published beside small cells): trends are
said in months and percentages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from forecast._names import AREA, PARENT_PCODE, TIME, observed_name
from forecast.cube import flow_table
from forecast.features import column_drivers, neighbours_from_cube, variable_driver

__all__ = ["area_reasons", "reason_for", "NO_BREAKDOWN"]

NO_BREAKDOWN = "no driver breakdown for this model"

# the driver families by what makes them, so that a renamed family keeps its phrasing
_ARRIVALS, _SEASON, _NEIGHBOURS = (column_drivers({f: ["c"]})["c"] for f in ("lags", "season", "admin"))
_DROUGHT, _CONFLICT, _MARKETS, _INFLOWS = map(variable_driver, ("rainfall", "conflict", "price", "departures"))

#: Somalia's rainy seasons (months), named as people there name them.
SEASONS = {"Gu": (4, 5, 6), "Deyr": (10, 11, 12)}
#: A season with less than this share of its usual rain is said to have failed.
FAILED = 0.6
#: Smallest change called a rise or a fall (share of the earlier value).
MIN_RISE = 0.10
#: Covariates that hurt when they fall (what a household earns or sells), not when they rise.
_HARMFUL_DOWN = re.compile(r"tot_|terms_of_trade|wage|goat|livestock|cattle|camel|sheep")


def area_reasons(explanation: pd.DataFrame | None, cube: xr.Dataset, areas: Sequence[str], *,
                 target: str = "arrivals", horizons: Sequence[int] | None = None, top: int = 2) -> dict[str, str]:
    """A reason for each of ``areas``.

    Parameters
    ----------
    explanation : DataFrame or None
        ``TrainedModel.explain(cube)``: per area and horizon ``base, scale`` and one column per
        driver family. None for a model without contributions: facts alone.
    cube : xarray.Dataset
        The data the forecast was made from; its last month is the origin.
    areas : sequence of str
    target : str
    horizons : sequence of int, optional
        The horizons whose contributions count (averaged); default every one.
    top : int
        Positive drivers named at most.

    Returns
    -------
    dict of str to str
    """
    facts = _Facts(cube, target)
    drivers = _mean_drivers(explanation, horizons)
    return {str(a): reason_for(None if drivers is None else drivers.get(str(a), {}), facts.of(str(a)), top=top)
            for a in areas}


def reason_for(contributions: Mapping[str, float] | None, facts: Mapping[str, str], *, top: int = 2) -> str:
    """The reason from one forecast's driver contributions and the facts checked for its area.

    Parameters
    ----------
    contributions : mapping of driver to contribution, or None
        None: the model has no contributions; an empty mapping: the area's forecast has none
        (it fell back to a simple rule).
    facts : mapping of driver to phrase
        What the data show for each driver (:class:`_Facts`), only what is true there.
    top : int

    Examples
    --------
    >>> reason_for({"conflict": 0.4, "seasonality": -0.1}, {"conflict": "conflict incidents up in the last 3 months"})
    'conflict incidents up in the last 3 months'
    """
    if contributions is None:
        said = [facts[d] for d in (_ARRIVALS, _CONFLICT, _DROUGHT) if d in facts]
        return "; ".join([NO_BREAKDOWN, *said[:top]])
    up = sorted(((v, d) for d, v in contributions.items() if np.isfinite(v) and v > 0), reverse=True)[:top]
    if not up:
        return "no driver pushes this forecast up; it rests on the model's usual level"
    return "; ".join(facts.get(d) or f"the model weighs {d} upward (no change in the data to name)" for _, d in up)


def _mean_drivers(explanation: pd.DataFrame | None, horizons) -> dict[str, dict[str, float]] | None:
    if explanation is None:
        return None
    rows = explanation if horizons is None else explanation[explanation["horizon"].isin(list(horizons))]
    columns = [c for c in rows.columns if c not in (AREA, "origin", "horizon", TIME, "base", "scale", "model")]
    means = rows.groupby(AREA)[columns].mean()
    return {str(a): {d: float(v) for d, v in r.items()} for a, r in means.iterrows()}


class _Facts:
    """What the cube shows for each driver of an area, up to its last month: true statements only."""

    def __init__(self, cube: xr.Dataset, target: str):
        self.cube, self.target = cube, target
        self.areas = [str(a) for a in cube[AREA].values]
        self.index = {a: i for i, a in enumerate(self.areas)}
        self.time = pd.DatetimeIndex(cube[TIME].values)
        self.grids = {v: _grid(cube, v) for v, da in cube.data_vars.items()
                      if da.dims == (AREA, TIME) and not v.endswith("_observed")}
        self.somali = "admin0_pcode" in cube.coords and set(map(str, cube["admin0_pcode"].values)) == {"SO"}
        self.shares = _origin_shares(cube, self.areas)
        neighbours = neighbours_from_cube(cube)
        parents = cube[PARENT_PCODE].values.astype(str) if PARENT_PCODE in cube.coords else None
        if neighbours:  # bordering districts; without them, the region's other districts
            self.nearby = "neighbouring districts"
            self.next_door = {a: [self.index[n] for n in neighbours.get(a, ()) if n in self.index] for a in self.areas}
        else:
            self.nearby = "the other districts of its region"
            self.next_door = {a: [j for j, p in enumerate(parents) if p == parents[i] and j != i]
                              if parents is not None else [] for a, i in self.index.items()}

    def of(self, area: str) -> dict[str, str]:
        i = self.index.get(area)
        if i is None:
            return {}
        found = {_ARRIVALS: self._arrivals(i), _SEASON: self._season(i), _DROUGHT: self._rain(i),
                 _CONFLICT: self._change(i, _CONFLICT), _MARKETS: self._change(i, _MARKETS),
                 _INFLOWS: self._origins_departures(i), _NEIGHBOURS: self._next_door(i)}
        return {d: phrase for d, phrase in found.items() if phrase}

    # --- one fact per driver ------------------------------------------------------------------

    def _arrivals(self, i: int) -> str | None:
        y = self.grids.get(self.target)
        if y is None:
            return None
        y, word = y[i], self.target.replace("_", " ")
        run = 0
        while run + 1 < len(y) and np.isfinite(y[-1 - run]) and np.isfinite(y[-2 - run]) and y[-1 - run] > y[-2 - run]:
            run += 1
        if run >= 2:
            return f"{word} rising {run} months in a row"
        now, before = _window(y, 3, 0), _window(y, 3, 3)
        if np.isfinite(now) and np.isfinite(before) and before > 0 and now >= before * (1 + MIN_RISE):
            return f"{word} {_up(now, before)} in the last 3 months against the 3 before"
        usual = _window(y, 12, 3)
        if np.isfinite(now) and np.isfinite(usual) and usual > 0 and now >= usual * (1 + MIN_RISE):
            return f"{word} of the last 3 months {_up(now, usual)} on the year before them"
        return None

    def _season(self, i: int) -> str | None:
        y = self.grids.get(self.target)
        if y is None or len(self.time) < 24:
            return None
        ahead = [(self.time[-1] + pd.DateOffset(months=k)).month for k in (1, 2, 3)]
        series = y[i]
        coming = _mean(series[np.isin(self.time.month.to_numpy(), ahead)])
        usual = _mean(series)
        if np.isfinite(coming) and np.isfinite(usual) and usual > 0 and coming >= usual * (1 + MIN_RISE):
            names = "-".join(pd.Timestamp(2000, m, 1).strftime("%b") for m in (ahead[0], ahead[-1]))
            word, ratio = self.target.replace("_", " "), coming / usual
            more = f"{ratio - 1:.0%} more {word} than" if ratio < 2 else f"{ratio:.0f} times the {word} of"
            return f"{names} brought {more} the average month in past years"
        return None

    def _rain(self, i: int) -> str | None:
        window, name = self._rain_window()
        rain = self.grids.get("rainfall")
        if rain is None:  # an anomaly alone (rainfall minus its usual): its sign is the fact
            anomaly = self.grids.get("rain_anomaly")
            below = None if anomaly is None else _mean(anomaly[i, window])
            return f"{name} below normal (rain anomaly below zero)" if below is not None and below < 0 else None
        here = _rain_ratio(rain[i], self.time, window)
        came = self._origins(i)
        there = np.nan if came is None else _rain_ratio(_weighted(came, rain), self.time, window)
        for ratio, where in ((there, " in the districts people come from"), (here, "")):
            if np.isfinite(ratio) and ratio < 1 - MIN_RISE:
                verb = "failed" if ratio < FAILED else "below normal"
                return f"{name} {verb}{where} ({1 - ratio:.0%} below the usual for those months)"
        return None

    def _rain_window(self) -> tuple[list[int], str]:
        """The last 3 months, or for Somalia the last Gu or Deyr season that ended within 6 months."""
        last = len(self.time) - 1
        if self.somali:
            for back in range(0, 6):
                t = last - back
                for season, months in SEASONS.items():
                    if t >= 2 and self.time[t].month == months[-1]:
                        return list(range(t - 2, t + 1)), f"{season} rains ({self.time[t]:%Y})"
        return list(range(max(0, last - 2), last + 1)), "rainfall of the last 3 months"

    def _change(self, i: int, driver: str) -> str | None:
        """The first of the driver's covariates that moved the harmful way over the last 3 months:
        up for conflict, prices and IPC phases; down for terms of trade, wages and livestock prices."""
        for name, grid in self.grids.items():
            if name == self.target or variable_driver(name) != driver:
                continue
            now, before = _window(grid[i], 3, 0), _window(grid[i], 3, 3)
            if not (np.isfinite(now) and np.isfinite(before)):
                continue
            if _HARMFUL_DOWN.search(name):
                if before > 0 and now < before * (1 - MIN_RISE):
                    return f"{name.replace('_', ' ')} down in the last 3 months against the 3 before"
            elif now > before * (1 + MIN_RISE) and now > 0:
                return f"{name.replace('_', ' ')} up in the last 3 months against the 3 before"
        return None

    def _origins(self, i: int) -> np.ndarray | None:
        """The other districts' shares of the area's arrivals in flows; None without any."""
        if self.shares is None:
            return None
        came = self.shares[[i]].toarray()[0]
        came[i] = 0.0
        return came if came.sum() > 0 else None

    def _origins_departures(self, i: int) -> str | None:
        departures, came = self.grids.get("departures"), self._origins(i)
        if came is None or departures is None:
            return None
        weighted = _weighted(came, departures)
        now, before = _window(weighted, 3, 0), _window(weighted, 3, 3)
        if np.isfinite(now) and before > 0 and now >= before * (1 + MIN_RISE):
            return f"departures {_up(now, before)} in the districts people come from"
        return None

    def _next_door(self, i: int) -> str | None:
        y = self.grids.get(self.target)
        others = self.next_door.get(self.areas[i], [])
        if y is None or not others:
            return None
        nearby = _weighted(np.ones(len(others)), y[others])
        now, before = _window(nearby, 3, 0), _window(nearby, 3, 3)
        if np.isfinite(now) and before > 0 and now >= before * (1 + MIN_RISE):
            return f"{self.target.replace('_', ' ')} {_up(now, before)} in {self.nearby}"
        return None


def _grid(cube: xr.Dataset, name: str) -> np.ndarray:
    values = cube[name].transpose(AREA, TIME).values.astype(float)
    mask = observed_name(name)
    if mask in cube:
        values = np.where(cube[mask].transpose(AREA, TIME).values.astype(bool), values, np.nan)
    return values


def _up(now: float, before: float) -> str:
    """``up 45%``, or ``up 12-fold`` from twice the earlier value on (percentages of small bases run away)."""
    ratio = now / before
    return f"up {ratio - 1:.0%}" if ratio < 2 else f"up {ratio:.0f}-fold"


def _mean(values: np.ndarray) -> float:
    seen = values[np.isfinite(values)]
    return float(seen.mean()) if len(seen) else np.nan


def _weighted(weights: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per month, the ``weights``-weighted mean of the rows of ``grid`` observed that month
    (NaN when none was): an unobserved value is left out, never read as 0."""
    seen = np.isfinite(grid)
    w = weights[:, None] * seen
    total = w.sum(axis=0)
    return np.divide((w * np.where(seen, grid, 0.0)).sum(axis=0), total,
                     out=np.full(grid.shape[1], np.nan), where=total > 0)


def _window(series: np.ndarray, length: int, skip: int) -> float:
    """Mean of ``length`` months ending ``skip`` months before the last; NaN when fewer than
    two of them were observed."""
    end = len(series) - skip
    part = series[max(0, end - length): end]
    seen = part[np.isfinite(part)]
    if len(part) < length or len(seen) < min(2, length):
        return np.nan
    return float(seen.mean())


def _rain_ratio(series: np.ndarray, time: pd.DatetimeIndex, window: list[int]) -> float:
    """Rain in the ``window`` months against the mean of the same calendar months in earlier years."""
    now = series[window]
    if not np.isfinite(now).all():
        return np.nan
    months = time.month.to_numpy()
    earlier = [series[t] for t in range(window[0]) if months[t] in set(months[window])]
    earlier = np.asarray([v for v in earlier if np.isfinite(v)])
    if len(earlier) < len(window):  # no full earlier year of those months
        return np.nan
    usual = earlier.mean() * len(window)
    return float(now.sum() / usual) if usual > 0 else np.nan


def _origin_shares(cube: xr.Dataset, areas: list[str]) -> sparse.csr_array | None:
    """share[d, o]: origin o's part of the arrivals at d recorded in flows over the last 12 months."""
    table = flow_table(cube, pd.Index(areas))
    if table is None:
        return None
    recent = table.time >= len(table.months) - 12
    n = len(areas)
    came = sparse.coo_array((table.value[recent], (table.destination[recent], table.origin[recent])),
                            shape=(n, n)).tocsr()  # routes over the months added up
    total = np.repeat(np.asarray(came.sum(axis=1)).ravel(), np.diff(came.indptr))  # per stored value
    came.data = np.divide(came.data, total, out=np.zeros_like(came.data), where=total > 0)
    return came
