"""Rebuild the shipped Somalia sample from the raw public files (maintainers only).

    python -m forecast.datasets._build_somalia ../shared/data

What is shipped, and why it is safe to ship (see data/somalia/README.md):

* PRMN arrivals aggregated to month x arrival district x departure district x reason
  (the week, the priority need and the row-level records are dropped);
* rainfall per district-month (FAO SWALIM via LSHTM), 2016-2018;
* conflict-event and fatality COUNTS per district-month computed from ACLED events, 2016-2018
  (never the event rows: ACLED restricts their redistribution);
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
FIRST_YEAR, LAST_YEAR = 2016, 2018


def build(shared: Path) -> None:
    prmn = pd.read_csv(shared / "somalia-prmn" / "prmn_arrivals_2016-01_2023-12.csv", dtype=str,
                       keep_default_na=False)
    keys = ["Month End", "Current (Arrival) Region", "Current (Arrival) District",
            "Previous (Departure) Region", "Previous (Departure) District", "Reason"]
    prmn["Number of Individuals"] = prmn["Number of Individuals"].astype(int)
    flows = prmn.groupby(keys, as_index=False)["Number of Individuals"].sum()
    flows.to_csv(HERE / "prmn_flows_district_month.csv", index=False)

    cov = shared / "somalia-district-covariates"
    rain = pd.read_csv(cov / "rainfall_mm_district_month.csv")
    rain = rain[rain["y"].between(FIRST_YEAR, LAST_YEAR)][["district", "y", "m", "rainfall"]]
    rain.sort_values(["district", "y", "m"]).to_csv(HERE / "rainfall_district_month.csv", index=False)

    events = pd.read_csv(cov / "acled_events_district.csv")
    events = events[events["y"].between(FIRST_YEAR, LAST_YEAR)].copy()
    # The LSHTM copy spells some districts two ways ('Oodweyne'/'Owdweyne', 'balcad'/'Balcad'):
    # count per P-code, so one district is one row. Names the gazetteer lacks stay as they are
    # (with no P-code) and are quarantined on ingest, as a user would see them.
    gazetteer = Gazetteer.from_file(shared / "somalia-boundaries" / "som_adm2.geojson", aliases=HERE / "aliases.csv")
    names = pd.Series(sorted(events["district"].unique()))
    pcodes = gazetteer.resolve(2, names, None, None, ("district", "")).keys
    pcode_of = dict(zip(names, pcodes))
    cod_name = dict(zip(gazetteer.areas[AREA], gazetteer.areas[AREA_NAME]))
    events["admin2Pcode"] = events["district"].map(pcode_of)
    events["district"] = [cod_name.get(p, d) for p, d in zip(events["admin2Pcode"], events["district"])]
    counts = events.groupby(["admin2Pcode", "district", "y", "m"]).agg(
        conflict_events=("acled_event", "sum"), conflict_fatalities=("acled_fatalities", "sum"))
    # ACLED covers every district: a district-month without events is a true 0.
    places = counts.index.droplevel(["y", "m"]).unique()
    months = [(y, m) for y in range(FIRST_YEAR, LAST_YEAR + 1) for m in range(1, 13)]
    full = pd.MultiIndex.from_tuples([(p, d, y, m) for p, d in places for y, m in months], names=counts.index.names)
    counts = counts.reindex(full, fill_value=0).astype(int).reset_index()
    counts.to_csv(HERE / "conflict_district_month.csv", index=False)
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
