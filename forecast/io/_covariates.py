"""Context covariates: conflict events in ACLED's export layout, and any area-month table.

ACLED: each row is one event; it becomes monthly ``conflict_events`` and
``conflict_fatalities`` per area. ACLED's coverage is the whole country, so within the
file's months an area with no event has 0 events (declared by ``zero_fill``), unlike
displacement data where a missing cell is unassessed. Rows repeating an ``event_id`` are
quarantined. Areas come from admin names/P-codes or, failing those, from the event's
coordinates inside the gazetteer's polygons.

Tables: one value per area and month for each numeric column (rainfall, SPI, NDVI, prices,
terms of trade). Exact repeats keep the first row; disagreeing rows for one area-month are
all quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from forecast._names import AREA, CONFLICT_EVENTS, CONFLICT_FATALITIES, TIME
from forecast.errors import UnusableFileError
from forecast.io._areas import Gazetteer, NameKeys
from forecast.io._columns import require
from forecast.io._common import (
    ReadResult,
    Resolver,
    add_month,
    finest_level,
    long_table,
    open_file,
    quarantine_duplicates,
    resolve_areas,
)
from forecast.io._parse import parse_counts, parse_numbers
from forecast.io._privacy import assess_sensitivity
from forecast.io._rules import ValueRule
from forecast.io._source import ProgressCallback

_AREA_FIELDS = tuple(f"admin{k}_{t}" for k in (1, 2) for t in ("name", "pcode"))


def read_acled(
    path: str | Path,
    *,
    resolver: Resolver | None = None,
    columns: str | Path | None = None,
    drop_columns: tuple[str, ...] = (),
    strict_hierarchy: bool = True,
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read ACLED events (one row per event) into monthly event and fatality counts."""
    path = Path(path)
    opened = open_file(path, "acled", columns=columns, drop_columns=drop_columns, sheet=sheet, progress=progress)
    raw, names, aliases, match, dropped = opened.raw, opened.names, opened.aliases, opened.match, opened.dropped
    require(path, match, names, aliases, ("event_date", "year"), what="ACLED")
    by_point = finest_level(match) < 1
    if by_point:
        require(path, match, names, aliases, _AREA_FIELDS + ("latitude",), ("longitude",), what="ACLED")
        if not isinstance(resolver, Gazetteer) or not resolver.geometry:
            raise UnusableFileError(path, "events have coordinates but no admin names; placing them "
                                    "needs a boundary GeoJSON", hint="pass --areas som_adm2.geojson")
    if "event_date" not in match.fields:
        require(path, match, names, aliases, ("month",), what="ACLED")
    resolver = resolver if resolver is not None else NameKeys()
    ledger, frame = raw.ledger, raw.frame
    frame = add_month(frame, ledger, match, "event_date")
    fatalities = pd.Series(0.0, index=frame.index)
    if "fatalities" in match.fields:
        src = match.fields["fatalities"]
        fatalities, bad, reason = parse_counts(frame[src])
        frame = ledger.reject(frame.assign(_fat=fatalities), bad, src, reason)
    else:
        frame = frame.assign(_fat=0.0)
    if by_point:
        frame, level = _place_events(frame, ledger, match, resolver)
    else:
        frame, level = resolve_areas(frame, ledger, match, resolver, strict_hierarchy=strict_hierarchy)
    if "event_id" in match.fields:
        src = match.fields["event_id"]
        repeat = frame[src].str.strip().ne("") & frame.duplicated(src, keep="first")
        frame = ledger.reject(frame, repeat.to_numpy(), src, "duplicate event: this event_id appeared earlier")
    extra = []
    if "event_type" in match.fields:
        frame = frame.assign(event_type=frame[match.fields["event_type"]].str.strip())
        extra.append("event_type")
    table = pd.concat([
        long_table(frame, str(path), CONFLICT_EVENTS, pd.Series(1.0, index=frame.index), extra),
        long_table(frame, str(path), CONFLICT_FATALITIES, frame["_fat"], extra),
    ], ignore_index=True)
    sens, why = assess_sensitivity("acled", level, set())
    return ReadResult(
        table=table, ledger=ledger, format="acled", admin_level=level, sha256=raw.sha256,
        columns_kept=dict(match.fields), columns_dropped=match.unused, dropped_on_request=dropped,
        sensitivity=sens, sensitivity_reasons=why,
        duplicates_policy="one row per event; a repeated event_id is quarantined", zero_fill=True,
        notes=["months inside the file's range with no event count as 0 events (ACLED covers every area)"],
    )


def _place_events(frame, ledger, match, gazetteer: Gazetteer):
    lat_src, lon_src = match.fields["latitude"], match.fields["longitude"]
    lat, bad_lat = parse_numbers(frame[lat_src])
    lon, bad_lon = parse_numbers(frame[lon_src])
    bad = bad_lat | bad_lon | lat.isna().to_numpy() | lon.isna().to_numpy() | ~lat.between(-90, 90).to_numpy() | ~lon.between(-180, 180).to_numpy()
    frame = ledger.reject(frame.assign(_lat=lat, _lon=lon), bad, f"{lat_src}/{lon_src}",
                          "unreadable coordinates", values=frame[lat_src] + "," + frame[lon_src])
    level = max(gazetteer.levels)
    where = gazetteer.locate(frame["_lat"], frame["_lon"], level)
    frame = ledger.reject(frame, where.eq("").to_numpy(), f"{lat_src}/{lon_src}",
                          f"event lies in no admin{level} polygon of the gazetteer",
                          values=frame["_lat"].astype(str) + "," + frame["_lon"].astype(str))
    return frame.assign(**{AREA: where[where.ne("")]}), level


def variable_name(column: str) -> str:
    """``'Mean SPI (3m)'`` -> ``'mean_spi_3m'``."""
    return re.sub(r"[^0-9a-z]+", "_", str(column).casefold()).strip("_") or "value"


def read_table(
    path: str | Path,
    *,
    resolver: Resolver | None = None,
    columns: str | Path | None = None,
    drop_columns: tuple[str, ...] = (),
    value_columns: list[str] | None = None,
    rename: dict[str, str] | None = None,
    strict_hierarchy: bool = True,
    sheet: str | int | None = None,
    rules: Mapping[str, ValueRule] | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read an area-month table; each numeric column becomes a cube variable.

    ``value_columns`` names the columns to use (default: every column that is not an area or
    time column and whose filled cells are mostly numbers); ``rename`` maps a column to a
    variable name (default: the column name in snake case). ``rules`` (variable -> rule, see
    :func:`forecast.io.load_rules`) withhold implausible values: the value becomes missing,
    the row is kept, and the value is recorded with its reason in the result's ``withheld``.
    """
    path = Path(path)
    opened = open_file(path, "table", columns=columns, drop_columns=drop_columns, sheet=sheet, progress=progress)
    raw, names, aliases, match, dropped = opened.raw, opened.names, opened.aliases, opened.match, opened.dropped
    require(path, match, names, aliases, ("date", "year"), _AREA_FIELDS, what="area-month table")
    if "date" not in match.fields:
        require(path, match, names, aliases, ("month",), what="area-month table")
    values = _value_columns(path, raw.frame, match.unused, value_columns)
    resolver = resolver if resolver is not None else NameKeys()
    ledger, frame = raw.ledger, raw.frame
    frame = add_month(frame, ledger, match, "date")
    parsed = {}
    for col in values:
        nums, bad = parse_numbers(frame[col])
        frame = ledger.reject(frame.assign(**{f"_v{len(parsed)}": nums}), bad, col,
                              "not a number: expected a numeric value or an empty cell")
        parsed[col] = f"_v{len(parsed)}"
    all_empty = frame[list(parsed.values())].isna().all(axis=1)
    frame = ledger.reject(frame, all_empty.to_numpy(), values[0] if len(values) == 1 else "(all values)",
                          "no value: every value column is empty")
    frame, level = resolve_areas(frame, ledger, match, resolver, strict_hierarchy=strict_hierarchy)
    frame = quarantine_duplicates(frame, ledger, [AREA, TIME], list(parsed.values()), values[0])
    rename = rename or {}
    for col, tmp in parsed.items():
        rule = (rules or {}).get(rename.get(col, variable_name(col)))
        if rule is not None:
            bad, reasons = rule.check(frame, tmp)
            frame = ledger.withhold(frame, bad, tmp, col, reasons)
    if rules:
        emptied = frame[list(parsed.values())].isna().all(axis=1)
        frame = ledger.reject(frame, emptied.to_numpy(), "(all values)",
                              "no value left: every value of the row was withheld by a value rule")
    table = pd.concat([
        long_table(frame, str(path), rename.get(col, variable_name(col)), frame[tmp], [])
        for col, tmp in parsed.items()
    ], ignore_index=True)
    table = table[table["value"].notna()].reset_index(drop=True)
    sens, why = assess_sensitivity("table", level, set())
    kept = dict(match.fields) | {rename.get(c, variable_name(c)): c for c in values}
    return ReadResult(
        table=table, ledger=ledger, format="table", admin_level=level, sha256=raw.sha256,
        columns_kept=kept, columns_dropped=[c for c in match.unused if c not in values],
        dropped_on_request=dropped, sensitivity=sens, sensitivity_reasons=why,
        duplicates_policy="exact repeats of an area-month: first kept; disagreeing rows: all quarantined",
    )


def _value_columns(path, frame, candidates, declared):
    if declared is not None:
        absent = [c for c in declared if c not in frame.columns]
        if absent:
            raise UnusableFileError(path, f"value column(s) {absent} not in the file; columns: {list(frame.columns[:-1])}")
        return list(declared)
    chosen = []
    for col in candidates:
        text = frame[col].str.strip()
        filled = text[text.ne("")]
        if len(filled) and pd.to_numeric(filled, errors="coerce").notna().mean() > 0.5:
            chosen.append(col)
    if not chosen:
        raise UnusableFileError(path, f"no numeric value column besides area and time; columns: {candidates}",
                                hint="name them with value_columns=[...] / --value-column")
    return chosen


__all__ = ["read_acled", "read_table", "variable_name"]
