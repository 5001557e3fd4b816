"""Save and load cubes as NetCDF, and the content hash that names a cube in manifests and runs."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import xarray as xr

from forecast._names import FLOW_DESTINATION, FLOW_ORIGIN, FLOW_TIME
from forecast.cube._flows import trim_flows
from forecast.errors import UnusableFileError
from forecast.io import (
    encrypts,
    is_encrypted,
    make_folder,
    read_at_rest,
    reserve_file,
    secure_file,
    write_output,
)

HASH_ATTR = "cube_hash"
_ENGINE = "h5netcdf"


def cube_hash(cube: xr.Dataset) -> str:
    """SHA-256 of a cube's content: names, dims, dtypes, values, coordinates and attributes.

    Independent of variable order and of the ``cube_hash`` attribute itself, so a cube saved
    and loaded again has the same hash. Flow records outside the cube's areas and months (left
    by a selection) are not part of it (:func:`trim_flows`).
    """
    cube = trim_flows(cube)
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


def save_cube(cube: xr.Dataset, path: str | Path, *, sensitivity: str | None = None) -> str:
    """Write ``cube`` to NetCDF (HDF5) and return its content hash (also stored as an attribute).

    ``sensitivity`` is the level its manifest records (default: the cube's ``sensitivity``
    attribute, which ingest sets from the same level). A ``high`` or ``severe`` cube is written
    owner-only (0600, in folders created 0700); a ``severe`` one is encrypted at rest when a
    data key is set (``FORECAST_DATA_KEY``; :func:`forecast.io.write_output`). The hash is that
    of the content either way, so the manifest vouches for a cube however it is stored.
    """
    path = Path(path)
    level = sensitivity or cube.attrs.get("sensitivity")
    make_folder(path.parent, level)
    cube = trim_flows(cube)  # a cube cut to earlier months is written without its later flows
    digest = cube_hash(cube)
    out = cube.copy()
    out.attrs[HASH_ATTR] = digest
    encoding = {name: {"zlib": True, "complevel": 4} for name, v in out.data_vars.items() if v.dtype.kind == "f"}
    # the flow records' positions and months: millions of values at admin3, compressed like the data
    encoding.update({name: {"zlib": True, "complevel": 4} for name in (FLOW_ORIGIN, FLOW_DESTINATION, FLOW_TIME)
                     if name in out.variables})
    if encrypts(level):  # serialised and encrypted in memory: the plaintext never reaches the disk
        write_output(path, bytes(out.to_netcdf(engine=_ENGINE, encoding=encoding)), level, encrypt=True)
        return digest
    reserve_file(path, level)
    out.to_netcdf(path, engine=_ENGINE, encoding=encoding)
    secure_file(path, level)
    return digest


def load_cube(path: str | Path, *, chunks: dict | None = None) -> xr.Dataset:
    """Open a cube written by :func:`save_cube` (fully loaded unless ``chunks`` is given).

    An encrypted cube is read with the data key (``FORECAST_DATA_KEY`` or
    ``FORECAST_DATA_KEY_FILE``); without it, or with another key, an UnusableFileError names
    the file and the variable.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableFileError(path, "no such cube file", hint="write one with `forecast ingest ... --out DIR`")
    try:
        # an encrypted cube (severe data, FORECAST_DATA_KEY) is decrypted in memory, never to disk
        source = io.BytesIO(read_at_rest(path)) if is_encrypted(path) else path
    except OSError as err:
        raise UnusableFileError(path, f"cannot be read ({err.strerror or type(err).__name__})") from None
    try:
        cube = xr.open_dataset(source, engine=_ENGINE, chunks=chunks)
    except (OSError, ValueError) as err:
        raise UnusableFileError(path, f"not a readable NetCDF cube ({err})") from None
    if chunks is None:
        cube = cube.load()
        cube.close()
    for name, var in cube.variables.items():
        if var.dtype.kind == "O":
            cube[name] = var.astype(str)
    _check_hash(path, cube, recompute=chunks is None)
    return cube


def _check_hash(path: Path, cube: xr.Dataset, *, recompute: bool) -> None:
    """A cube is what its hash says, and an ingest's ``cube.nc`` is the one its manifest names.

    The hash stored in the file is checked against its content (a changed or damaged cube);
    for ``cube.nc`` with a ``manifest.json`` beside it (what ``forecast ingest`` writes), the
    manifest's ``cube_hash`` against the file's (a write killed between the two, or one file
    replaced). A chunked (Dask) open checks the hashes without reading the values.
    """
    stored = cube.attrs.get(HASH_ATTR)
    if stored and recompute and cube_hash(cube) != stored:
        raise UnusableFileError(path, "its content does not match the hash it was saved with: the file was "
                                "changed or damaged after it was written", hint="ingest the source files again")
    manifest = path.with_name("manifest.json")
    if path.name != "cube.nc" or not manifest.is_file():
        return
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("cube_hash")
    except (OSError, ValueError, AttributeError):
        raise UnusableFileError(manifest, "not a readable manifest; the cube beside it cannot be vouched for",
                                hint="ingest the source files again") from None
    if recorded != stored:
        raise UnusableFileError(path, f"is not the cube its manifest describes (cube hash {str(stored)[:12]}, "
                                f"{manifest.name} says {str(recorded)[:12]}): a write was interrupted or a file "
                                "replaced", hint="ingest the source files again")
