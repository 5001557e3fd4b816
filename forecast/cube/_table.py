"""Cubes as long area-month tables and back: the form an MLflow pyfunc model reads and returns."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from forecast._names import AREA, OBSERVED_SUFFIX, TIME
from forecast.errors import ForecastError

__all__ = ["cube_table", "cube_from_table"]


def cube_table(cube, *, areas=None, months: int | None = None) -> pd.DataFrame:
    """The area × month variables of a cube as the long table the pyfunc model reads."""
    names = [v for v, da in cube.data_vars.items()
             if da.dims == (AREA, TIME) and not v.endswith(OBSERVED_SUFFIX)]
    part = cube[names]
    if areas is not None:
        part = part.sel({AREA: list(areas)})
    if months is not None:
        part = part.isel({TIME: slice(-months, None)})
    part = part.drop_vars([c for c in part.coords if c not in (AREA, TIME)])
    return part.to_dataframe().reset_index()


def cube_from_table(table: pd.DataFrame) -> xr.Dataset:
    """A cube from a long area-month table (``area, time`` and one column per variable)."""
    missing = [c for c in (AREA, TIME) if c not in table]
    if missing:
        raise ForecastError(f"the table needs columns {missing}; it has {list(table.columns)}")
    frame = table.copy()
    frame[AREA] = frame[AREA].astype(str)
    frame[TIME] = pd.to_datetime(frame[TIME]).dt.to_period("M").dt.to_timestamp()
    if frame.duplicated([AREA, TIME]).any():
        raise ForecastError("the table repeats area-months; give one row per area and month")
    cube = frame.set_index([AREA, TIME]).sort_index().to_xarray()
    for name in list(cube.data_vars):
        cube[name] = cube[name].astype(float)
    return cube
