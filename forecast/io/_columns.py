"""Map the columns a file has onto a format's canonical fields, by an explicit alias table.

The table lives in ``columns.yaml`` beside this module and users extend it with a file of the
same layout. Matching ignores case, spaces and punctuation and nothing else: a column that is
not in the table is not guessed; an unknown layout fails listing the columns found and the
closest known names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from forecast.errors import UnusableFileError

FORMATS = ("dtm", "hxl", "flows", "acled", "table")


def normalize(name: str) -> str:
    """``'Current (Arrival) District'`` -> ``'currentarrivaldistrict'``."""
    return re.sub(r"[^0-9a-z]+", "", str(name).casefold())


@cache
def _builtin() -> dict[str, dict[str, list[str]]]:
    text = resources.files("forecast.io").joinpath("columns.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_aliases(extra: str | Path | None = None) -> dict[str, dict[str, list[str]]]:
    """The built-in alias table, extended by a user's YAML file of the same layout."""
    table = {fmt: {k: list(v) for k, v in fields.items()} for fmt, fields in _builtin().items()}
    if extra is None:
        return table
    try:
        user = yaml.safe_load(Path(extra).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as err:
        raise UnusableFileError(extra, f"cannot read the column mapping ({err})") from None
    if not isinstance(user, dict):
        raise UnusableFileError(extra, "a column mapping must be a YAML mapping format -> field -> names")
    for fmt, fields in user.items():
        if fmt not in table:
            raise UnusableFileError(extra, f"unknown format '{fmt}'; known: {sorted(table)}")
        if not isinstance(fields, dict):
            raise UnusableFileError(extra, f"'{fmt}' must map fields to lists of column names")
        for name, aliases in fields.items():
            if name not in table[fmt]:
                raise UnusableFileError(
                    extra, f"unknown field '{fmt}.{name}'; known: {sorted(table[fmt])}"
                )
            aliases = [] if aliases is None else [aliases] if isinstance(aliases, str) else aliases
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise UnusableFileError(
                    extra, f"'{fmt}.{name}' must be a column name or a list of names; got {aliases!r}"
                )
            table[fmt][name] = aliases + table[fmt][name]
    return table


@dataclass(frozen=True)
class ColumnMatch:
    """Which file column feeds which canonical field, and which columns were not used."""

    fields: dict[str, str]
    unused: list[str]

    def source(self, field: str) -> str:
        """The user's column name for a canonical field (for quarantine messages)."""
        return self.fields.get(field, field)


def match_columns(path: str | Path, columns: list[str], aliases: dict[str, list[str]]) -> ColumnMatch:
    """Find, for each canonical field, the one column of ``columns`` that carries it."""
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(normalize(col), col)
    fields: dict[str, str] = {}
    for field, names in aliases.items():
        hits = [by_norm[n] for n in dict.fromkeys(normalize(a) for a in names) if n in by_norm]
        if len(hits) > 1:
            raise UnusableFileError(
                path,
                f"columns {hits} all look like '{field}'; keep one of them",
            )
        if hits:
            fields[field] = hits[0]
    used = set(fields.values())
    return ColumnMatch(fields=fields, unused=[c for c in columns if c not in used])


def require(
    path: str | Path,
    match: ColumnMatch,
    columns: list[str],
    aliases: dict[str, list[str]],
    *groups: tuple[str, ...],
    what: str,
) -> None:
    """Raise unless, for every group, at least one field of the group was found."""
    for group in groups:
        if not any(f in match.fields for f in group):
            wanted = " or ".join(f"'{f}'" for f in group)
            known = sorted({a for f in group for a in aliases.get(f, [])})
            close = _closest(columns, known)
            raise UnusableFileError(
                path,
                f"not a {what} layout: no column for {wanted}. Columns found: {columns}. "
                f"Known names: {known[:12]}" + (f". Closest: {close}" if close else ""),
                hint="rename the column, or add its name under this field in a "
                "--columns YAML file (see forecast/io/columns.yaml)",
            )


def _closest(columns: list[str], known: list[str]) -> list[str]:
    norm_known = {normalize(k): k for k in known}
    pairs = []
    for col in columns:
        for hit in difflib.get_close_matches(normalize(col), list(norm_known), n=1, cutoff=0.6):
            pairs.append(f"'{col}' ~ '{norm_known[hit]}'")
    return pairs[:5]
