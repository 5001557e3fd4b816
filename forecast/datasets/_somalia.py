"""The shipped Somalia sample: real PRMN displacement flows, FAO FSNAU covariates (rainfall,
vegetation, drought index, prices, terms of trade, reported insecurity), IPC rounds, and
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
    "fsnau": DATA / "fsnau_district_month.csv",
    "climate": DATA / "fsnau_climate_district_month_2009-2014.csv",
    "ipc": DATA / "ipc_district_rounds.csv",
}
GAZETTEER = DATA / "som_adm2.geojson"
ALIASES = DATA / "aliases.csv"
ATTRIBUTES = DATA / "area_attributes.csv"
RULES = DATA / "fsnau_rules.yaml"


def sample_files() -> dict[str, Path]:
    """Paths of the shipped raw sample files, the gazetteer, the alias table, the area attributes
    and the covariates' value rules.

    Use them to try ``forecast ingest`` on real data::

        forecast ingest prmn_flows_district_month.csv fsnau_district_month.csv \\
            fsnau_climate_district_month_2009-2014.csv ipc_district_rounds.csv \\
            -f flows -f table -f table -f table --rules fsnau_rules.yaml \\
            --areas som_adm2.geojson --aliases aliases.csv --attributes area_attributes.csv --out out/
    """
    return {**FILES, "areas": GAZETTEER, "aliases": ALIASES, "attributes": ATTRIBUTES, "rules": RULES}


def ingest_sample():
    """Ingest the shipped sample files (what ``make demo`` does first)."""
    from forecast.pipeline import ingest

    return ingest(list(FILES.values()), ["flows", "table", "table", "table"],
                  areas=GAZETTEER, aliases=ALIASES, attributes=ATTRIBUTES, rules=RULES)


def load_somalia() -> xr.Dataset:
    """Somalia district-month cube, 2009-01 to 2023-12: 74 districts x 180 months.

    Variables: ``arrivals``, ``departures``, ``flows`` (origin x destination), ``arrivals_by_reason``
    (drought, conflict, flood, other) from UNHCR's PRMN, 2016-2023 (NaN before: not recorded);
    from FAO FSNAU ``rainfall`` (mm) and ``ndvi`` (from 2009), ``drought_index``, prices
    (``water_price``, ``sorghum_price``, ``maize_price``, ``rice_price``, ``goat_price``, ``wage``,
    ``cost_min_basket``), terms of trade (``tot_goat_cereal``, ``tot_wage_cereal``),
    ``conflict_incidents`` and ``conflict_fatalities`` (reported, FSNAU's tally), 2015-2023; IPC
    ``ipc_phase3plus_share`` and ``ipc_area_phase`` at the reference months of 9 rounds, 2017-2021.
    Unassessed cells are NaN. Coordinates on ``area`` besides the admin hierarchy: ``region``, ``zone``
    (LSHTM stratum), ``livelihood`` (FSNAU livelihood zone), ``settlement`` (urban/rural),
    ``population`` and ``idp_share_2014`` (UNPESS 2014). Sources and licences:
    ``forecast/datasets/data/somalia/README.md``.

    Examples
    --------
    >>> cube = load_somalia()
    >>> dict(cube.sizes)["area"], dict(cube.sizes)["time"]
    (74, 180)
    """
    return load_cube(SAMPLE_CUBE)
