"""A seeded synthetic DTM-like IDP stock panel: irregular rounds, skipped areas, new areas, and
the monthly flows that explain the stock (for tests of stock forecasts and of stock-flow checks).

Not real data: it knows the truth behind every cell (``stock_t = stock_{t-1} + arrivals -
departures - returns`` holds exactly wherever the flows were observed).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, TIME, observed_name
from forecast.datasets._synthetic import _check_rate, _check_shape, _geography, _parse_start, _round_months

_MIN_SIZE, _TAIL, _MAX_SIZE = 150.0, 0.8, 150_000.0  # Pareto sizes: most 10^2-10^3, a few 10^4-10^5
_NEW_SHARE = 0.15            # areas with no IDPs until an onset month (and not assessed before)
_INFLOW = 0.02               # steady monthly arrivals, as a share of the area's size
_RETURN, _FAST_RETURN = 0.01, 0.05   # monthly return rate; faster for 6 months after a shock
_ONWARD = 0.01               # monthly onward movement (departures)
_SHOCK_RATE, _EVICTION_RATE = 0.03, 0.006   # monthly chance of a surge / a camp closure


def make_stock_panel(
    n_areas: int = 60,
    n_months: int = 72,
    *,
    start: str = "2016-01",
    seed: int = 0,
    n_regions: int | None = None,
    round_gap: tuple[int, int] = (1, 4),
    skip_rate: float = 0.1,
    with_flows: bool = True,
    flow_gap_rate: float = 0.02,
) -> xr.Dataset:
    """Build a seeded synthetic admin2 x month panel of DTM-like IDP stock rounds.

    Areas and P-codes are those of :func:`make_panel` (``XY0101``, ... nested in ``n_regions``
    admin1 regions). Each area has a heavy-tailed size (Pareto: most hold 10^2-10^3 IDPs, a few
    10^4-10^5). Month by month the stock carries over: people arrive steadily and in surges
    (shocks of 2-4 months), leave onward (departures) and go home (returns, faster for six months
    after a surge ends); now and then a camp closes or is evicted and 30-80 % of the stock leaves
    at once (departures). About 15 % of the areas hold no IDPs until a surge in a later month and
    are neither assessed nor monitored before it.

    DTM rounds are ``round_gap`` months apart (irregular); in each round an area is skipped with
    chance ``skip_rate``. ``idp_stock`` is observed in the months of the rounds that assessed an
    area, NaN elsewhere.

    Parameters
    ----------
    n_areas, n_months : number of admin2 areas and of months (both at least 1).
    start : first month, e.g. ``"2016-01"``.
    seed : seed of ``numpy.random.default_rng``; the same arguments give the same panel.
    n_regions : admin1 regions, 1 to ``n_areas``; default ``max(1, round(sqrt(n_areas) / 2))``.
    round_gap : smallest and largest spacing in months between rounds, 1 <= smallest <= largest.
    skip_rate : chance that a round does not assess an area, in [0, 1).
    with_flows : add monthly ``arrivals``, ``departures`` and ``returns``.
    flow_gap_rate : share of area-months whose flows were not monitored (NaN in all three),
        in [0, 1); 0 gives flows that explain every change of the stock exactly.

    Returns
    -------
    xarray.Dataset
        ``idp_stock`` and, with flows, ``arrivals``, ``departures``, ``returns``: float64 on
        (area, time) with a boolean ``<name>_observed`` each, area coordinates as
        :func:`make_panel`'s, attributes ``area_key``, ``admin_level``, ``sensitivity``,
        ``source`` (``"synthetic-stock"``) and ``seed``.

    Example::

        from forecast.cube import stock_flow_gaps
        from forecast.datasets import make_stock_panel
        panel = make_stock_panel(40, 36, seed=1, flow_gap_rate=0.0)
        gaps = stock_flow_gaps(panel)     # one row per area and pair of consecutive rounds
        assert (gaps["gap"] == 0).all()   # the flows explain the stock exactly
    """
    n, m, seed, n_regions = _check_shape(n_areas, n_months, seed, n_regions)
    lo, hi = _check_round_gap(round_gap)
    skip_rate = _check_rate("skip_rate", skip_rate)
    flow_gap_rate = _check_rate("flow_gap_rate", flow_gap_rate)
    first = _parse_start(start)
    if with_flows not in (True, False):
        raise ValueError(f"with_flows must be True or False; got {with_flows!r}")

    rng = np.random.default_rng(seed)
    coords, _, _, _, _ = _geography(n, n_regions, rng)
    rounds = _round_months(m, lo, hi, rng)
    sim, onset = _simulate(n, m, rng)
    seen = _assessed(onset, rounds, m, skip_rate, rng)
    monitored = (np.arange(m)[None, :] >= onset[:, None]) & (rng.random((n, m)) >= flow_gap_rate)

    time = pd.date_range(first, periods=m, freq="MS").to_numpy().astype("datetime64[ns]")
    panel = xr.Dataset(coords={AREA: coords.pop(AREA), TIME: time,
                               **{k: (AREA, v) for k, v in coords.items()}})
    grids = {IDP_STOCK: np.where(seen, sim.pop("stock"), np.nan)}
    if with_flows:
        grids.update({k: np.where(monitored, sim[k], np.nan) for k in (ARRIVALS, DEPARTURES, RETURNS)})
    for name in sorted(grids):
        panel[name] = ((AREA, TIME), grids[name].astype("float64"))
        panel[observed_name(name)] = ((AREA, TIME), ~np.isnan(grids[name]))
    panel.attrs.update(area_key="pcode", admin_level=2, sensitivity="low", source="synthetic-stock",
                       seed=seed)
    return panel


def _check_round_gap(value: object) -> tuple[int, int]:
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
          and 1 <= value[0] <= value[1])
    if not ok:
        raise ValueError("round_gap must be two integers (smallest, largest) months between DTM "
                         f"rounds with 1 <= smallest <= largest, e.g. (1, 4); got {value!r}")
    return int(value[0]), int(value[1])


def _simulate(n: int, m: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """True monthly stock and flows (whole people, (area, month) arrays), and each area's onset."""
    size = np.minimum(_MIN_SIZE * (1.0 + rng.pareto(_TAIL, n)), _MAX_SIZE)
    onset = np.zeros(n, dtype="int64")
    n_new = min(n - 1, round(_NEW_SHARE * n)) if m > 2 else 0
    if n_new > 0:
        new = rng.choice(n, n_new, replace=False)
        onset[new] = rng.integers(max(1, m // 6), max(2, 2 * m // 3), n_new)
    stock = np.where(onset == 0, np.round(size), 0).astype("int64")
    out = {k: np.zeros((n, m), dtype="int64") for k in (ARRIVALS, DEPARTURES, RETURNS, "stock")}
    shock_left = np.zeros(n, dtype="int64")
    surge = np.zeros(n)
    since = np.full(n, 99, dtype="int64")          # months since the last surge ended
    for t in range(m):
        active = onset <= t
        begins = ((shock_left == 0) & (rng.random(n) < _SHOCK_RATE) & active) | ((onset == t) & (t > 0))
        shock_left = np.where(begins, rng.integers(2, 5, n), shock_left)
        surge = np.where(begins, rng.uniform(0.05, 0.4, n), surge)
        mean = size * (_INFLOW + np.where(shock_left > 0, surge, 0.0))
        arrivals = np.where(active, rng.poisson(mean), 0)
        returns = rng.binomial(stock, np.where((since >= 1) & (since <= 6), _FAST_RETURN, _RETURN))
        onward = rng.binomial(stock - returns, _ONWARD)
        evicted = rng.binomial(stock - returns - onward, rng.uniform(0.3, 0.8, n))
        evicted = np.where(active & (rng.random(n) < _EVICTION_RATE), evicted, 0)
        departures = onward + evicted
        stock = stock + arrivals - departures - returns
        ended = (shock_left == 1)
        shock_left = np.maximum(shock_left - 1, 0)
        since = np.where(ended, 0, np.minimum(since + 1, 99))
        for name, value in ((ARRIVALS, arrivals), (DEPARTURES, departures), (RETURNS, returns),
                            ("stock", stock)):
            out[name][:, t] = value
    return out, onset


def _assessed(onset: np.ndarray, rounds: np.ndarray, m: int, skip_rate: float,
              rng: np.random.Generator) -> np.ndarray:
    """Which area-months a round assessed: round months, not skipped, not before the area's onset;
    every round assesses at least one area (else it would not be a round)."""
    n = len(onset)
    eligible = np.zeros((n, m), dtype=bool)
    eligible[:, rounds] = np.arange(m)[rounds][None, :] >= onset[:, None]
    seen = eligible & (rng.random((n, m)) >= skip_rate)
    for t in rounds:
        if not seen[:, t].any():
            seen[rng.choice(np.flatnonzero(eligible[:, t])), t] = True
    return seen


__all__ = ["make_stock_panel"]
