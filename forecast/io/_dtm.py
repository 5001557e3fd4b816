"""DTM admin-level IDP baseline / mobility tracking, from the DTM API or HDX (CSV, XLSX, JSON),
and the same data tagged with HXL hashtags.

An HXL file may instead hold forecasts, as ``forecast export --format hxl`` writes them: the
median of a target tagged ``#affected+<attribute>+median`` (:data:`HXL_TARGETS`) per area and
``#date+forecast`` month reads back as that target (``arrivals``, ``idp_stock``, ...); the
bounds and the threshold beside it (``+lower80``, ``+upper80``, ``+threshold``) are not read.

Dates: a row's month comes from its full reporting date (``reportingDate``, ``#date+reported``)
or, without one, from its year and month columns. The HDX DTM export tags those columns
``#date+year+reported`` and ``#date+month+reported``: the ``+year`` and ``+month`` attributes mark
parts of the reporting date, not dates of their own. Where a file has both, the full date is the
row's date and the parts are checked against it; a row whose year or month part disagrees with
its full date is quarantined naming the part's column (which of the two is right cannot be told).

Duplicate policy: DTM publishes one row per area and round. A row repeated exactly is a
re-published record: the first is kept, repeats are quarantined. Rows that share area and
round but disagree are all quarantined (which one is right cannot be told). When two rounds
report the same area in the same month, the latest round (by reporting date, then round
number) is the month's stock and the earlier rows are quarantined as superseded.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast._names import AREA, ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, TIME
from forecast.errors import UnusableFileError
from forecast.io._areas import NameKeys
from forecast.io._columns import ColumnMatch, require
from forecast.io._common import (
    ReadResult,
    Resolver,
    add_month,
    long_table,
    open_file,
    quarantine_duplicates,
    quarantine_long_cells,
    refuse_identifying,
    resolve_areas,
)
from forecast.io._ledger import ROW
from forecast.io._parse import parse_counts
from forecast.io._privacy import assess_sensitivity
from forecast.io._source import ProgressCallback, read_source

DUPLICATES_POLICY = ("exact repeats of an area-round: first kept, repeats quarantined; "
                     "conflicting rows for one area-round: all quarantined; two rounds in one "
                     "month: the latest kept, earlier ones quarantined as superseded")
_EXTRA = ["round", "operation", "assessment_type", "displacement_reason", "males", "females",
          "origin_admin1_pcode", "origin_admin1_name"]

#: The HXL attribute of each target a forecast export tags (``#affected+arrivals+median``);
#: ``idps`` is the attribute DTM files already give the stock (``#affected+idps``).
HXL_TARGETS = {ARRIVALS: "arrivals", IDP_STOCK: "idps", DEPARTURES: "departures", RETURNS: "returns"}
#: The attributes a forecast export puts beside a target's median (its 80% bounds, the trigger's
#: threshold, the window's sum): a column carrying one of them is never the target's value.
FORECAST_ATTRIBUTES = frozenset({"lower80", "upper80", "threshold", "expected"})
_NOT_A_STOCK = {"f", "m", "female", "male", "hh", "households", "children", "adults"}
#: HXL attributes that mark a column as a part of a date rather than a date.
_DATE_PARTS = frozenset({"year", "month"})

# HXL hashtag -> DTM field: (tag, attributes that must be present, attributes that must not).
HXL_FIELDS = {
    "admin0_pcode": [("#country", {"code"}, set()), ("#adm0", {"code"}, set())],
    "admin0_name": [("#country", {"name"}, set()), ("#adm0", {"name"}, set())],
    "admin1_pcode": [("#adm1", {"code"}, set())],
    "admin1_name": [("#adm1", {"name"}, set()), ("#adm1", set(), {"code"})],
    "admin2_pcode": [("#adm2", {"code"}, set())],
    "admin2_name": [("#adm2", {"name"}, set()), ("#adm2", set(), {"code"})],
    "idp_stock": [("#affected", {"idps"}, _NOT_A_STOCK | FORECAST_ATTRIBUTES),
                  ("#population", {"idps"}, {"f", "m", "female", "male", "hh", "households"} | FORECAST_ATTRIBUTES)],
    # a forecast export's median of a flow target (an idp_stock median is #affected+idps+median, above)
    **{target: [("#affected", {attribute, "median"}, set(FORECAST_ATTRIBUTES))]
       for target, attribute in HXL_TARGETS.items() if target != IDP_STOCK},
    "males": [("#affected", {"idps", "m"}, {"f"}), ("#affected", {"idps", "male"}, set())],
    "females": [("#affected", {"idps", "f"}, {"m"}), ("#affected", {"idps", "female"}, set())],
    # +year and +month mark parts of a date (HDX DTM: #date+year+reported), checked against the date
    "reporting_date": [("#date", {"reported"}, set(_DATE_PARTS)), ("#date", {"forecast"}, set(_DATE_PARTS)),
                       ("#date", set(), {*_DATE_PARTS, "start", "end"})],
    "year": [("#date", {"year"}, set())],
    "month": [("#date", {"month"}, set())],
    "round": [("#round", set(), set()), ("#meta", {"round"}, set())],
    # the HDX DTM export tags operationStatus #operation+status beside #operation+name
    "operation": [("#operation", set(), {"status"}), ("#meta", {"operation"}, set())],
    "assessment_type": [("#meta", {"assessment"}, set()), ("#assessment", {"type"}, set())],
    "displacement_reason": [("#cause", set(), set())],
}
#: The fields an HXL file's counts may be read as: DTM's stock, or a forecast export's median.
_VALUE_FIELDS = (IDP_STOCK, *(t for t in HXL_TARGETS if t != IDP_STOCK))


def read_dtm(
    path: str | Path,
    *,
    resolver: Resolver | None = None,
    columns: str | Path | None = None,
    drop_columns: tuple[str, ...] = (),
    strict_hierarchy: bool = True,
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read a DTM IDP baseline / mobility tracking export (CSV, XLSX or JSON).

    Parameters
    ----------
    path : path of the file; JSON may be the API envelope ``{"isSuccess", "result"}`` or a list.
    resolver : a :class:`~forecast.io.Gazetteer`, or None to key areas by name.
    columns : a YAML file extending the column-name table (``forecast/io/columns.yaml``).
    drop_columns : columns to drop before anything is read (needed for identifying columns).
    strict_hierarchy : quarantine rows whose admin2 does not lie in their admin1.

    Examples
    --------
    >>> res = read_dtm("dtm_round_export.csv")  # doctest: +SKIP
    >>> res.table.query("variable == 'idp_stock'").head()  # doctest: +SKIP
    """
    path = Path(path)
    opened = open_file(path, "dtm", columns=columns, drop_columns=drop_columns, sheet=sheet, progress=progress)
    return _read(path, opened.raw, opened.match, opened.aliases, opened.dropped, resolver, strict_hierarchy, "dtm")


def read_hxl(
    path: str | Path,
    *,
    resolver: Resolver | None = None,
    drop_columns: tuple[str, ...] = (),
    strict_hierarchy: bool = True,
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read an HXL-tagged DTM table: columns are mapped by hashtag (row 2), not header text.

    Hashtags are parsed with the HXL standard's own library (``libhxl``), so attribute order
    and spacing (``#adm1 +code``) do not matter.
    """
    path = Path(path)
    raw = read_source(path, header_rows=2, sheet=sheet, progress=progress)
    dropped = refuse_identifying(raw, path, drop_columns)
    names = [c for c in raw.frame.columns if c != ROW]
    tags = raw.frame.attrs.get("hxl_tags") or []
    if not any(str(t).strip().startswith("#") for t in tags):
        raise UnusableFileError(path, "row 2 holds no HXL hashtags (#adm1+code, #affected+idps, ...)",
                                hint="use --format dtm for a file without a hashtag row")
    match = _match_hxl(path, names, tags)
    raw.frame = quarantine_long_cells(raw.frame, raw.ledger, list(dict.fromkeys(match.fields.values())))
    aliases = {f: [spec[0] + "".join("+" + a for a in sorted(spec[1])) for spec in specs]
               for f, specs in HXL_FIELDS.items()}
    return _read(path, raw, match, aliases, dropped, resolver, strict_hierarchy, "hxl")


def _match_hxl(path: Path, names: list[str], tags: list[str]) -> ColumnMatch:
    import hxl  # libhxl pulls in an HTTP stack; load it only for HXL files

    parsed = []
    for tag in tags:
        try:
            col = (hxl.model.Column.parse(str(tag).strip(), use_exception=True)
                   if str(tag).strip().startswith("#") else None)
        except (hxl.HXLException, ValueError):
            col = None
        parsed.append(col)
    fields: dict[str, str] = {}
    for field, specs in HXL_FIELDS.items():
        hits = [name for name, col in zip(names, parsed) if col is not None and any(
            col.tag == tag and need <= set(col.attributes) and not (forbid & set(col.attributes))
            for tag, need, forbid in specs)]
        if len(hits) > 1:
            raise UnusableFileError(path, f"columns {hits} all carry the hashtag for '{field}'; keep one")
        if hits:
            fields[field] = hits[0]
    used = set(fields.values())
    return ColumnMatch(fields=fields, unused=[n for n in names if n not in used])


def _read(path, raw, match, aliases, dropped, resolver, strict_hierarchy, fmt) -> ReadResult:
    names = [c for c in raw.frame.columns if c != ROW]
    what = "DTM HXL" if fmt == "hxl" else "DTM"
    require(path, match, names, aliases, _VALUE_FIELDS if fmt == "hxl" else (IDP_STOCK,), ("reporting_date", "year"),
            ("admin1_name", "admin1_pcode", "admin2_name", "admin2_pcode"), what=what)
    if "reporting_date" not in match.fields:
        require(path, match, names, aliases, ("month",), what=what)
    variable = _value_field(path, match)
    resolver = resolver if resolver is not None else NameKeys()
    ledger, frame = raw.ledger, raw.frame
    frame = add_month(frame, ledger, match, "reporting_date", forecast=_forecast_months(raw, match))
    frame = _check_date_parts(frame, ledger, match)
    src = match.fields[variable]
    counts, bad, reason = parse_counts(frame[src])
    frame = ledger.reject(frame.assign(_value=counts), bad, src, reason)
    for opt in ("males", "females"):
        if opt in match.fields:
            col = match.fields[opt]
            vals, bad, reason = parse_counts(frame[col])
            bad = bad & frame[col].str.strip().ne("").to_numpy()
            frame = ledger.reject(frame.assign(**{opt: vals}), bad, col, reason)
    frame, level = resolve_areas(frame, ledger, match, resolver, strict_hierarchy=strict_hierarchy)
    extra = [f for f in _EXTRA if f in match.fields]
    for f in extra:
        if f not in ("males", "females"):
            frame = frame.assign(**{f: frame[match.fields[f]].str.strip()})
    frame = quarantine_duplicates(frame, ledger, [AREA, "round"] if "round" in extra else [AREA, TIME],
                                  ["_value"], match.source("round" if "round" in extra else variable))
    frame = _latest_round_per_month(frame, ledger, match)
    table = long_table(frame, str(path), variable, frame["_value"], extra)
    kept = {f: c for f, c in match.fields.items()}
    level_sens, why = assess_sensitivity("dtm", level, set(extra))
    return ReadResult(
        table=table, ledger=ledger, format=fmt, admin_level=level, sha256=raw.sha256,
        columns_kept=kept, columns_dropped=match.unused, dropped_on_request=dropped,
        sensitivity=level_sens, sensitivity_reasons=why, duplicates_policy=DUPLICATES_POLICY,
        notes=(["stock observed in round months only; months between rounds stay missing"] if variable == IDP_STOCK
               else [f"{variable}: the median forecasts of a forecast export, per area and forecast month"]),
    )


def _forecast_months(raw, match: ColumnMatch) -> bool:
    """Whether the file's dates are a forecast's own months (an export's ``#date+forecast``),
    which may lie ahead of today, unlike an observation's."""
    tags = raw.frame.attrs.get("hxl_tags") or []
    names = [c for c in raw.frame.columns if c != ROW]
    tag = dict(zip(names, tags)).get(match.fields.get("reporting_date", ""), "")
    return "+forecast" in str(tag).replace(" ", "").casefold()


def _check_date_parts(frame: pd.DataFrame, ledger, match: ColumnMatch) -> pd.DataFrame:
    """Quarantine rows whose year or month column disagrees with their full reporting date.

    Only where a file has both: the row's month (already read from the full date, or from the
    parts where the date cell was empty) is compared with each part. An empty part says nothing
    and is not checked; a part that is not a year or month is a disagreement too.
    """
    if "reporting_date" not in match.fields or frame.empty:
        return frame
    date_col = match.fields["reporting_date"]
    for part in ("year", "month"):
        if part not in match.fields:
            continue
        col = match.fields[part]
        text = frame[col].astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce")
        if part == "month":  # 'March' or 'Mar' as well as '3', as months_from_parts reads them
            names = pd.to_datetime(text.str[:3].str.title(), format="%b", errors="coerce").dt.month
            number = number.fillna(names)
        expected = getattr(frame[TIME].dt, part)
        bad = text.ne("") & number.ne(expected)
        if not bad.any():
            continue
        reason = (f"date part disagrees with the date: {col} is the {part} of {date_col} "
                  + frame[date_col].astype(str).str.strip() + f" ({part} " + expected.astype(str)
                  + "); which is right cannot be told: fix the row, or drop the column with --drop-column "
                  + col)
        frame = ledger.reject(frame, bad.to_numpy(), col, reason)
    return frame


def _value_field(path: Path, match: ColumnMatch) -> str:
    """The one field the file's counts are read as; a file with several (a stock and a forecast
    median, or two medians) is refused: one file, one variable."""
    found = [f for f in _VALUE_FIELDS if f in match.fields]
    if len(found) > 1:
        raise UnusableFileError(path, "columns " + ", ".join(f"{match.fields[f]!r} ({f})" for f in found)
                                + " each carry a variable to read; a DTM HXL file holds one: keep one column")
    return found[0]


def _latest_round_per_month(frame: pd.DataFrame, ledger, match: ColumnMatch) -> pd.DataFrame:
    if not frame.duplicated([AREA, TIME]).any():
        return frame
    order = [TIME]
    if "reporting_date" in match.fields:
        frame = frame.assign(_day=frame[match.fields["reporting_date"]].str.strip())
        order.append("_day")
    if "round" in frame.columns:
        frame = frame.assign(_round=pd.to_numeric(frame["round"].str.extract(r"(\d+)")[0], errors="coerce"))
        order.append("_round")
    frame = frame.sort_values([AREA] + order + [ROW], kind="stable")
    later = frame.duplicated([AREA, TIME], keep="last")
    last_round = frame.groupby([AREA, TIME])["round" if "round" in frame.columns else ROW].transform("last")
    field = match.source("round" if "round" in frame.columns else "reporting_date")
    frame = ledger.reject(frame, later.to_numpy(), field,
                          "superseded: a later round (" + last_round.astype(str) + ") reports this area in the same month")
    return frame.drop(columns=[c for c in ("_day", "_round") if c in frame.columns]).sort_values(ROW)
