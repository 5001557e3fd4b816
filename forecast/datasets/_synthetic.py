"""A seeded synthetic DTM-style panel in the cube layout, and its DTM API-style export.

The generator is for tests, demos and benchmarks: it knows the truth behind every cell, is
fast at national scale (10,000 areas x 120 months in a few seconds) and is not real data.
"""

from __future__ import annotations

import math
from datetime import date
from numbers import Integral, Real

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    AREA_NAME,
    ARRIVALS,
    CONFLICT_EVENTS,
    CONFLICT_FATALITIES,
    DEPARTURES,
    FLOWS,
    GROUP_COLUMNS,
    IDP_STOCK,
    PARENT_PCODE,
    RAIN_ANOMALY,
    RAINFALL,
    RETURNS,
    TIME,
    admin_name,
    admin_pcode,
    observed_name,
)
from forecast.cube import FlowTable
from forecast.cube import with_flows as add_flows  # `with_flows` is make_panel's argument

REGION, ACCESS, SETTLEMENT = GROUP_COLUMNS
COUNTRY_PCODE, COUNTRY_NAME = "XY", "Synthetic Country"
DTM_FIELDS = (
    "admin0Name", "admin0Pcode", "admin1Name", "admin1Pcode", "admin2Name", "admin2Pcode",
    "numPresentIdpInd", "reportingDate", "yearReportingDate", "monthReportingDate",
    "roundNumber", "operation", "assessmentType",
)
_BURN_IN = 3                    # months simulated before `start` so lags exist at month 0
_SELF_SHARE = 0.4               # share of the displaced who stay in their own district


def make_panel(
    n_areas: int = 200,
    n_months: int = 96,
    *,
    start: str = "2016-01",
    seed: int = 0,
    n_regions: int | None = None,
    round_every: tuple[int, int] = (2, 3),
    gap_rate: float = 0.05,
    shock_rate: float = 0.02,
    with_flows: bool = True,
) -> xr.Dataset:
    """Build a seeded synthetic admin2 x month panel in the canonical cube layout.

    Areas ``XY0101``, ``XY0102``, ... lie on a square grid (rook neighbours) and nest in
    ``n_regions`` admin1 regions (contiguous blocks of the grid). Each month every area
    displaces a negative-binomial number of people whose mean combines a lognormal base
    level, a 12-month season, last month's conflict events, rainfall deficits of the last
    three months and occasional 2-4 month shocks (felt at half strength by neighbours). The
    displaced stay (40 %) or move to a neighbour, urban ones three times as attractive; those
    flows give ``arrivals`` (at the destination) and ``departures`` (from the origin).
    ``idp_stock`` adds arrivals and removes returns and onward movement; it is observed for
    every area in DTM round months only (rounds every ``round_every`` months), NaN between.

    Parameters
    ----------
    n_areas, n_months : number of admin2 areas and of months (both at least 1).
    start : first month, e.g. ``"2016-01"`` or ``"2016-01-01"``.
    seed : seed of ``numpy.random.default_rng``; the same arguments give the same panel.
    n_regions : admin1 regions, 1 to ``n_areas``; default ``max(1, round(sqrt(n_areas) / 2))``.
        P-code digits widen past 99 regions or 99 districts per region.
    round_every : smallest and largest spacing in months between DTM rounds.
    gap_rate : mean share of ``arrivals`` / ``departures`` cells not assessed (NaN), in [0, 1);
        hard-to-reach areas are missed twice as often as the others.
    shock_rate : monthly chance that a shock starts in an area, in [0, 1).
    with_flows : add ``flows``, one record per route and month into an assessed destination
        (about 5 per area and month: stays and moves to the 4 neighbours), stored sparsely as
        :func:`forecast.cube.flow_table` reads them.

    Returns
    -------
    xarray.Dataset
        Counts ``arrivals``, ``departures``, ``idp_stock``, ``returns``, ``conflict_events``,
        ``conflict_fatalities``; ``rainfall`` (mm) and ``rain_anomaly`` (standard normal);
        each float64 on (area, time) with a boolean ``<name>_observed``. Flows into an assessed
        destination are recorded from itself and its neighbours (0 included) and not at all
        when it was not assessed, so they sum over origin to ``arrivals``; reported
        ``departures`` count flows to assessed destinations. ``returns``, conflict and
        rainfall are observed everywhere.

    Examples
    --------
    >>> panel = make_panel(30, 24, seed=1)
    >>> dict(panel.sizes)["area"], dict(panel.sizes)["time"], str(panel["area"].values[0])
    (30, 24, 'XY0101')
    """
    n, m, seed, n_regions = _check_shape(n_areas, n_months, seed, n_regions)
    lo, hi = _check_round_every(round_every)
    gap_rate = _check_rate("gap_rate", gap_rate)
    shock_rate = _check_rate("shock_rate", shock_rate)
    first = _parse_start(start)
    if with_flows not in (True, False):
        raise ValueError(f"with_flows must be True or False; got {with_flows!r}")
    keep_flows = bool(with_flows)

    rng = np.random.default_rng(seed)
    coords, neighbours, region, hard, urban = _geography(n, n_regions, rng)
    time = pd.date_range(first, periods=m, freq="MS").to_numpy().astype("datetime64[ns]")
    in_round = np.isin(np.arange(m), _round_months(m, lo, hi, rng))
    sim = _simulate(neighbours, region, hard, urban, m, first.month - 1, gap_rate, shock_rate,
                    keep_flows, rng)
    sim[IDP_STOCK] = np.where(in_round, sim.pop("stock"), np.nan)

    panel = xr.Dataset(coords={AREA: coords.pop(AREA), TIME: time,
                               **{k: (AREA, v) for k, v in coords.items()}})
    for name in (ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, CONFLICT_EVENTS, CONFLICT_FATALITIES,
                 RAINFALL, RAIN_ANOMALY):
        panel[name] = ((AREA, TIME), sim[name])
        panel[observed_name(name)] = ((AREA, TIME), ~np.isnan(sim[name]))
    if keep_flows:
        o, d, t, people = sim[FLOWS]
        panel = add_flows(panel, FlowTable.from_positions(o, d, t, people, panel[AREA].values, time))
    panel.attrs.update(area_key="pcode", admin_level=2, sensitivity="low", source="synthetic",
                       seed=seed)
    return panel


def dtm_export(panel: xr.Dataset) -> pd.DataFrame:
    """The panel's observed ``idp_stock`` cells as a DTM API-style table (one row per area-round).

    Rounds are the months in which any area's stock was observed, numbered 1..R in time order
    and shared by all areas. ``reportingDate`` is the 15th of the month (ISO); ``operation`` is
    ``"Synthetic"`` and ``assessmentType`` ``"BA"`` (baseline assessment).

    Parameters
    ----------
    panel : a cube with ``idp_stock`` on (area, time) and admin0/admin1 coordinates, such as
        :func:`make_panel` builds.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DTM_FIELDS`, rows ordered by area then round.

    Examples
    --------
    >>> table = dtm_export(make_panel(4, 6, seed=0))
    >>> table[["admin2Pcode", "roundNumber", "operation"]].head(2)
      admin2Pcode  roundNumber  operation
    0      XY0101            1  Synthetic
    1      XY0101            2  Synthetic
    """
    needed = [AREA_NAME, admin_pcode(0), admin_name(0), admin_pcode(1), admin_name(1)]
    missing = [c for c in needed if c not in panel.coords]
    if IDP_STOCK not in panel.data_vars:
        missing.insert(0, IDP_STOCK)
    if missing:
        raise ValueError(f"dtm_export needs '{IDP_STOCK}' on (area, time) and area coordinates "
                         f"{needed}; missing {missing} (make_panel builds all of them)")
    stock = panel[IDP_STOCK].transpose(AREA, TIME).to_numpy()
    seen = ~np.isnan(stock)
    values = stock[seen]
    if (values < 0).any() or (values != np.round(values)).any():
        raise ValueError(f"'{IDP_STOCK}' must hold non-negative whole numbers of people; got "
                         f"{values[(values < 0) | (values != np.round(values))][:3].tolist()}")
    round_cols = np.flatnonzero(seen.any(axis=0))
    round_number = np.zeros(stock.shape[1], dtype="int64")
    round_number[round_cols] = np.arange(1, len(round_cols) + 1)
    a, t = np.nonzero(seen)                     # area-major, time ascending within an area
    months = pd.DatetimeIndex(panel[TIME].to_numpy())[t]
    area = {name: panel[name].to_numpy().astype(str)[a] for name in [AREA, *needed]}
    return pd.DataFrame({
        "admin0Name": area[admin_name(0)], "admin0Pcode": area[admin_pcode(0)],
        "admin1Name": area[admin_name(1)], "admin1Pcode": area[admin_pcode(1)],
        "admin2Name": area[AREA_NAME], "admin2Pcode": area[AREA],
        "numPresentIdpInd": values.astype("int64"),
        "reportingDate": np.asarray(months.strftime("%Y-%m-15"), dtype=str),
        "yearReportingDate": months.year.to_numpy().astype("int64"),
        "monthReportingDate": months.month.to_numpy().astype("int64"),
        "roundNumber": round_number[t],
        "operation": "Synthetic", "assessmentType": "BA",
    }, columns=list(DTM_FIELDS))


def _check_shape(n_areas: object, n_months: object, seed: object, n_regions: object) -> tuple[int, int, int, int]:
    """A synthetic panel's areas, months, seed and admin1 regions, checked (regions defaulted)."""
    n = _check_int("n_areas", n_areas, 1)
    m = _check_int("n_months", n_months, 1)
    seed = _check_int("seed", seed, 0)
    n_regions = max(1, round(math.sqrt(n) / 2)) if n_regions is None else n_regions
    n_regions = _check_int("n_regions", n_regions, 1)
    if n_regions > n:
        raise ValueError(f"n_regions must be at most n_areas ({n}); got {n_regions}")
    return n, m, seed, n_regions


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


def _check_round_every(value: object) -> tuple[int, int]:
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
          and 1 <= value[0] <= value[1])
    if not ok:
        raise ValueError("round_every must be two integers (shortest, longest) months between "
                         f"DTM rounds with 1 <= shortest <= longest, e.g. (2, 3); got {value!r}")
    return int(value[0]), int(value[1])


def _parse_start(start: object) -> pd.Timestamp:
    try:
        first = pd.Timestamp(start) if isinstance(start, (str, date, np.datetime64)) else None
    except ValueError:
        first = None
    if first is None or first is pd.NaT or first.tz is not None:
        raise ValueError(f"start must be a month such as '2016-01'; got {start!r}")
    if first != first.normalize() or first.day != 1:
        raise ValueError(f"start must name a month ('2016-01') or its first day; got {start!r}")
    return first


def _geography(n: int, n_regions: int, rng: np.random.Generator):
    """Codes and names of areas on a grid, nested in contiguous regions, and rook neighbours."""
    i = np.arange(n)
    width = math.ceil(math.sqrt(n))
    row, col = divmod(i, width)
    neighbours = np.column_stack([
        np.where(row > 0, i - width, -1), np.where(i + width < n, i + width, -1),
        np.where(col > 0, i - 1, -1), np.where((col < width - 1) & (i + 1 < n), i + 1, -1),
    ])
    region = i * n_regions // n
    firsts = np.searchsorted(region, np.arange(n_regions))
    district = i - firsts[region] + 1
    w1, w2 = max(2, len(str(n_regions))), max(2, len(str(int(np.bincount(region).max()))))
    digits = [f"{r + 1:0{w1}d}{d:0{w2}d}" for r, d in zip(region.tolist(), district.tolist())]
    adm1 = np.asarray([f"{COUNTRY_PCODE}{r + 1:0{w1}d}" for r in range(n_regions)])[region]
    adm1_name = np.asarray([f"Region {r + 1:0{w1}d}" for r in range(n_regions)])[region]
    hard, urban = rng.random(n) < 0.25, rng.random(n) < 0.2
    coords = {
        AREA: np.asarray([COUNTRY_PCODE + x for x in digits]),
        AREA_NAME: np.asarray(["District " + x for x in digits]),
        ADMIN_LEVEL: np.full(n, 2, dtype="int64"), PARENT_PCODE: adm1,
        admin_pcode(0): np.full(n, COUNTRY_PCODE), admin_name(0): np.full(n, COUNTRY_NAME),
        admin_pcode(1): adm1, admin_name(1): adm1_name, REGION: adm1_name,
        ACCESS: np.where(hard, "hard_to_reach", "accessible"),
        SETTLEMENT: np.where(urban, "urban", "rural"),
    }
    return coords, neighbours, region, hard, urban


def _round_months(m: int, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """Month indices of DTM rounds: the first within the first ``lo`` months, then lo..hi apart."""
    months = [int(rng.integers(0, min(lo, m)))]
    while True:
        nxt = months[-1] + int(rng.integers(lo, hi + 1))
        if nxt >= m:
            return np.asarray(months)
        months.append(nxt)


def _drivers(region: np.ndarray, hard: np.ndarray, moy: np.ndarray, rng: np.random.Generator) -> dict:
    """Rain anomaly (AR(1), regionally correlated, standard normal), rainfall and conflict."""
    n, total, n_reg = len(region), len(moy), int(region.max()) + 1
    z, latent = np.empty((n, total)), np.empty((n, total))
    zt, lt = rng.standard_normal(n), rng.normal(0.0, 0.67, n)
    for s in range(total):
        zt = 0.6 * zt + 0.8 * (0.6 * rng.standard_normal(n_reg)[region] + 0.8 * rng.standard_normal(n))
        lt = 0.8 * lt + rng.normal(0.0, 0.4, n)
        z[:, s], latent[:, s] = zt, lt
    mean_events = rng.lognormal(np.log(1.5) + 0.7 * hard, 0.8)[:, None] * np.exp(latent)
    events = rng.negative_binomial(2, 2.0 / (2.0 + mean_events)).astype("float64")
    fatalities = rng.poisson(events * rng.gamma(2.0, 0.75, events.shape)).astype("float64")
    clim, peak = rng.lognormal(np.log(40.0), 0.4, n), rng.integers(0, 12, n_reg)[region]
    season = np.maximum(0.05, 1 + 0.9 * np.cos(2 * np.pi * (moy - peak[:, None]) / 12))
    rainfall = np.round(clim[:, None] * season * np.exp(0.5 * z - 0.125), 1)
    return {RAIN_ANOMALY: z, CONFLICT_EVENTS: events, CONFLICT_FATALITIES: fatalities, RAINFALL: rainfall}


def _simulate(neighbours, region, hard, urban, m, month0, gap_rate, shock_rate, keep_flows, rng):
    """Month-by-month displacement, vectorised over areas; returns (area, month) arrays."""
    n, n_reg = len(region), int(region.max()) + 1
    has, dest, shares = _routes(neighbours, urban)
    moy = (month0 + np.arange(-_BURN_IN, m)) % 12
    drivers = _drivers(region, hard, moy, rng)
    z, events = drivers[RAIN_ANOMALY], drivers[CONFLICT_EVENTS]
    base = rng.lognormal(np.log(40.0), 1.0, n)
    season = rng.uniform(0.1, 0.4, n)[:, None] * np.cos(
        2 * np.pi * (moy[None, :] - rng.integers(0, 12, n_reg)[region][:, None]) / 12)
    miss = np.where(hard, 2.0, 1.0)
    p_gap = np.minimum(gap_rate * miss / miss.mean(), 1.0)[:, None]
    arr_seen, dep_seen = rng.random((n, m)) >= p_gap, rng.random((n, m)) >= p_gap
    out = {k: np.empty((n, m)) for k in (ARRIVALS, DEPARTURES, RETURNS, "stock")}
    flows = np.zeros((n, 5, m)) if keep_flows else None
    shock_left, shock_size = np.zeros(n, dtype="int64"), np.zeros(n)
    stock = np.round(base * rng.uniform(25, 60, n)).astype("int64")  # near equilibrium
    for t in range(m):
        s = t + _BURN_IN                                # column in the burn-in arrays
        start = (shock_left == 0) & (rng.random(n) < shock_rate)
        shock_left = np.where(start, rng.integers(2, 5, n), shock_left)
        shock_size = np.where(start, rng.normal(1.5, 0.4, n), shock_size)
        active = np.where(shock_left > 0, shock_size, 0.0)
        spill = 0.5 * np.where(neighbours >= 0, active[neighbours], 0.0).max(axis=1)
        shock_left = np.maximum(shock_left - 1, 0)
        deficit = np.maximum(-z[:, s - _BURN_IN:s], 0.0).mean(axis=1)
        mean = base * np.exp(season[:, s] + 0.25 * np.log1p(events[:, s - 1]) + 0.6 * deficit
                             + np.maximum(active, spill))
        moves = rng.multinomial(rng.negative_binomial(5, 5.0 / (5.0 + mean)), shares)  # (origin, 5)
        arrivals = np.bincount(dest.ravel(), weights=moves.ravel(), minlength=n)
        reported = has & arr_seen[dest, t]              # flows seen at assessed destinations
        returns = rng.binomial(stock, 0.05 * np.exp(-0.2 * np.log1p(events[:, s])))
        onward = np.minimum(rng.binomial(moves.sum(axis=1), 0.3), stock - returns)
        stock = stock - returns - onward + arrivals.astype("int64")
        out[ARRIVALS][:, t] = np.where(arr_seen[:, t], arrivals, np.nan)
        out[DEPARTURES][:, t] = np.where(dep_seen[:, t] & reported.any(axis=1),
                                         (moves * reported).sum(axis=1), np.nan)
        out[RETURNS][:, t], out["stock"][:, t] = returns, stock
        if flows is not None:
            flows[:, :, t] = moves
    out.update({k: v[:, _BURN_IN:] for k, v in drivers.items()})   # drop the burn-in months
    if flows is not None:
        out[FLOWS] = _flow_records(flows, has, dest, arr_seen)
    return out


def _routes(neighbours: np.ndarray, urban: np.ndarray):
    """Destinations (self, then 4 neighbours; self stands in for a missing one) and shares."""
    n = len(neighbours)
    has = np.column_stack([np.ones(n, bool), neighbours >= 0])
    dest = np.where(has, np.column_stack([np.arange(n), neighbours]), np.arange(n)[:, None])
    pull = np.where(urban, 3.0, 1.0)[dest] * has
    pull[:, 0] = 0.0
    moved = pull.sum(axis=1, keepdims=True)
    shares = (1 - _SELF_SHARE) * pull / np.where(moved > 0, moved, 1.0)
    shares[:, 0] = 1.0 - shares[:, 1:].sum(axis=1)     # all stay where there is no neighbour
    return has, dest, shares


def _flow_records(moves: np.ndarray, has: np.ndarray, dest: np.ndarray, arr_seen: np.ndarray):
    """Positions (origin, destination, month) and people of the routes into assessed destinations."""
    n, k, m = moves.shape
    origin = np.broadcast_to(np.arange(n)[:, None, None], moves.shape)
    to = np.broadcast_to(dest[:, :, None], moves.shape)
    month = np.broadcast_to(np.arange(m)[None, None, :], moves.shape)
    keep = has[:, :, None] & arr_seen[to, month]
    return origin[keep], to[keep], month[keep], moves[keep]


__all__ = ["make_panel", "dtm_export", "DTM_FIELDS"]
