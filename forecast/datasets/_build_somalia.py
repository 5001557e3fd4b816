"""Rebuild the shipped Somalia sample from the raw public files (maintainers only).

    python -m forecast.datasets._build_somalia ../shared/data

What is shipped, and why it is safe to ship (see data/somalia/README.md):

* PRMN arrivals aggregated to month x arrival district x departure district x reason
  (the week, the priority need and the row-level records are dropped);
* FAO FSNAU district-month covariates, 2014-12..2023-12 (rainfall, NDVI, drought index,
  prices, terms of trade, reported insecurity incidents and fatalities), plus rainfall and
  NDVI 2009-01..2014-11 from FSNAU's older extract for climatologies; values as published,
  columns renamed to the cube's variable names, the health and movement columns left out;
* IPC district rounds 2017-2021 (phase 3+ share and area phase), at their reference months;
* district attributes (region, LSHTM stratum, livelihood zone, urban/rural, UNPESS 2014
  population and IDP share): area-level statistics, used as fairness groups;
* the COD admin boundaries (UNDP / OCHA) as the gazetteer, and an alias table;
* ``somalia.nc`` + ``somalia_manifest.json``: the cube ingested from the files above.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

from forecast._names import AREA, AREA_NAME, admin_name
from forecast.io import Gazetteer

HERE = Path(__file__).parent / "data" / "somalia"
#: FSNAU dashboard columns kept, and the cube's names for them (health and movements are not needed:
#: the displacement target comes from PRMN)
DASHBOARD = {
    "climate_rainfall": "rainfall", "climate_ndvi": "ndvi", "climate_cdi": "drought_index",
    "climate_water_price": "water_price", "conflicts_incidents": "conflict_incidents",
    "conflicts_fatalities": "conflict_fatalities", "markets_sorghum": "sorghum_price",
    "markets_maize": "maize_price", "markets_rice": "rice_price", "markets_goat": "goat_price",
    "markets_wage": "wage", "markets_goat_to_cereal": "tot_goat_cereal",
    "markets_wage_to_cereal": "tot_wage_cereal", "markets_cost_min_basket": "cost_min_basket",
}
#: The older FSNAU extract: rainfall and NDVI before the dashboard's first month, for climatologies
HISTORY = {"Rainfall": "rainfall", "Vegetation cover (NDVI)": "ndvi"}
IPC = {"phase3plus_perc": "ipc_phase3plus_share", "area_phase": "ipc_area_phase"}


def build(shared: Path) -> None:
    prmn = pd.read_csv(shared / "somalia-prmn" / "prmn_arrivals_2016-01_2023-12.csv", dtype=str,
                       keep_default_na=False)
    keys = ["Month End", "Current (Arrival) Region", "Current (Arrival) District",
            "Previous (Departure) Region", "Previous (Departure) District", "Reason"]
    prmn["Number of Individuals"] = prmn["Number of Individuals"].astype(int)
    flows = prmn.groupby(keys, as_index=False)["Number of Individuals"].sum()
    flows.to_csv(HERE / "prmn_flows_district_month.csv", index=False)

    cov = shared / "somalia-district-covariates"
    gazetteer = Gazetteer.from_file(shared / "somalia-boundaries" / "som_adm2.geojson", aliases=HERE / "aliases.csv")
    fsnau_tables(shared / "somalia-fsnau")
    compare_rainfall(cov, gazetteer)
    for old in ("rainfall_district_month.csv", "conflict_district_month.csv"):  # replaced by FSNAU's
        (HERE / old).unlink(missing_ok=True)
    area_attributes(cov, gazetteer).to_csv(HERE / "area_attributes.csv", index=False)

    for name in ("som_adm1.geojson", "som_adm2.geojson"):
        shutil.copyfile(shared / "somalia-boundaries" / name, HERE / name)

    from forecast.datasets._somalia import SAMPLE_CUBE, SAMPLE_MANIFEST, ingest_sample

    result = ingest_sample()
    for record in result.manifest.files:  # shipped lineage names files, not this machine's paths
        record.path = Path(record.path).name
    result.manifest.gazetteer["path"] = Path(result.manifest.gazetteer["path"]).name
    result.write(HERE / "_build")
    shutil.move(HERE / "_build" / "cube.nc", SAMPLE_CUBE)
    shutil.move(HERE / "_build" / "manifest.json", SAMPLE_MANIFEST)
    shutil.rmtree(HERE / "_build")
    print(f"rebuilt {SAMPLE_CUBE} ({result.manifest.cube_hash[:12]})")


def fsnau_tables(fsnau: Path) -> None:
    """Write the FSNAU covariates, the older rainfall/NDVI extract and the IPC rounds, values as
    published, with the cube's variable names; print how the overlap of the two extracts agrees."""
    dash = pd.read_csv(fsnau / "fsnau_dashboard_district_month_2014-12_2023-12.csv")
    dash = dash[["Region", "District", "date", *DASHBOARD]].rename(columns=DASHBOARD)
    dash = dash.dropna(subset=list(DASHBOARD.values()), how="all")
    dash.sort_values(["District", "date"]).to_csv(HERE / "fsnau_district_month.csv", index=False)

    ids = pd.read_csv(fsnau / "fsnau_ids_district_month_2009-01_2022-02.csv")
    ids["date"] = pd.to_datetime(ids["date"].str.replace("-Sept-", "-Sep-"), format="%d-%b-%Y").dt.strftime("%Y-%m")
    ids = ids.rename(columns={"Regions": "Region", "Districts": "District", **HISTORY})
    overlap = ids.merge(dash, on=["District", "date"], suffixes=("_ids", ""))
    for name in HISTORY.values():
        both = overlap[[f"{name}_ids", name]].dropna()
        print(f"{name}: the two FSNAU extracts agree with correlation {both.corr().iloc[0, 1]:.4f} "
              f"over {len(both):,} shared district-months (max difference {(both.iloc[:, 0] - both.iloc[:, 1]).abs().max():.3g})")
    old = ids[ids["date"] < dash["date"].min()][["Region", "District", "date", *HISTORY.values()]]
    old = old.dropna(subset=list(HISTORY.values()), how="all")
    old.sort_values(["District", "date"]).to_csv(HERE / "fsnau_climate_district_month_2009-2014.csv", index=False)

    ipc = pd.read_csv(fsnau / "ipc_district_2017-01_2021-01.csv")
    ipc = ipc.rename(columns={"area": "District", "level1_name": "Region", **IPC})
    ipc["date"] = ipc["date"].str[:7]
    ipc[["Region", "District", "date", *IPC.values()]].sort_values(["date", "District"]).to_csv(
        HERE / "ipc_district_rounds.csv", index=False)


def compare_rainfall(cov: Path, gazetteer: Gazetteer) -> None:
    """Print how the LSHTM rainfall the sample shipped before (2016-2018) agrees with FSNAU's."""
    lshtm = pd.read_csv(cov / "rainfall_mm_district_month.csv")
    lshtm["date"] = [f"{y}-{m:02d}" for y, m in zip(lshtm["y"], lshtm["m"])]
    fsnau = pd.read_csv(HERE / "fsnau_district_month.csv")
    for frame, column in ((lshtm, "district"), (fsnau, "District")):
        names = pd.Series(sorted(frame[column].unique()))
        keys = dict(zip(names, gazetteer.resolve(2, names, None, None, (column, "")).keys))
        frame["pcode"] = frame[column].map(keys)
    both = lshtm.merge(fsnau, on=["pcode", "date"], suffixes=("_lshtm", ""))[["rainfall_lshtm", "rainfall"]].dropna()
    close = ((both["rainfall_lshtm"] - both["rainfall"]).abs() <= 1).mean()
    print(f"rainfall 2016-2018: LSHTM (replaced) and FSNAU correlate {both.corr().iloc[0, 1]:.3f} over "
          f"{len(both):,} district-months; {close:.0%} within 1 mm")


def area_attributes(cov: Path, gazetteer: Gazetteer) -> pd.DataFrame:
    """One row per district, keyed by COD P-code: the groups and statistics LSHTM compiled.

    ``zone`` is LSHTM's analysis stratum (``admin0`` in districts.csv); ``settlement`` is
    ``urban`` where the district's livelihood zone is urban, else ``rural``; ``population`` and
    ``idp_share_2014`` are UNPESS 2014 figures, values unchanged.
    """
    def read(name: str) -> pd.DataFrame:  # round_trip: pandas' fast parser drops the last digits
        return pd.read_csv(cov / name, float_precision="round_trip")

    strata = read("districts.csv")[["district", "admin0"]].rename(columns={"admin0": "zone"})
    lhz = read("livelihood_zone_district.csv").rename(columns={"lhz": "livelihood"})
    pop = read("population_district.csv")
    pop = pop[pop["source_sheet"] == "pop_unpess"][["district", "pop"]].rename(columns={"pop": "population"})
    idp = read("idp_proportion_unpess_2014_district.csv").rename(columns={"prop_idps": "idp_share_2014"})
    table = strata
    for part in (lhz, pop, idp):
        if part["district"].duplicated().any() or set(part["district"]) != set(strata["district"]):
            raise ValueError(f"{cov}: the district lists of districts.csv and {list(part.columns)} differ")
        table = table.merge(part, on="district", how="left", validate="one_to_one")
    res = gazetteer.resolve(2, table["district"], None, None, ("district", ""))
    if res.bad.any():
        raise ValueError(f"{cov}: districts without a COD P-code: {res.reasons[res.bad].tolist()}")
    table["pcode"] = res.keys.to_numpy()
    if table["pcode"].duplicated().any():
        raise ValueError(f"{cov}: two LSHTM districts map to one P-code: {table[table['pcode'].duplicated(keep=False)]}")
    region = dict(zip(gazetteer.areas[AREA], gazetteer.areas[admin_name(1)]))
    table["region"] = table["pcode"].map(region)
    table["settlement"] = table["livelihood"].eq("urban").map({True: "urban", False: "rural"})
    columns = ["pcode", "region", "zone", "livelihood", "settlement", "population", "idp_share_2014"]
    return table[columns].sort_values("pcode").reset_index(drop=True)


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
