"""IOM DTM Somalia IDP stock rounds, 2016-2018, per district and month (the shipped stock sample).

The source lists one row per settlement, district and round (IOM DTM Somalia, as compiled by
LSHTM: ``idp_iom_dtm_district_round.csv`` of ``francescochecchi/mortality_small_area_estimation``,
see ``data/somalia/README.md``). What ships is its sum per district and month. Rebuild it with

    python -m forecast.datasets._somalia_dtm ../shared/data

Every source row is accounted for: summed into a district-month, or dropped with a reason
(:func:`aggregate_dtm` returns both, and the build prints the tally).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import xarray as xr

from forecast.datasets._somalia import ALIASES, ATTRIBUTES, DATA, GAZETTEER

DTM_FILE = DATA / "dtm_idp_district_month.csv"
SOURCE = Path("somalia-district-covariates") / "idp_iom_dtm_district_round.csv"
#: Columns of the shipped file: ``date`` is the month (YYYY-MM) the round assessed the district,
#: ``source_round`` the DTM round, ``idps`` the settlements' sum and ``source_rows`` how many rows
#: (settlements) were summed. ``source_round`` is not called ``round`` on purpose: the source's
#: rounds span several months, and the DTM reader takes a ``round`` column as one month per area.
COLUMNS = ["district", "date", "source_round", "idps", "source_rows"]
#: Rows dropped on the way, by reason, as the build found them (2018 snapshot of the source);
#: tests check ``source_rows`` + these = the source's 5,062 rows.
DROPPED = {"superseded: a later round assessed the district in the same month": 6}
SOURCE_ROWS = 5062


def aggregate_dtm(raw: pd.DataFrame, known: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum the source's settlement rows per district, month and round; keep one round per month.

    Parameters
    ----------
    raw : the source table (columns ``round, y, m, district, idps``; others are ignored).
    known : district names the gazetteer resolves; rows naming another are dropped. None keeps all.

    Returns
    -------
    (table, dropped)
        ``table`` has :data:`COLUMNS`, one row per district and month, sorted; ``dropped`` holds
        the source rows not used, with a ``reason`` column. ``table["source_rows"].sum() +
        len(dropped) == len(raw)``.
    """
    frame = raw.assign(district=raw["district"].astype(str).str.strip(),  # 'Ceel Afweyn ' -> 'Ceel Afweyn'
                       date=[f"{int(y)}-{int(m):02d}" for y, m in zip(raw["y"], raw["m"])])
    idps = pd.to_numeric(frame["idps"], errors="coerce")
    reasons = pd.Series("", index=frame.index)
    reasons[idps.isna() | (idps < 0)] = "idps missing or negative"
    if known is not None:
        reasons[(reasons == "") & ~frame["district"].isin(known)] = "district not in the gazetteer"
    frame = frame.assign(idps=idps)
    kept = reasons == ""
    latest = frame[kept].groupby(["district", "date"])["round"].transform("max")
    superseded = pd.Series(False, index=frame.index)
    superseded[latest.index] = frame.loc[latest.index, "round"] < latest
    reasons[superseded] = "superseded: a later round assessed the district in the same month"
    dropped = raw[reasons != ""].assign(reason=reasons[reasons != ""])
    used = frame[reasons == ""]
    table = (used.groupby(["district", "date", "round"], as_index=False)
             .agg(idps=("idps", "sum"), source_rows=("idps", "size"))
             .rename(columns={"round": "source_round"}))
    table["idps"] = table["idps"].astype("int64")
    return table[COLUMNS].sort_values(["date", "district"]).reset_index(drop=True), dropped


def ingest_somalia_dtm():
    """Ingest the shipped DTM stock file with the sample's gazetteer, aliases and attributes
    (the toolkit's own DTM reader); returns :class:`forecast.pipeline.Ingested`."""
    from forecast.pipeline import ingest

    return ingest([DTM_FILE], "dtm", areas=GAZETTEER, aliases=ALIASES, attributes=ATTRIBUTES)


def load_somalia_dtm() -> xr.Dataset:
    """IOM DTM Somalia IDP stock per district and month, 2016-01 to 2018-09: 74 districts x 33 months.

    ``idp_stock`` (with ``idp_stock_observed``) is the number of IDPs DTM counted in a district in
    the month of a round, summed over its settlements; NaN in every other month and for every
    district a round did not assess. The rounds are patchy: most cover 1-10 districts, two
    (2017-05, 2017-09) cover 21 and 34. The area coordinates are those of
    :func:`load_somalia` (COD P-codes, names, regions and the sample's district attributes), so
    the two cubes can be compared or joined. Source, what was aggregated and the licence
    statement: ``forecast/datasets/data/somalia/README.md``.

    Example::

        from forecast.datasets import load_somalia_dtm
        cube = load_somalia_dtm()
        rounds = cube["idp_stock_observed"].sum("time")  # rounds per district
    """
    cube = ingest_somalia_dtm().cube
    cube.attrs["source"] = "IOM DTM Somalia (via LSHTM), district-month sums of settlement rounds"
    return cube


def build_dtm(shared: Path) -> None:
    """Write :data:`DTM_FILE` from the source in ``shared`` and print how every row was used."""
    from forecast.io import Gazetteer

    raw = pd.read_csv(shared / SOURCE)
    gazetteer = Gazetteer.from_file(GAZETTEER, aliases=ALIASES)
    names = pd.Series(sorted(raw["district"].astype(str).str.strip().unique()))
    resolved = gazetteer.resolve(2, names, None, None, ("district", ""))
    table, dropped = aggregate_dtm(raw, known=set(names[~resolved.bad]))
    table.to_csv(DTM_FILE, index=False)
    print(f"{len(raw):,} source rows ({int(raw['idps'].sum()):,} IDPs): "
          f"{int(table['source_rows'].sum()):,} summed into {len(table):,} district-months "
          f"({int(table['idps'].sum()):,} IDPs), {len(dropped):,} dropped")
    for reason, part in dropped.groupby("reason"):
        print(f"  {reason}: {len(part):,} rows, {int(part['idps'].sum()):,} IDPs")
        print(part.to_string(index=False))


__all__ = ["load_somalia_dtm", "ingest_somalia_dtm", "aggregate_dtm", "DTM_FILE"]


if __name__ == "__main__":
    build_dtm(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
