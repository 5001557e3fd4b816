"""Save and load cubes as NetCDF, and the content hash that names a cube in manifests and runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.errors import UnusableFileError

HASH_ATTR = "cube_hash"
_ENGINE = "h5netcdf"


def cube_hash(cube: xr.Dataset) -> str:
    """SHA-256 of a cube's content: names, dims, dtypes, values, coordinates and attributes.

    Independent of variable order and of the ``cube_hash`` attribute itself, so a cube saved
    and loaded again has the same hash.
    """
    digest = hashlib.sha256()
    for name in sorted(map(str, cube.variables)):
        var = cube.variables[name]
        kind = "U" if var.dtype.kind in "OUS" else var.dtype.kind
        digest.update(f"{name}|{var.dims}|{kind}|{var.shape}".encode())
        values = var.values
        if values.dtype.kind in "OUS":
            digest.update("\x1f".join(map(str, values.ravel())).encode())
        elif values.dtype.kind == "M":
            digest.update(values.astype("datetime64[ns]").astype("int64").tobytes())
        else:
            data = np.ascontiguousarray(values)
            if data.dtype.kind == "f":
                data = np.where(np.isnan(data), np.nan, data)  # one NaN bit pattern
            digest.update(data.astype(data.dtype.newbyteorder("<")).tobytes())
    for key in sorted(k for k in cube.attrs if k != HASH_ATTR):
        value = cube.attrs[key]
        value = value.tolist() if isinstance(value, (np.generic, np.ndarray)) else value
        digest.update(f"{key}={json.dumps(value, sort_keys=True, default=str)}".encode())
    return digest.hexdigest()


def save_cube(cube: xr.Dataset, path: str | Path) -> str:
    """Write ``cube`` to NetCDF (HDF5) and return its content hash (also stored as an attribute)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = cube_hash(cube)
    out = cube.copy()
    out.attrs[HASH_ATTR] = digest
    encoding = {name: {"zlib": True, "complevel": 4} for name, v in out.data_vars.items() if v.dtype.kind == "f"}
    out.to_netcdf(path, engine=_ENGINE, encoding=encoding)
    return digest


def load_cube(path: str | Path, *, chunks: dict | None = None) -> xr.Dataset:
    """Open a cube written by :func:`save_cube` (fully loaded unless ``chunks`` is given)."""
    path = Path(path)
    if not path.is_file():
        raise UnusableFileError(path, "no such cube file", hint="write one with `forecast ingest ... --out DIR`")
    try:
        cube = xr.open_dataset(path, engine=_ENGINE, chunks=chunks)
    except (OSError, ValueError) as err:
        raise UnusableFileError(path, f"not a readable NetCDF cube ({err})") from None
    if chunks is None:
        cube = cube.load()
        cube.close()
    for name, var in cube.variables.items():
        if var.dtype.kind == "O":
            cube[name] = var.astype(str)
    return cube
