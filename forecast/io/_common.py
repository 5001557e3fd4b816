"""Steps every reader shares: open, refuse identifying columns, map columns, parse time,
resolve areas, apply the duplicate policy, and account for every row."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._names import AREA, TIME
from forecast.errors import IdentifyingDataError
from forecast.io._areas import Gazetteer, NameKeys
from forecast.io._columns import ColumnMatch, load_aliases, match_columns
from forecast.io._ledger import ROW, Ledger
from forecast.io._limits import current_limits
from forecast.io._parse import months_from_parts, parse_months
from forecast.io._privacy import find_identifying
from forecast.io._source import RawTable, read_source

Resolver = Gazetteer | NameKeys
LONG_COLUMNS = [AREA, TIME, "variable", "value"]


@dataclass
class ReadResult:
    """What a reader returns: the canonical long table, the quarantine and the file's record.

    ``table`` has ``area, time, variable, value`` plus the source columns the format keeps
    (``origin``, ``reason``, ``round``, ...) and ``source_file, source_row``.
    """

    table: pd.DataFrame
    ledger: Ledger
    format: str
    admin_level: int
    sha256: str
    columns_kept: dict[str, str]
    columns_dropped: list[str]
    dropped_on_request: dict[str, str]
    sensitivity: str
    sensitivity_reasons: list[str]
    duplicates_policy: str
    zero_fill: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def quarantine(self) -> pd.DataFrame:
        return self.ledger.quarantine

    @property
    def rows_kept(self) -> int:
        return int(self.table["source_row"].nunique())


def refuse_identifying(
    raw: RawTable, path: Path, drop_columns: tuple[str, ...] | list[str]
) -> dict[str, str]:
    """Drop the columns the user asked to drop; refuse the file if others identify people."""
    frame = raw.frame
    columns = [c for c in frame.columns if c != ROW]
    tags = frame.attrs.get("hxl_tags")
    # A drop request for a column this file lacks is not an error: one --drop-column serves
    # several files, and a misspelt one cannot let an identifying column through (see below).
    found = find_identifying(columns, tags)
    dropped = {c: found.get(c, "dropped on request") for c in drop_columns if c in columns}
    left = {c: why for c, why in found.items() if c not in dropped}
    if left:
        raise IdentifyingDataError(path, left)
    if dropped:
        keep = [i for i, c in enumerate(frame.columns) if c not in dropped]
        raw.frame = frame.iloc[:, keep]
        if tags:
            raw.frame.attrs["hxl_tags"] = [t for c, t in zip(columns, tags) if c not in dropped]
    return dropped


@dataclass
class Opened:
    """A file read as text, its identifying columns handled and its columns matched."""

    raw: RawTable
    names: list[str]
    aliases: dict[str, list[str]]
    match: ColumnMatch
    dropped: dict[str, str]


def open_file(path: Path, fmt: str, *, columns, drop_columns, sheet, progress) -> Opened:
    """The first steps of every reader but HXL's: read, refuse identifying columns, match."""
    raw = read_source(path, sheet=sheet, progress=progress)
    dropped = refuse_identifying(raw, path, drop_columns)
    names = [c for c in raw.frame.columns if c != ROW]
    aliases = load_aliases(columns)[fmt]
    match = match_columns(path, names, aliases)
    raw.frame = quarantine_long_cells(raw.frame, raw.ledger, list(dict.fromkeys(match.fields.values())))
    return Opened(raw, names, aliases, match, dropped)


def quarantine_long_cells(frame: pd.DataFrame, ledger: Ledger, columns: list[str]) -> pd.DataFrame:
    """Quarantine rows whose kept cells hold more text than the limit (``max_cell_chars``): no
    name, date or count is that long, and such a cell would be carried into the cube whole.
    The quarantine keeps the value's start and its length, not the whole text."""
    most = current_limits().max_cell_chars
    for col in columns:
        if col not in frame.columns or frame.empty:
            continue
        length = frame[col].str.len()
        long = (length > most).to_numpy()
        if long.any():
            reason = (f"a value longer than {most:,} characters: " + length.map("{:,}".format)
                      + " characters (limit max_cell_chars; override: --limit max_cell_chars=N)")
            frame = ledger.reject(frame, long, col, reason, values=frame[col].str.slice(0, 80))
    return frame


def add_month(frame: pd.DataFrame, ledger: Ledger, match: ColumnMatch, date_field: str, *,
              forecast: bool = False) -> pd.DataFrame:
    """Parse the row's month from a date column, or from year and month columns; a date outside
    the limits in force (:class:`~forecast.io.Limits`) quarantines its row with the rule's name.
    ``forecast``: the dates are a forecast's own months, which may lie ahead of today."""
    if date_field in match.fields:
        src = match.fields[date_field]
        months, bad, reason = parse_months(frame[src], forecast=forecast)
        empty = frame[src].str.strip().eq("").to_numpy()
        if empty.any() and "year" in match.fields and "month" in match.fields:
            alt, alt_bad, alt_reason = months_from_parts(frame[match.fields["year"]], frame[match.fields["month"]],
                                                         forecast=forecast)
            months = months.where(~empty, alt)
            bad = np.where(empty, alt_bad, bad)
            reason = reason.where(~empty, alt_reason)
        frame = frame.assign(**{TIME: months})
        return ledger.reject(frame, bad, src, reason)
    ysrc, msrc = match.fields["year"], match.fields["month"]
    months, bad, reason = months_from_parts(frame[ysrc], frame[msrc], forecast=forecast)
    frame = frame.assign(**{TIME: months})
    return ledger.reject(frame, bad, f"{ysrc}/{msrc}", reason, values=frame[ysrc] + "/" + frame[msrc])


def finest_level(match: ColumnMatch, prefix: str = "") -> int:
    """The finest admin level a file gives for an area (0 when none)."""
    levels = [k for k in range(5) if f"{prefix}admin{k}_name" in match.fields or f"{prefix}admin{k}_pcode" in match.fields]
    return max(levels, default=-1)


def resolve_areas(
    frame: pd.DataFrame,
    ledger: Ledger,
    match: ColumnMatch,
    resolver: Resolver,
    *,
    prefix: str = "",
    key: str = AREA,
    strict_hierarchy: bool = True,
) -> tuple[pd.DataFrame, int]:
    """Resolve each row's area, level by level from the coarsest given, into column ``key``."""
    level = finest_level(match, prefix)
    parents = None
    for k in range(1, level + 1):
        name_f, pcode_f = f"{prefix}admin{k}_name", f"{prefix}admin{k}_pcode"
        if name_f not in match.fields and pcode_f not in match.fields:
            continue
        names = frame[match.fields[name_f]] if name_f in match.fields else None
        pcodes = frame[match.fields[pcode_f]] if pcode_f in match.fields else None
        res = resolver.resolve(k, names, pcodes, parents,
                               (match.fields.get(name_f, ""), match.fields.get(pcode_f, "")),
                               strict_hierarchy=strict_hierarchy)
        bad = res.bad
        if bad.any():
            for fld in res.fields[bad].unique():
                sel = bad & res.fields.eq(fld).to_numpy()
                values = frame[fld] if fld in frame.columns else None
                frame = ledger.reject(frame, sel, fld, res.reasons, values=values)
                keep = ~sel
                res = type(res)(res.keys[keep], res.reasons[keep], res.fields[keep])
                bad = bad[keep]
        parents = res.keys
    frame = frame.assign(**{key: parents})
    return frame, level


def quarantine_duplicates(
    frame: pd.DataFrame, ledger: Ledger, key: list[str], value_columns: list[str], field: str
) -> pd.DataFrame:
    """Exact repeats of a key (same values) keep the first row; a key whose rows disagree is
    quarantined whole, since picking one would be a guess."""
    if frame.empty:
        return frame
    dup_key = frame.duplicated(key, keep=False)
    if not dup_key.any():
        return frame
    sub = frame[dup_key]
    distinct = sub.groupby(key, dropna=False)[value_columns].nunique(dropna=False).max(axis=1)
    conflicting = sub.set_index(key).index.isin(distinct[distinct > 1].index)
    conflict_mask = pd.Series(False, index=frame.index)
    conflict_mask[sub.index[conflicting]] = True
    first_row = frame.groupby(key, dropna=False)[ROW].transform("min")
    reason = "conflicting duplicate: rows " + frame.groupby(key, dropna=False)[ROW].transform(
        lambda r: ", ".join(map(str, r.head(5)))).astype(str) + " give different values for the same key"
    frame = ledger.reject(frame, conflict_mask.to_numpy(), field, reason)
    repeat = frame.duplicated(key + value_columns, keep="first")
    return ledger.reject(frame, repeat.to_numpy(), field,
                         "duplicate row: same key and values as row " + first_row[frame.index].astype(str))


def long_table(frame: pd.DataFrame, source: str, variable: str, values: pd.Series, extra: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({AREA: frame[AREA].to_numpy(), TIME: frame[TIME].to_numpy(),
                        "variable": variable, "value": values.to_numpy(dtype="float64")})
    for col in extra:
        out[col] = frame[col].to_numpy()
    out["source_file"] = source
    out["source_row"] = frame[ROW].to_numpy()
    return out
