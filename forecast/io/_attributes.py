"""Area attributes: one row per area (region, access, settlement, population, ...).

They become coordinates along the cube's ``area`` dim and serve as fairness groups. A row
is keyed by ``pcode`` or by ``name`` (resolved like every other file: gazetteer names,
alternative names and the alias table). Every row is used or quarantined with its reason:
an unknown area, an area at another admin level than the cube's, or a later row for an area
already given (the first row is kept). A column whose kept values all read as numbers (or are
empty) is numeric, NaN where empty; any other column is text, ``""`` where empty. Areas the
table does not list get NaN / ``""``: a table may cover part of the country.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, AREA_NAME, DESTINATION, ORIGIN, REASON, TIME
from forecast.errors import DataQualityWarning, UnusableFileError
from forecast.io._areas import Gazetteer, name_key
from forecast.io._columns import normalize
from forecast.io._common import Resolver, quarantine_long_cells, refuse_identifying
from forecast.io._covariates import variable_name
from forecast.io._ledger import ROW, Ledger
from forecast.io._parse import parse_numbers
from forecast.io._source import ProgressCallback, read_source

KEYS = ("pcode", "name")
# The cube's own area coordinates and dims: an attribute of that name would shadow them.
RESERVED = ("pcode", "name", "admin_level", "parent_pcode", "area", AREA_NAME, "neighbours",
            TIME, ORIGIN, DESTINATION, REASON)
_RESERVED_KEYS = {normalize(r) for r in RESERVED}
_ADMIN_COLUMN = re.compile(r"admin\d+(pcode|name)")
_UNNAMED = "(unnamed column "
NUMBER, TEXT = "number", "text"


@dataclass
class AreaAttributes:
    """What :func:`read_attributes` returns: typed attributes per area and the file's record.

    ``table`` is indexed by area key with one column per attribute (float64 for numbers,
    text otherwise); ``kinds`` says which. The remaining fields are those of a
    :class:`~forecast.io.ReadResult` that the manifest records.
    """

    table: pd.DataFrame
    kinds: dict[str, str]
    ledger: Ledger
    admin_level: int
    sha256: str
    columns_kept: dict[str, str]
    columns_dropped: list[str]
    dropped_on_request: dict[str, str]
    format: str = "attributes"
    sensitivity: str = "low"
    sensitivity_reasons: list[str] = field(
        default_factory=lambda: ["area attributes (one row per area, no people)"])
    duplicates_policy: str = "one row per area: the first is kept, later rows for the same area are quarantined"
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.ledger.source_file

    @property
    def quarantine(self) -> pd.DataFrame:
        return self.ledger.quarantine

    @property
    def rows_kept(self) -> int:
        return len(self.table)

    def coords(self, areas) -> dict[str, tuple[str, np.ndarray]]:
        """One coordinate along ``area`` per attribute, aligned to ``areas`` (NaN / "" where absent)."""
        index = pd.Index(np.asarray(areas).astype(str))
        out = {}
        for name, kind in self.kinds.items():
            column = self.table[name].reindex(index)
            if kind == NUMBER:
                out[name] = (AREA, column.to_numpy(dtype="float64"))
            else:
                out[name] = (AREA, np.asarray(column.fillna("").to_numpy(dtype=object)).astype(str))
        return out

    def assign_to(self, cube: xr.Dataset) -> xr.Dataset:
        """``cube`` with the attributes as coordinates along ``area``; refuses a name it already uses."""
        clash = [name for name in self.kinds if name in cube.variables]
        if clash:
            listed = ", ".join(f"'{self.columns_kept[c]}' (as '{c}')" for c in clash)
            raise UnusableFileError(
                self.path, f"column(s) {listed} already name(s) a variable or coordinate of the cube "
                "(a gazetteer CSV's own attribute columns, for example)",
                hint="rename the column in one of the files, or drop it with --drop-column")
        return cube.assign_coords(self.coords(cube[AREA].values))


def read_attributes(
    path: str | Path,
    resolver: Resolver,
    level: int,
    *,
    drop_columns: tuple[str, ...] | list[str] = (),
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> AreaAttributes:
    """Read a table of per-area attributes keyed by ``pcode`` or ``name`` at admin ``level``.

    Parameters
    ----------
    path : CSV, XLSX or JSON file with a ``pcode`` and/or ``name`` column and one column per
        attribute.
    resolver : the gazetteer (or name keys) the cube's areas come from.
    level : the cube's admin level; rows naming an area of another level are quarantined.
    drop_columns : columns to drop before reading (identifying columns are refused otherwise).

    Examples
    --------
    >>> gaz = Gazetteer.from_file("som_adm2.geojson", aliases="aliases.csv")  # doctest: +SKIP
    >>> attrs = read_attributes("area_attributes.csv", gaz, level=2)  # doctest: +SKIP
    >>> cube = attrs.assign_to(cube)  # doctest: +SKIP
    """
    path = Path(path)
    raw = read_source(path, sheet=sheet, progress=progress)
    dropped = refuse_identifying(raw, path, drop_columns)
    frame, ledger = raw.frame, raw.ledger
    keys, attributes, unused = _split_columns(path, frame)
    frame = quarantine_long_cells(frame, ledger, [*keys.values(), *attributes])
    notes = []
    if not isinstance(resolver, Gazetteer) and "pcode" in keys:
        if "name" not in keys:
            raise UnusableFileError(path, f"areas are keyed by name (no gazetteer), so the P-codes in "
                                    f"column '{keys['pcode']}' cannot be matched; add a 'name' column",
                                    hint="or give the gazetteer the other files were read with (--areas)")
        unused.append(keys.pop("pcode"))
        notes.append(f"column '{unused[-1]}' not used: without a gazetteer areas are keyed by name")
    frame = _resolve_rows(frame, ledger, resolver, level, keys)
    known = resolver.areas_at(level)
    frame = _drop_repeats(frame, ledger, keys.get("pcode"), keys.get("name"),
                          dict(zip(known[AREA], known[AREA_NAME])))
    table, kinds = _typed(path, frame, attributes)
    listed = ", ".join(f"{name} ({kind})" for name, kind in kinds.items())
    notes.append(f"attributes: {listed}; text is '' and numbers are NaN where the file has no value")
    areas = known[AREA].astype(str)
    missing = int((~areas.isin(table.index)).sum())
    if missing:
        notes.append(f"{missing} of {len(areas)} admin{level} areas have no row: their attributes are NaN / ''")
    return AreaAttributes(
        table=table, kinds=kinds, ledger=ledger, admin_level=int(level), sha256=raw.sha256,
        columns_kept={k: keys[k] for k in KEYS if k in keys} | {variable_name(c): c for c in attributes},
        columns_dropped=unused, dropped_on_request=dropped, notes=notes,
    )


def _split_columns(path: Path, frame: pd.DataFrame) -> tuple[dict[str, str], list[str], list[str]]:
    """(key field -> column, attribute columns, unused columns), refusing reserved or clashing names."""
    columns = [c for c in frame.columns if c != ROW]
    unnamed = [c for c in columns if c.startswith(_UNNAMED)]
    filled = [c for c in unnamed if frame[c].str.strip().ne("").any()]
    if filled:
        raise UnusableFileError(path, f"{filled[0]} has values but no name in the header row",
                                hint="name the column: its name becomes the attribute's name")
    by_name: dict[str, str] = {}
    for col in (c for c in columns if c not in unnamed):
        name = variable_name(col)
        if name in by_name:
            raise UnusableFileError(path, f"columns '{by_name[name]}' and '{col}' both give '{name}'; keep one")
        by_name[name] = col
    keys = {k: by_name.pop(k) for k in KEYS if k in by_name}
    if not keys:
        raise UnusableFileError(path, f"an area attributes table needs a 'pcode' or 'name' column to say which "
                                f"area each row is; columns found: {columns}")
    for name, col in by_name.items():
        norm = normalize(col)
        if norm in _RESERVED_KEYS or _ADMIN_COLUMN.fullmatch(norm):
            raise UnusableFileError(
                path, f"column '{col}' cannot be an area attribute: the name is reserved for the cube's own "
                f"area coordinates and dims ({', '.join(RESERVED)}, admin<k>_pcode, admin<k>_name)",
                hint=f"rename the column, or drop it with --drop-column '{col}'; areas are keyed by "
                "a 'pcode' or 'name' column")
    if not by_name:
        raise UnusableFileError(path, f"no attribute columns besides the area key; columns found: {columns}")
    return keys, list(by_name.values()), unnamed


def _resolve_rows(frame: pd.DataFrame, ledger: Ledger, resolver: Resolver, level: int,
                  keys: dict[str, str]) -> pd.DataFrame:
    """The rows whose area resolves at ``level``, with its key in ``area``; the others quarantined."""
    names = frame[keys["name"]] if "name" in keys else None
    pcodes = frame[keys["pcode"]] if "pcode" in keys else None
    found, reasons, fields = _resolve(resolver, level, names, pcodes, (keys.get("name", ""), keys.get("pcode", "")))
    frame = frame.assign(**{AREA: found})
    bad = reasons.ne("").to_numpy()
    for fld in pd.unique(fields[bad]):
        sel = bad & fields.eq(fld).to_numpy()
        frame = ledger.reject(frame, sel, fld, reasons)
        bad, fields, reasons = bad[~sel], fields[~sel], reasons[~sel]
    return frame


def _resolve(resolver: Resolver, level: int, names, pcodes, fields: tuple[str, str]):
    """(area key, reason, failing field) per row; reasons say when an area is at another level."""
    if isinstance(resolver, Gazetteer):
        res = resolver.resolve(level, names, pcodes, None, fields, strict_hierarchy=False)
        keys, reasons, where = res.keys.copy(), res.reasons.copy(), res.fields.copy()
        display = dict(zip(resolver.areas[AREA], resolver.areas[AREA_NAME]))
        for other in (k for k in resolver.levels if k != level):
            bad = reasons.ne("") & ~reasons.str.startswith("area at another admin level")
            if not bad.any():
                break
            sub = resolver.resolve(other, None if names is None else names[bad],
                                   None if pcodes is None else pcodes[bad], None, fields, strict_hierarchy=False)
            hit = sub.keys[~sub.bad]
            reasons[hit.index] = [f"area at another admin level: {display[p]} ({p}) is an admin{other} area; "
                                  f"the cube's areas are admin{level}" for p in hit]
        return keys, reasons, where
    return _resolve_by_name(resolver, level, names, fields[0])


def _resolve_by_name(resolver, level: int, names: pd.Series, name_field: str):
    """Name keys without a gazetteer: match the cube's key ('Bay/Baidoa') or a unique area name."""
    def lookup(k: int) -> dict[str, set[str]]:
        table, found = resolver.areas_at(k), {}
        for key, name in zip(table[AREA], table[AREA_NAME]):
            found.setdefault(name_key(key), set()).add(key)
            found.setdefault(name_key(name), set()).add(key)
        return found

    here = lookup(level)
    others = {k: lookup(k) for k in resolver.levels if k != level}
    keys, reasons = [], []
    for name in names.fillna("").astype(str):
        hits = here.get(name_key(name), set()) if name.strip() else set()
        elsewhere = [k for k, table in others.items() if name_key(name) in table]
        if len(hits) == 1:
            keys.append(next(iter(hits)))
            reasons.append("")
            continue
        keys.append("")
        if not name.strip():
            reasons.append(f"missing area: no admin{level} name")
        elif hits:
            reasons.append(f"ambiguous area name: '{name}' matches admin{level} areas {', '.join(sorted(hits))}")
        elif elsewhere:
            reasons.append(f"area at another admin level: '{name}' is an admin{elsewhere[0]} area; "
                           f"the cube's areas are admin{level}")
        else:
            reasons.append(f"unknown area name: '{name}' matches no admin{level} area of the cube")
    index = names.index
    return (pd.Series(keys, index=index, dtype=object), pd.Series(reasons, index=index, dtype=object),
            pd.Series(name_field, index=index, dtype=object))


def _drop_repeats(frame: pd.DataFrame, ledger: Ledger, pcode_field, name_field, names: dict) -> pd.DataFrame:
    """Keep the first row of each area; quarantine later ones under the column that named them."""
    repeat = frame.duplicated(AREA, keep="first").to_numpy()
    if not repeat.any():
        return frame
    first = frame.groupby(AREA, sort=False)[ROW].transform("min").astype(str)
    shown = [f"{names[a]} ({a})" if names.get(a, a) != a else f"'{a}'" for a in frame[AREA]]
    reason = pd.Series([f"duplicate area: {area} is given first in row {row}; later rows for it are not used"
                        for area, row in zip(shown, first)], index=frame.index, dtype=object)
    by_pcode = (frame[pcode_field].str.strip().ne("").to_numpy() if pcode_field
                else np.zeros(len(frame), dtype=bool))
    named_by = np.where(by_pcode, pcode_field or "", name_field or "")
    for fld in pd.unique(named_by[repeat]):
        sel = repeat & (named_by == fld)
        frame = ledger.reject(frame, sel, fld, reason)
        reason, repeat, named_by = reason[~sel], repeat[~sel], named_by[~sel]
    return frame


def _typed(path: Path, frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Attribute columns of the kept rows: numbers where every value reads as one, else text."""
    index = pd.Index(frame[AREA].astype(str).to_numpy(), name=AREA)
    data, kinds = {}, {}
    for col in columns:
        text = frame[col].astype(str).str.strip()
        numbers, bad = parse_numbers(text)
        name = variable_name(col)
        if not bad.any():
            # float() gives the double nearest the written decimal; pandas' fast parser can be
            # a last digit off (0.00015052344528096456 -> 0.0001505234452809).
            exact = [_exact(t, n) for t, n in zip(text, numbers)]
            data[name], kinds[name] = pd.Series(exact, index=index, dtype="float64"), NUMBER
            continue
        filled = numbers.notna().sum() + int(bad.sum())
        if numbers.notna().sum() > filled / 2:
            first = int(np.flatnonzero(bad)[0])
            warnings.warn(
                f"{path}: column '{col}' is kept as text because row {frame[ROW].iloc[first]} has "
                f"'{text.iloc[first]}', which is not a number ({int(bad.sum())} of {filled} values are not); "
                "fix those values if the column is numeric", DataQualityWarning, stacklevel=3)
        data[name], kinds[name] = pd.Series(text.to_numpy(dtype=object), index=index, dtype=object), TEXT
    return pd.DataFrame(data, index=index), kinds


def _exact(text: str, number: float) -> float:
    if number != number:  # missing
        return number
    try:
        return float(text)
    except ValueError:  # a form pandas reads and Python does not: keep pandas' reading
        return number


__all__ = ["AreaAttributes", "read_attributes"]
