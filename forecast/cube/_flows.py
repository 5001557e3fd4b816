"""Flows between areas stored sparsely: one record per origin, destination and month observed.

People move along few routes, so a dense origin x destination x month array is nearly all
empty, and at admin3 it does not fit (5,000 areas x 120 months is 3 billion cells). The cube
keeps the records instead:

* dim ``flow``: one per (origin, destination, month) some flow-monitoring row reported,
  ordered by origin, destination and month;
* ``flows(flow)``: the people recorded (float64; rows of one route and month added up);
* coordinates ``flow_origin(flow)`` and ``flow_destination(flow)``: positions (int32) in
  ``flow_area``, the area labels the records were written with. ``flow_area`` is a dim of
  its own, so selecting areas of the cube never renumbers the records;
* coordinate ``flow_time(flow)``: the month.

No record means nobody was recorded moving on that route that month: NaN in the dense view,
0 in sums. Every reader goes through :func:`flow_table`, which aligns the records to the cube
as it is (a record whose area or month the cube no longer has is left out) and to the area
order the reader asks for. A cube made elsewhere with a dense ``flows(origin, destination,
time)`` array is read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from forecast._names import (
    AREA,
    DESTINATION,
    FLOW,
    FLOW_AREA,
    FLOW_DESTINATION,
    FLOW_ORIGIN,
    FLOW_TIME,
    FLOWS,
    ORIGIN,
    TIME,
)
from forecast.errors import CubeError
from forecast.io import current_limits


@dataclass(frozen=True, eq=False)
class FlowTable:
    """A cube's flow records, as positions in an area order and in the cube's months.

    ``origin``, ``destination`` (int64 positions in ``areas``), ``time`` (positions in
    ``months``) and ``value`` (people) have one entry per record, ordered by origin,
    destination and month, one record per route and month.
    """

    origin: np.ndarray
    destination: np.ndarray
    time: np.ndarray
    value: np.ndarray
    areas: pd.Index
    months: pd.DatetimeIndex

    @classmethod
    def from_positions(cls, origin, destination, time, value, areas, months) -> FlowTable:
        """Records from rows given as positions in ``areas`` and ``months``: rows of the same
        route and month are added up, and the records ordered."""
        areas, months = pd.Index(areas), pd.DatetimeIndex(months)
        n, m = len(areas), len(months)
        o, d, t = (np.asarray(x, dtype=np.int64) for x in (origin, destination, time))
        key = (o * n + d) * m + t
        keys, inverse = np.unique(key, return_inverse=True)
        people = np.asarray(value, dtype=np.float64)
        total = np.bincount(inverse, weights=people, minlength=len(keys)).astype(np.float64)
        return cls(keys // m // n, keys // m % n, keys % m, total, areas, months)

    def __len__(self) -> int:
        return len(self.value)

    @property
    def n_routes(self) -> int:
        """Routes (origin, destination pairs) with a record: counted on the ordered records."""
        pair = self.origin * len(self.areas) + self.destination
        return int(np.count_nonzero(np.diff(pair))) + (len(pair) > 0)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The dense view's shape: origins x destinations x months."""
        return len(self.areas), len(self.areas), len(self.months)

    def arrivals(self) -> np.ndarray:
        """(area, month) people recorded arriving, summed over origins; NaN where no record."""
        return self._sum_by(self.destination)

    def departures(self) -> np.ndarray:
        """(area, month) people recorded leaving, summed over destinations; NaN where no record."""
        return self._sum_by(self.origin)

    def _sum_by(self, where: np.ndarray) -> np.ndarray:
        n, m = len(self.areas), len(self.months)
        cell = where * m + self.time
        total = np.bincount(cell, weights=self.value, minlength=n * m).astype(np.float64)
        seen = np.bincount(cell, minlength=n * m) > 0
        return np.where(seen, total, np.nan).reshape(n, m)

    @cached_property
    def routes(self) -> Routes:
        """The routes (origin, destination pairs) with any record, and their monthly totals."""
        m = len(self.months)
        pair = self.origin * len(self.areas) + self.destination
        keys, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
        check_flow_cells("the flows' routes x months", (len(keys), m), "routes x months")
        monthly = np.bincount(inverse * m + self.time, weights=self.value, minlength=len(keys) * m)
        monthly = monthly.astype(np.float64)  # an empty bincount is int
        return Routes(self.origin[first], self.destination[first], monthly.reshape(len(keys), m), len(self.areas))

    def dense(self) -> xr.DataArray:
        """The flows as a dense ``(origin, destination, time)`` array, NaN where no record.

        For small cubes and for looking: it has areas² x months cells, refused above the
        ``max_flow_cells`` limit.
        """
        n, _, m = self.shape
        check_flow_cells("a dense view of the flows", self.shape, "origins x destinations x months")
        values = np.full(n * n * m, np.nan)
        values[(self.origin * n + self.destination) * m + self.time] = self.value
        labels = self.areas.to_numpy().astype(str)
        return xr.DataArray(values.reshape(n, n, m), dims=(ORIGIN, DESTINATION, TIME), name=FLOWS,
                            coords={ORIGIN: labels, DESTINATION: labels, TIME: self.months.to_numpy()})

    def frame(self) -> pd.DataFrame:
        """One row per record: ``origin``, ``destination`` (labels), ``time`` and ``flows``."""
        labels = self.areas.to_numpy().astype(str)
        return pd.DataFrame({ORIGIN: labels[self.origin], DESTINATION: labels[self.destination],
                             TIME: self.months.to_numpy()[self.time], FLOWS: self.value})


@dataclass(frozen=True, eq=False)
class Routes:
    """Routes with a record and their monthly people: ``monthly[p, t]`` (0 where no record)."""

    origin: np.ndarray
    destination: np.ndarray
    monthly: np.ndarray
    n_areas: int

    def __len__(self) -> int:
        return len(self.origin)

    def at_origins(self, x: np.ndarray) -> np.ndarray:
        """An (area, month) array read at each route's origin: (route, month)."""
        return x[self.origin]

    def to_destinations(self, values: np.ndarray) -> np.ndarray:
        """(route, month) values summed over the routes into each destination: (area, month)."""
        into = sparse.csr_array((np.ones(len(self)), (self.destination, np.arange(len(self)))),
                                shape=(self.n_areas, len(self)))
        return np.asarray(into @ values)


def flow_table(cube: xr.Dataset, areas: pd.Index | None = None) -> FlowTable | None:
    """The cube's flow records aligned to ``areas`` (default: the cube's) and its months.

    None when the cube has no flows. Records whose origin, destination or month lies outside
    them are left out, so a cube cut to earlier months (a backtest origin) or to some areas
    never shows flows beyond its cut.
    """
    if FLOWS not in cube:
        return None
    areas = pd.Index(cube[AREA].values.astype(str) if areas is None else np.asarray(areas).astype(str))
    months = pd.DatetimeIndex(cube[TIME].values)
    var = cube[FLOWS]
    if var.dims == (FLOW,):
        labels = pd.Index(cube[FLOW_AREA].values.astype(str))
        to_area = areas.get_indexer(labels)
        o = to_area[cube[FLOW_ORIGIN].values.astype(np.int64)]
        d = to_area[cube[FLOW_DESTINATION].values.astype(np.int64)]
        t = months.get_indexer(pd.DatetimeIndex(cube[FLOW_TIME].values))
        value = var.values.astype(np.float64)
    elif set(var.dims) == {ORIGIN, DESTINATION, TIME}:  # a dense array made elsewhere
        dense = var.transpose(ORIGIN, DESTINATION, TIME)
        values = dense.values
        oi, di, ti = np.nonzero(~np.isnan(values))
        o = areas.get_indexer(dense[ORIGIN].values.astype(str))[oi]
        d = areas.get_indexer(dense[DESTINATION].values.astype(str))[di]
        t = months.get_indexer(pd.DatetimeIndex(dense[TIME].values))[ti]
        value = values[oi, di, ti].astype(np.float64)
    else:
        raise CubeError(f"'{FLOWS}' has dims {var.dims}; expected ({FLOW},) records or "
                        f"({ORIGIN}, {DESTINATION}, {TIME})")
    keep = (o >= 0) & (d >= 0) & (t >= 0)
    return FlowTable.from_positions(o[keep], d[keep], t[keep], value[keep], areas, months)


def with_flows(cube: xr.Dataset, flows: FlowTable | pd.DataFrame) -> xr.Dataset:
    """``cube`` with its flows replaced by ``flows``: a :class:`FlowTable` of the cube's areas
    and months, or a table with columns ``origin``, ``destination``, ``time`` and ``flows``
    (labels and months; rows of the same route and month are added up).

    >>> back = with_flows(cube, flow_table(cube).frame())  # doctest: +SKIP
    """
    areas = pd.Index(cube[AREA].values.astype(str))
    months = pd.DatetimeIndex(cube[TIME].values)
    if isinstance(flows, pd.DataFrame):
        flows = _from_frame(flows, areas, months)
    elif not (flows.areas.equals(areas) and flows.months.equals(months)):
        raise CubeError("the flow table was made for other areas or months than the cube's; "
                        "pass flow_table(cube).frame() to match them by label")
    out = cube.drop_vars([v for v in (FLOWS, FLOW_ORIGIN, FLOW_DESTINATION, FLOW_TIME, FLOW_AREA)
                          if v in cube.variables])
    out[FLOWS] = ((FLOW,), flows.value)
    return out.assign_coords({
        FLOW_AREA: areas.to_numpy().astype(str),
        FLOW_ORIGIN: ((FLOW,), flows.origin.astype(np.int32)),
        FLOW_DESTINATION: ((FLOW,), flows.destination.astype(np.int32)),
        FLOW_TIME: ((FLOW,), months.to_numpy()[flows.time]),
    })


def _from_frame(frame: pd.DataFrame, areas: pd.Index, months: pd.DatetimeIndex) -> FlowTable:
    missing = [c for c in (ORIGIN, DESTINATION, TIME, FLOWS) if c not in frame.columns]
    if missing:
        raise CubeError(f"a flow table needs columns {missing}; it has {list(frame.columns)}")
    o = areas.get_indexer(frame[ORIGIN].astype(str))
    d = areas.get_indexer(frame[DESTINATION].astype(str))
    t = months.get_indexer(pd.to_datetime(frame[TIME]).dt.to_period("M").dt.to_timestamp())
    for name, bad in ((ORIGIN, o < 0), (DESTINATION, d < 0), (TIME, t < 0)):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CubeError(f"{int(bad.sum())} flow rows have a {name} the cube lacks, e.g. row {row} "
                            f"({frame[name].iloc[row]!s})")
    value = pd.to_numeric(frame[FLOWS], errors="coerce").to_numpy(np.float64)
    if not np.isfinite(value).all() or (value < 0).any():
        row = int(np.flatnonzero(~np.isfinite(value) | (value < 0))[0])
        raise CubeError(f"flow row {row} has {FLOWS}={frame[FLOWS].iloc[row]!r}; counts must be numbers >= 0")
    return FlowTable.from_positions(o, d, t, value, areas, months)


def trim_flows(cube: xr.Dataset) -> xr.Dataset:
    """``cube`` with only the flow records its areas and months still hold.

    Selecting months or areas of a cube (``cube.isel(time=slice(0, -1))``) leaves the records
    along ``flow`` as they were; readers skip the ones outside, and :func:`save_cube` and
    :func:`cube_hash` call this first, so a cube cut to earlier months is stored and named
    without its later flows. The cube itself when nothing is outside.
    """
    if FLOWS not in cube or cube[FLOWS].dims != (FLOW,):
        return cube
    areas = cube[AREA].values.astype(str)
    months = pd.DatetimeIndex(cube[TIME].values)
    same_areas = np.array_equal(cube[FLOW_AREA].values.astype(str), areas)
    if same_areas and (months.get_indexer(pd.DatetimeIndex(cube[FLOW_TIME].values)) >= 0).all():
        return cube
    return with_flows(cube, flow_table(cube))


def check_flow_cells(what: str, shape: tuple[int, ...], dims: str) -> None:
    cells = int(np.prod(shape, dtype=np.float64))
    most = current_limits().max_flow_cells
    if cells > most:
        raise CubeError(f"{what} would need {' x '.join(f'{n:,}' for n in shape)} = {cells:,} cells "
                        f"({dims}; {cells * 8 / 2**30:.1f} GiB), more than the limit max_flow_cells={most:,}; "
                        "use a shorter period or fewer areas, or raise it with --limit max_flow_cells=N")


__all__ = ["FlowTable", "Routes", "check_flow_cells", "flow_table", "trim_flows", "with_flows"]
