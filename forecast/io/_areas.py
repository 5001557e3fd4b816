"""The gazetteer: which areas exist, their P-codes, names, levels and parents.

Names are matched to P-codes through the gazetteer's own names, the alternative names a COD
boundary file lists, and an explicit alias table; matching ignores case, accents, spaces and
punctuation and nothing more. A name that matches no area, or several, is not guessed: the
row is quarantined with the reason. Without a gazetteer, areas are keyed by name
(``"Bay/Baidoa"`` for an admin2 area inside admin1 ``Bay``) and the manifest says so.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    AREA_NAME,
    PARENT_PCODE,
    admin_name,
    admin_pcode,
)
from forecast.errors import UnusableFileError
from forecast.io._columns import normalize
from forecast.io._source import file_sha256

AREA_COLUMNS = [AREA, AREA_NAME, ADMIN_LEVEL, PARENT_PCODE]
_NAME_KEYS = ("admin{k}Name", "ADM{k}_EN", "adm{k}_name", "ADM{k}_NAME", "admin{k}_name")
_PCODE_KEYS = ("admin{k}Pcod", "admin{k}Pcode", "ADM{k}_PCODE", "adm{k}_pcode", "admin{k}_pcode")
_ALT_PREFIXES = ("admin{k}AltN", "admin{k}Al_", "admin{k}RefN", "ADM{k}_ALT", "ADM{k}_REF")


def name_key(name: object) -> str:
    """Matching key of a place name: no case, accents, spaces or punctuation."""
    text = unicodedata.normalize("NFKD", str(name))
    return normalize("".join(c for c in text if not unicodedata.combining(c)))


def _distinct_rows(frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple]]:
    """(codes, distinct rows in order of appearance) of a frame of strings, empty frames too.

    pandas 2 cannot build a MultiIndex from an empty frame, and a batch whose rows were all
    rejected earlier is empty.
    """
    if frame.empty:
        return np.zeros(0, dtype=np.intp), []
    # column by column: a row's key is its combination so far, renumbered after each column so
    # that it stays below the number of rows (tuples of millions of rows take ten times longer)
    key = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        values, labels = pd.factorize(frame[column], use_na_sentinel=False)
        key, _ = pd.factorize(key * len(labels) + values)
    first = np.unique(key, return_index=True)[1]  # the keys count rows' combinations in order of appearance
    return key.astype(np.intp), list(frame.iloc[first].itertuples(index=False, name=None))


@dataclass
class Resolution:
    """Area keys for a batch of rows, with a reason and the failing field where unresolved."""

    keys: pd.Series
    reasons: pd.Series
    fields: pd.Series

    @property
    def bad(self) -> np.ndarray:
        return self.reasons.ne("").to_numpy()


@dataclass
class Gazetteer:
    """Areas with P-codes, loaded from a CSV or a COD-style boundary GeoJSON.

    Parameters
    ----------
    areas : DataFrame
        ``area`` (P-code), ``area_name``, ``admin_level``, ``parent_pcode`` and any group
        columns (``region``, ``access``, ``settlement``, ...).
    aliases : DataFrame, optional
        ``alias``, ``pcode`` (and optionally ``source``): explicit spelling variants.

    Examples
    --------
    >>> gaz = Gazetteer.from_file("som_adm2.geojson", aliases="aliases.csv")  # doctest: +SKIP
    >>> gaz.areas_at(2).shape[0]  # doctest: +SKIP
    74
    """

    areas: pd.DataFrame
    aliases: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["alias", "pcode", "source"]))
    source: str = ""
    sha256: str = ""
    geometry: dict[str, list] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.areas = _with_ancestors(self.areas.reset_index(drop=True))
        self._by_pcode = self.areas.set_index(AREA)
        self._by_name: dict[tuple[int, str], set[str]] = {}
        for pcode, name, level in zip(self.areas[AREA], self.areas[AREA_NAME], self.areas[ADMIN_LEVEL]):
            self._by_name.setdefault((int(level), name_key(name)), set()).add(pcode)
        for alias, pcode in zip(self.aliases["alias"], self.aliases["pcode"]):
            if pcode not in self._by_pcode.index:
                raise UnusableFileError(
                    self.source or "aliases", f"alias '{alias}' points to unknown P-code '{pcode}'"
                )
            level = int(self._by_pcode.at[pcode, ADMIN_LEVEL])
            self._by_name.setdefault((level, name_key(alias)), set()).add(pcode)

    @classmethod
    def from_file(cls, path: str | Path, aliases: str | Path | None = None) -> Gazetteer:
        """Load a gazetteer CSV (``pcode,name,admin_level,parent_pcode``) or COD GeoJSON."""
        path = Path(path)
        if not path.is_file():
            raise UnusableFileError(path, "no such gazetteer file")
        if path.suffix.casefold() in {".geojson", ".json"}:
            areas, alt, geometry = _read_geojson(path)
        else:
            areas, alt, geometry = _read_gazetteer_csv(path), _empty_aliases(), {}
        table = pd.concat([alt, read_aliases(aliases)], ignore_index=True) if aliases else alt
        return cls(areas=areas, aliases=table, source=str(path), sha256=file_sha256(path),
                   geometry=geometry)

    @property
    def levels(self) -> list[int]:
        return sorted(self.areas[ADMIN_LEVEL].unique().tolist())

    def areas_at(self, level: int) -> pd.DataFrame:
        """The areas of one admin level, with ancestor P-codes and names as columns."""
        return self.areas[self.areas[ADMIN_LEVEL] == level].sort_values(AREA).reset_index(drop=True)

    def resolve(
        self,
        level: int,
        names: pd.Series | None,
        pcodes: pd.Series | None,
        parents: pd.Series | None,
        fields: tuple[str, str],
        *,
        strict_hierarchy: bool = True,
    ) -> Resolution:
        """P-codes at ``level`` for rows given by P-code and/or name, checked against parents.

        ``parents`` are already-resolved P-codes of the level above (or None); ``fields`` the
        user's column names for (name, P-code), used in reasons.
        """
        index = (names if names is not None else pcodes).index
        names = names.fillna("") if names is not None else pd.Series("", index=index)
        pcodes = pcodes.fillna("").str.strip() if pcodes is not None else pd.Series("", index=index)
        parents = parents if parents is not None else pd.Series("", index=index)
        combos = pd.DataFrame({"n": names, "p": pcodes, "q": parents})
        # Few distinct (name, P-code, parent) combinations, many rows: resolve each once.
        codes, uniq = _distinct_rows(combos.astype(str))
        answers = [self._resolve_one(level, n, p, q, fields, strict_hierarchy) for n, p, q in uniq]
        # Indexed per position, not zip(*answers): a batch with no rows has no answers.
        keys, reasons, where = (np.asarray([a[i] for a in answers], dtype=object)[codes] for i in range(3))
        return Resolution(*(pd.Series(x, index=index, dtype=object) for x in (keys, reasons, where)))

    def _resolve_one(self, level, name, pcode, parent, fields, strict):
        name_field, pcode_field = fields
        if pcode:
            if pcode not in self._by_pcode.index or int(self._by_pcode.at[pcode, ADMIN_LEVEL]) != level:
                return "", f"unknown P-code: '{pcode}' is not an admin{level} area in {self._label}", pcode_field
            return self._check_parent(pcode, parent, strict, pcode_field)
        if not str(name).strip():
            return "", f"missing area: no admin{level} name or P-code", name_field or pcode_field
        hits = self._by_name.get((level, name_key(name)), set())
        if not hits:
            return "", (f"unknown area name: '{name}' matches no admin{level} area in "
                        f"{self._label}; add it to an alias table if it is a spelling variant"), name_field
        if parent:
            inside = {h for h in hits if self._by_pcode.at[h, PARENT_PCODE] == parent}
            if len(inside) == 1:
                return inside.pop(), "", ""
            if not inside and len(hits) == 1:
                return self._check_parent(next(iter(hits)), parent, strict, name_field)
        if len(hits) > 1:
            listed = ", ".join(sorted(hits))
            return "", f"ambiguous area name: '{name}' matches admin{level} areas {listed}", name_field
        return next(iter(hits)), "", ""

    def _check_parent(self, pcode, parent, strict, field_name):
        actual = self._by_pcode.at[pcode, PARENT_PCODE]
        if parent and strict and actual != parent:
            return "", (f"admin hierarchy: {self._named(pcode)} lies in {self._named(actual)} in "
                        f"{self._label}, not in {self._named(parent)} as the row says"), field_name
        return pcode, "", ""

    def _named(self, pcode: str) -> str:
        if pcode in self._by_pcode.index:
            return f"{self._by_pcode.at[pcode, AREA_NAME]} ({pcode})"
        return pcode or "no parent"

    @property
    def _label(self) -> str:
        return Path(self.source).name if self.source else "the gazetteer"

    def neighbours(self, pcodes, *, decimals: int = 5) -> dict[str, list[str]]:
        """Areas that share a border: at least two boundary vertices in common.

        COD boundaries of one level are drawn edge to edge, so bordering polygons carry the
        same vertices; one shared vertex alone (a corner touching) does not make neighbours.
        Areas without geometry get no neighbours.
        """
        wanted = [str(p) for p in pcodes]
        owners: dict[tuple, set[str]] = {}
        for pcode in wanted:
            for polygon in self.geometry.get(pcode, []):
                for ring in polygon:
                    for vertex in map(tuple, np.round(np.asarray(ring, float), decimals)):
                        owners.setdefault(vertex, set()).add(pcode)
        shared: dict[tuple[str, str], int] = {}
        for group in owners.values():
            if len(group) > 1:
                for a in group:
                    for b in group:
                        if a < b:
                            shared[(a, b)] = shared.get((a, b), 0) + 1
        out: dict[str, list[str]] = {p: [] for p in wanted}
        for (a, b), n in shared.items():
            if n >= 2:
                out[a].append(b)
                out[b].append(a)
        return {p: sorted(v) for p, v in out.items()}

    def locate(self, lat: pd.Series, lon: pd.Series, level: int) -> pd.Series:
        """P-code of the ``level`` polygon containing each point ('' where none does)."""
        from matplotlib.path import Path as MplPath

        out = pd.Series("", index=lat.index, dtype=object)
        pts = np.column_stack([lon.to_numpy(float), lat.to_numpy(float)])
        todo = np.ones(len(pts), dtype=bool)
        for pcode in self.areas_at(level)[AREA]:
            for rings in self.geometry.get(pcode, []):
                inside = MplPath(rings[0]).contains_points(pts[todo])
                for hole in rings[1:]:
                    inside &= ~MplPath(hole).contains_points(pts[todo])
                idx = np.flatnonzero(todo)[inside]
                out.iloc[idx] = pcode
                todo[idx] = False
        return out


def _empty_aliases() -> pd.DataFrame:
    return pd.DataFrame({"alias": pd.Series(dtype=object), "pcode": pd.Series(dtype=object),
                         "source": pd.Series(dtype=object)})


def read_aliases(path: str | Path) -> pd.DataFrame:
    """An alias table: CSV with ``alias`` and ``pcode`` columns (``note`` optional)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UnusableFileError(path, f"cannot read the alias table ({err})") from None
    missing = {"alias", "pcode"} - set(table.columns)
    if missing:
        raise UnusableFileError(path, f"an alias table needs columns alias, pcode; missing {sorted(missing)}")
    table = table[["alias", "pcode"]].assign(source=path.name)
    return table[table["alias"].str.strip().ne("")].reset_index(drop=True)


def _read_gazetteer_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UnusableFileError(path, f"cannot read the gazetteer ({err})") from None
    need = ["pcode", "name", "admin_level"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise UnusableFileError(
            path, f"a gazetteer CSV needs columns {need} (+ parent_pcode); missing {missing}; "
            f"found {list(table.columns)}")
    levels = pd.to_numeric(table["admin_level"], errors="coerce")
    if levels.isna().any() or (levels % 1 != 0).any():
        row = int(np.flatnonzero(levels.isna() | (levels % 1 != 0))[0]) + 2
        raise UnusableFileError(path, f"row {row}: admin_level must be a whole number")
    out = table.rename(columns={"pcode": AREA, "name": AREA_NAME})
    out[ADMIN_LEVEL] = levels.astype("int64")
    if PARENT_PCODE not in out.columns:
        out[PARENT_PCODE] = ""
    _check_areas(path, out)
    return out


def _read_geojson(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        features = data["features"]
        props = [f.get("properties") or {} for f in features]
        if not all(isinstance(p, dict) for p in props):
            raise TypeError("feature properties must be objects")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise UnusableFileError(path, f"not a GeoJSON FeatureCollection ({err})") from None
    except RecursionError:
        raise UnusableFileError(path, "nests its JSON too deeply to be a GeoJSON FeatureCollection") from None
    keys = set().union(*map(set, props)) if props else set()
    found = {}
    for k in range(5):
        pk = next((t.format(k=k) for t in _PCODE_KEYS if t.format(k=k) in keys), None)
        nk = next((t.format(k=k) for t in _NAME_KEYS if t.format(k=k) in keys), None)
        if pk:
            found[k] = (pk, nk)
    if not found:
        raise UnusableFileError(
            path, "no admin P-code properties (admin1Pcode, ADM1_PCODE, ...) in the features")
    rows, aliases, geometry = {}, [], {}
    finest = max(found)
    for number, (feat, p) in enumerate(zip(features, props), start=1):
        for key in (k for pair in found.values() for k in pair if k):
            if p.get(key) is not None and not isinstance(p.get(key), str | int):
                raise UnusableFileError(path, f"feature {number}: property '{key}' is a "
                                        f"{type(p[key]).__name__}, not a code or name: {str(p[key])[:60]}")
        parent = ""
        for k in sorted(found):
            pk, nk = found[k]
            pcode = str(p.get(pk) or "").strip()
            if not pcode:
                continue
            rows.setdefault(pcode, (pcode, str(p.get(nk) or pcode).strip(), k, parent))
            parent = pcode
        pcode = str(p.get(found[finest][0]) or "").strip()
        if pcode and pcode in geometry:
            raise UnusableFileError(path, f"feature {number}: P-code '{pcode}' ({found[finest][0]}) is "
                                    "already another feature's; two areas cannot share a P-code")
        for prefix in _ALT_PREFIXES:
            for key in (key for key in p if key.startswith(prefix.format(k=finest))):
                for alt in str(p.get(key) or "").split(","):
                    if alt.strip():
                        aliases.append((alt.strip(), pcode, f"{path.name}:{key}"))
        try:
            geometry[pcode] = _rings(feat.get("geometry") or {})
        except (AttributeError, TypeError, ValueError, IndexError) as err:
            raise UnusableFileError(path, f"feature '{pcode}': unreadable geometry ({err})") from None
    areas = pd.DataFrame(list(rows.values()), columns=AREA_COLUMNS)
    areas[ADMIN_LEVEL] = areas[ADMIN_LEVEL].astype("int64")
    _check_areas(path, areas)
    alias_table = pd.DataFrame(aliases, columns=["alias", "pcode", "source"])
    return areas, alias_table, geometry


def _rings(geom: dict) -> list:
    kind, coords = geom.get("type"), geom.get("coordinates") or []
    polys = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    rings = [[np.asarray(ring, dtype=float) for ring in poly] for poly in polys if poly]
    if any(r.ndim != 2 or r.shape[1] < 2 for poly in rings for r in poly):
        raise ValueError("coordinates must be lists of [longitude, latitude] positions")
    return [[r[:, :2] for r in poly] for poly in rings]


#: What a P-code may look like: letters and digits (COD: ``SO2401``, ``ET0101``, ``NG001001``),
#: with ``-``, ``_`` or ``.`` inside; never a space, bracket or quote (a list read as text).
PCODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}"


def _check_areas(path: Path, areas: pd.DataFrame) -> None:
    dup = areas[AREA][areas[AREA].duplicated()]
    if len(dup):
        raise UnusableFileError(path, f"P-codes listed twice: {sorted(set(dup))[:10]}")
    odd = areas[AREA][~areas[AREA].astype(str).str.fullmatch(PCODE_PATTERN)]
    if len(odd):
        raise UnusableFileError(path, f"not P-codes (letters and digits, with - _ or . inside): "
                                f"{[str(v)[:60] for v in odd[:5]]}")
    # Each parent lies at a coarser level than its child: an area that is its own parent, or a
    # cycle of parents, is refused here rather than followed for ever.
    level = dict(zip(areas[AREA], areas[ADMIN_LEVEL]))
    parent_level = areas[PARENT_PCODE].map(level)
    upside = parent_level.notna() & (parent_level >= areas[ADMIN_LEVEL])
    if upside.any():
        row = areas[upside].iloc[0]
        raise UnusableFileError(
            path, f"'{row[AREA]}' (admin{row[ADMIN_LEVEL]}) names '{row[PARENT_PCODE]}' "
            f"(admin{int(level[row[PARENT_PCODE]])}) as its parent; a parent lies at a coarser admin level"
            + (" (an area cannot be its own parent)" if row[AREA] == row[PARENT_PCODE] else ""))
    # A parent outside the table is fine for the top level given (e.g. admin2 rows naming
    # admin1 P-codes), but an area below the top must have its parent listed.
    missing = ~areas[PARENT_PCODE].isin(areas[AREA]) & areas[PARENT_PCODE].ne("")
    below_top = areas[ADMIN_LEVEL] > areas[ADMIN_LEVEL].min()
    if (missing & below_top).any():
        bad = sorted(set(areas.loc[missing & below_top, PARENT_PCODE]))[:10]
        raise UnusableFileError(path, f"parent P-codes that are not areas: {bad}")


def _with_ancestors(areas: pd.DataFrame) -> pd.DataFrame:
    """Add admin{k}_pcode / admin{k}_name columns for every level above each area."""
    parent = dict(zip(areas[AREA], areas[PARENT_PCODE]))
    level = dict(zip(areas[AREA], areas[ADMIN_LEVEL]))
    names = dict(zip(areas[AREA], areas[AREA_NAME]))
    out = areas.copy()
    for k in sorted(set(areas[ADMIN_LEVEL]))[:-1] if len(set(areas[ADMIN_LEVEL])) > 1 else []:
        col_p, col_n = admin_pcode(k), admin_name(k)
        anc = []
        for pcode in out[AREA]:
            cur = pcode
            while cur and level.get(cur, -1) > k:
                cur = parent.get(cur, "")
            anc.append(cur if level.get(cur) == k else "")
        out[col_p] = anc
        out[col_n] = [names.get(a, "") for a in anc]
    return out


class NameKeys:
    """Areas keyed by name when no gazetteer is given (``"Bay/Baidoa"`` for admin2).

    Rows giving P-codes are keyed by P-code. The areas seen are collected across files so
    that the cube can list them; an area seen under two different parents is a hierarchy
    conflict and the later rows are quarantined.
    """

    source = ""
    sha256 = ""
    geometry: dict = {}

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int, str]] = {}

    def resolve(self, level, names, pcodes, parents, fields, *, strict_hierarchy=True) -> Resolution:
        index = (names if names is not None else pcodes).index
        combos = pd.DataFrame({
            "n": names.fillna("").str.strip() if names is not None else "",
            "p": pcodes.fillna("").str.strip() if pcodes is not None else "",
            "q": parents if parents is not None else "",
        }, index=index).astype(str)
        # Few distinct areas, many rows: work on distinct combinations in order of appearance.
        codes, uniq = _distinct_rows(combos)
        uniq = pd.DataFrame(list(uniq), columns=["n", "p", "q"])
        res = self._resolve_distinct(level, uniq["n"], uniq["p"], uniq["q"], fields, strict_hierarchy)
        return Resolution(*(pd.Series(s.to_numpy()[codes], index=index, dtype=object)
                            for s in (res.keys, res.reasons, res.fields)))

    def _resolve_distinct(self, level, names, pcodes, parents, fields, strict_hierarchy) -> Resolution:
        index = names.index
        keys = pcodes.where(pcodes.ne(""), np.where(parents.ne(""), parents + "/" + names, names))
        keys = keys.where(pcodes.ne("") | names.ne(""), "")
        reasons = pd.Series("", index=index, dtype=object)
        where = pd.Series("", index=index, dtype=object)
        reasons[keys.eq("")] = f"missing area: no admin{level} name or P-code"
        where[keys.eq("")] = fields[0] or fields[1]
        odd = pcodes.ne("") & ~pcodes.str.fullmatch(PCODE_PATTERN)
        reasons[odd] = f"not a P-code: letters and digits, with - _ or . inside (admin{level})"
        where[odd] = fields[1]
        keys = keys.where(~odd, "")
        display = names.where(names.ne(""), pcodes)
        for key, name, parent in pd.DataFrame({"k": keys, "n": display, "p": parents})[keys.ne("")].drop_duplicates("k").itertuples(index=False):
            self._seen.setdefault(key, (name, level, parent))
        # Built as text directly: mapping onto no known area would give float NaN, not "".
        parent_of = {k: parent for k, (_, _, parent) in self._seen.items()}
        known_parent = pd.Series([parent_of.get(k, "") for k in keys], index=index, dtype=object)
        clash = keys.ne("") & parents.ne("") & known_parent.ne(parents) & strict_hierarchy
        reasons[clash] = ("admin hierarchy: area '" + keys[clash] + "' was first seen under '"
                          + known_parent[clash] + "', this row puts it under '" + parents[clash] + "'")
        where[clash] = fields[1] if pcodes.ne("").any() else fields[0]
        return Resolution(keys.where(reasons.eq(""), ""), reasons, where)

    @property
    def levels(self) -> list[int]:
        return sorted({lvl for _, lvl, _ in self._seen.values()})

    def areas_at(self, level: int) -> pd.DataFrame:
        rows = [(k, n, lvl, p) for k, (n, lvl, p) in self._seen.items()]
        table = pd.DataFrame(rows, columns=AREA_COLUMNS)
        table[ADMIN_LEVEL] = table[ADMIN_LEVEL].astype("int64")
        table = _with_ancestors(table)
        return table[table[ADMIN_LEVEL] == level].sort_values(AREA).reset_index(drop=True)
