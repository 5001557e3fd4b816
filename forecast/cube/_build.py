"""Long tables from the readers -> the cube (``xarray.Dataset``, area x month).

Cells no file observed are NaN, never 0, and every variable has a ``<name>_observed`` mask.
Files declared complete in coverage (ACLED) are 0 inside their own months. Two files that
report the same variable for the same cell are refused: adding them up would double count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    ARRIVALS,
    ARRIVALS_BY_REASON,
    DEPARTURES,
    FLOWS,
    ORIGIN,
    REASON,
    TIME,
    observed_name,
)
from forecast.cube._flows import FlowTable, check_flow_cells, with_flows
from forecast.errors import CubeError
from forecast.io import current_limits, highest

if TYPE_CHECKING:
    from forecast.io import ReadResult
    from forecast.io._common import Resolver


def build_cube(results: Sequence[ReadResult], resolver: Resolver, *, sensitivity: str | None = None) -> xr.Dataset:
    """Combine the readers' results into one cube at the finest admin level they share."""
    if not results:
        raise CubeError("no input files to build a cube from")
    levels = {r.admin_level for r in results}
    if len(levels) > 1:
        listed = ", ".join(f"{r.ledger.source_file} (admin{r.admin_level})" for r in results)
        raise CubeError(f"inputs are at different admin levels: {listed}; ingest each level "
                        "separately and aggregate the finer cube with forecast.aggregate()")
    level = levels.pop()
    areas = resolver.areas_at(level)
    months = [r.table[TIME] for r in results if len(r.table)]
    if not months:
        # Nothing is written in this case, so the message itself says why the rows were refused.
        raise CubeError("no row of any input file was kept: " + "; ".join(map(_refusals, results)))
    all_months = pd.concat(months)
    _check_span(results, all_months.min(), all_months.max())
    time = pd.date_range(all_months.min(), all_months.max(), freq="MS").astype("datetime64[ns]")
    index = pd.Index(areas[AREA].astype(str), name=AREA)
    coords = {AREA: index.to_numpy().astype(str), TIME: time.to_numpy()}
    for col in areas.columns.drop(AREA):
        values = areas[col].to_numpy()
        coords[col] = ((AREA,), values.astype("int64") if col == ADMIN_LEVEL else values.astype(str))
    cube = xr.Dataset(coords=coords)
    grids: dict[str, tuple[np.ndarray, str]] = {}
    for res in results:
        table = res.table
        for variable, part in table[table["variable"] != FLOWS].groupby("variable", sort=True):
            grid = _grid(part, index, time, res.zero_fill, res.ledger.source_file)
            _merge(grids, variable, grid, res.ledger.source_file)
        flows = table[table["variable"] == FLOWS]
        if len(flows):
            cube = _add_flows(cube, grids, flows, index, time, res.ledger.source_file)
    for variable in sorted(grids):
        values = grids[variable][0]
        cube[variable] = ((AREA, TIME), values)
        cube[observed_name(variable)] = ((AREA, TIME), ~np.isnan(values))
    cube.attrs.update(
        area_key="name" if not getattr(resolver, "source", "") else "pcode",
        admin_level=int(level),
        sensitivity=sensitivity or highest([r.sensitivity for r in results]),
    )
    return cube


def _check_span(results: Sequence[ReadResult], first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Refuse a time axis longer than the limit, naming the rows at either end."""
    span = (last.year - first.year) * 12 + last.month - first.month + 1
    most = current_limits().max_months
    if span <= most:
        return
    ends = []
    for when in (first, last):
        for res in results:
            hit = res.table[res.table[TIME] == when]
            if len(hit):
                ends.append(f"{when:%Y-%m} in {res.ledger.source_file} row {int(hit['source_row'].iloc[0])}")
                break
    raise CubeError(f"the rows span {span} months ({' to '.join(ends)}), more than the limit max_months={most}; "
                    "fix the dates of those rows, or raise it with --limit max_months=N")


def _refusals(res: ReadResult) -> str:
    """``'a.csv: 3 of 3 rows quarantined (negative count (2), unreadable date (1))'``."""
    ledger = res.ledger
    top = ", ".join(f"{kind} ({n})" for kind, n in list(ledger.reasons().items())[:3])
    return f"{ledger.source_file}: {ledger.rows_quarantined} of {ledger.rows_in} rows quarantined ({top})"


def _grid(part: pd.DataFrame, areas: pd.Index, time: pd.DatetimeIndex, zero_fill: bool, source: str) -> np.ndarray:
    summed = part.groupby([AREA, TIME], sort=False)["value"].sum()
    grid = np.full((len(areas), len(time)), np.nan)
    a = areas.get_indexer(summed.index.get_level_values(0))
    t = time.get_indexer(summed.index.get_level_values(1))
    if (a < 0).any():
        missing = sorted(set(summed.index.get_level_values(0)[a < 0]))[:5]
        raise CubeError(f"{source}: areas {missing} are not in the area list")
    if zero_fill:
        lo, hi = time.get_loc(part[TIME].min()), time.get_loc(part[TIME].max())
        grid[:, lo:hi + 1] = 0.0
    grid[a, t] = summed.to_numpy()
    return grid


def _merge(grids: dict, variable: str, grid: np.ndarray, source: str) -> None:
    if variable not in grids:
        grids[variable] = (grid, source)
        return
    old, old_source = grids[variable]
    both = ~np.isnan(old) & ~np.isnan(grid)
    if both.any():
        raise CubeError(f"'{variable}' is reported by both {old_source} and {source} for "
                        f"{int(both.sum())} area-months; adding them would double count")
    grids[variable] = (np.where(np.isnan(old), grid, old), f"{old_source}, {source}")


def _add_flows(cube: xr.Dataset, grids: dict, flows: pd.DataFrame, areas: pd.Index,
               time: pd.DatetimeIndex, source: str) -> xr.Dataset:
    """The flow rows as sparse records (one per route and month), and the arrivals and
    departures they add up to (NaN where no row was recorded)."""
    if FLOWS in cube:
        raise CubeError(f"{source}: only one flow-monitoring file per cube (flows were already read)")
    d = areas.get_indexer(flows[AREA])
    o = areas.get_indexer(flows[ORIGIN])
    t = time.get_indexer(flows[TIME])
    if (d < 0).any() or (o < 0).any():
        raise CubeError(f"{source}: flow origins/destinations outside the area list")
    n, m = len(areas), len(time)
    table = FlowTable.from_positions(o, d, t, flows["value"].to_numpy(), areas, time)
    check_flow_cells(f"{source}: the flows", (table.n_routes, m), "routes x months")
    _merge(grids, ARRIVALS, table.arrivals(), source)
    _merge(grids, DEPARTURES, table.departures(), source)
    cube = with_flows(cube, table)
    if REASON in flows.columns:
        reasons = sorted(flows[REASON].unique())
        r = pd.Index(reasons).get_indexer(flows[REASON])
        k = len(reasons)
        check_flow_cells(f"{source}: arrivals by reason", (n, m, k), "areas x months x reasons")
        by = np.bincount((d * m + t) * k + r, weights=flows["value"].to_numpy(), minlength=n * m * k)
        hit = np.bincount((d * m + t) * k + r, minlength=n * m * k) > 0
        grid = np.where(hit, by, np.nan).reshape(n, m, k)
        cube[ARRIVALS_BY_REASON] = ((AREA, TIME, REASON), grid)
        cube.coords[REASON] = np.asarray(reasons, dtype=str)
    return cube


__all__ = ["build_cube"]
