"""The shipped Somalia sample: real PRMN displacement flows, rainfall and conflict counts, and
district attributes (region, livelihood zone, urban/rural, population) as fairness groups."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import xarray as xr

from forecast.cube import load_cube

DATA = Path(str(resources.files("forecast.datasets").joinpath("data", "somalia")))
SAMPLE_CUBE = DATA / "somalia.nc"
SAMPLE_MANIFEST = DATA / "somalia_manifest.json"

FILES = {
    "flows": DATA / "prmn_flows_district_month.csv",
    "rainfall": DATA / "rainfall_district_month.csv",
    "conflict": DATA / "conflict_district_month.csv",
}
GAZETTEER = DATA / "som_adm2.geojson"
ALIASES = DATA / "aliases.csv"
ATTRIBUTES = DATA / "area_attributes.csv"


def sample_files() -> dict[str, Path]:
    """Paths of the shipped raw sample files, the gazetteer, the alias table and the area attributes.

    Use them to try ``forecast ingest`` on real data::

        forecast ingest prmn_flows_district_month.csv rainfall_district_month.csv \\
            conflict_district_month.csv -f flows -f table -f table \\
            --areas som_adm2.geojson --aliases aliases.csv --attributes area_attributes.csv --out out/
    """
    return {**FILES, "areas": GAZETTEER, "aliases": ALIASES, "attributes": ATTRIBUTES}


def ingest_sample():
    """Ingest the shipped sample files (what ``make demo`` does first)."""
    from forecast.pipeline import ingest

    return ingest([FILES["flows"], FILES["rainfall"], FILES["conflict"]], ["flows", "table", "table"],
                  areas=GAZETTEER, aliases=ALIASES, attributes=ATTRIBUTES)


def load_somalia() -> xr.Dataset:
    """Somalia district-month cube, 2016-01 to 2023-12: 74 districts x 96 months.

    Variables: ``arrivals``, ``departures``, ``flows`` (origin x destination), ``arrivals_by_reason``
    (drought, conflict, flood, other) from UNHCR's PRMN; ``rainfall`` (mm, FAO SWALIM) and
    ``conflict_events`` / ``conflict_fatalities`` (counts from ACLED), 2016-2018 only. Unassessed
    cells are NaN. Coordinates on ``area`` besides the admin hierarchy: ``region``, ``zone``
    (LSHTM stratum), ``livelihood`` (FSNAU livelihood zone), ``settlement`` (urban/rural),
    ``population`` and ``idp_share_2014`` (UNPESS 2014). Sources and licences:
    ``forecast/datasets/data/somalia/README.md``.

    Examples
    --------
    >>> cube = load_somalia()
    >>> dict(cube.sizes)["area"], dict(cube.sizes)["time"]
    (74, 96)
    """
    return load_cube(SAMPLE_CUBE)
