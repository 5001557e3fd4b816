"""Flow monitoring / arrival tracking records: people moving from an origin to a destination.

UNHCR Somalia's PRMN file is the reference layout. Duplicate policy: rows are separate
records even when every field repeats (PRMN drops the settlement column, so two settlements
reporting the same movement look identical): all rows are kept and summed.
"""

from __future__ import annotations

import re
from pathlib import Path

from forecast._names import FLOWS
from forecast.io._areas import NameKeys
from forecast.io._columns import require
from forecast.io._common import (
    ReadResult,
    Resolver,
    add_month,
    long_table,
    open_file,
    resolve_areas,
)
from forecast.io._parse import parse_counts
from forecast.io._privacy import assess_sensitivity
from forecast.io._source import ProgressCallback

DUPLICATES_POLICY = "identical rows are separate records (e.g. different settlements): all kept and summed"

# Reason labels seen in real files -> canonical reason. Unknown labels keep their own name.
REASONS = {
    "drought": "drought", "droughtrelated": "drought", "drought related": "drought",
    "conflictinsecurity": "conflict", "conflict": "conflict", "insecurity": "conflict",
    "flood": "flood", "floods": "flood", "flooding": "flood",
    "other": "other", "others": "other",
}


def canonical_reason(label: str) -> str:
    """``'Conflict/Insecurity'`` -> ``'conflict'``; an empty label -> ``'not_stated'``."""
    key = re.sub(r"[^0-9a-z]+", "", str(label).casefold())
    if not key:
        return "not_stated"
    return REASONS.get(key, re.sub(r"[^0-9a-z]+", "_", str(label).casefold()).strip("_"))


def read_flows(
    path: str | Path,
    *,
    resolver: Resolver | None = None,
    columns: str | Path | None = None,
    drop_columns: tuple[str, ...] = (),
    strict_hierarchy: bool = True,
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> ReadResult:
    """Read origin-to-destination movement records and keep them as monthly flows.

    The long table has ``variable == "flows"``, ``area`` = destination, ``origin``, and
    ``reason`` (canonical: drought, conflict, flood, other, not_stated) and ``priority_need``
    where the file has them. The cube sums them into ``flows``, ``arrivals``, ``departures``
    and ``arrivals_by_reason``.

    Examples
    --------
    >>> res = read_flows("prmn_arrivals_2016-01_2023-12.csv", resolver=gazetteer)  # doctest: +SKIP
    >>> res.ledger.rows_in == res.rows_kept + res.ledger.rows_quarantined  # doctest: +SKIP
    True
    """
    path = Path(path)
    opened = open_file(path, "flows", columns=columns, drop_columns=drop_columns, sheet=sheet, progress=progress)
    raw, names, aliases, match, dropped = opened.raw, opened.names, opened.aliases, opened.match, opened.dropped
    dest = tuple(f"destination_admin{k}_{t}" for k in (1, 2) for t in ("name", "pcode"))
    orig = tuple(f"origin_admin{k}_{t}" for k in (1, 2) for t in ("name", "pcode"))
    require(path, match, names, aliases, ("individuals",), ("date", "year"), dest, orig, what="flow monitoring")
    if "date" not in match.fields:
        require(path, match, names, aliases, ("month",), what="flow monitoring")
    resolver = resolver if resolver is not None else NameKeys()
    ledger, frame = raw.ledger, raw.frame
    frame = add_month(frame, ledger, match, "date")
    src = match.fields["individuals"]
    counts, bad, reason = parse_counts(frame[src])
    frame = ledger.reject(frame.assign(_value=counts), bad, src, reason)
    frame, level = resolve_areas(frame, ledger, match, resolver, prefix="destination_",
                                 strict_hierarchy=strict_hierarchy)
    frame, origin_level = resolve_areas(frame, ledger, match, resolver, prefix="origin_", key="origin",
                                        strict_hierarchy=strict_hierarchy)
    notes = []
    if origin_level != level:
        notes.append(f"origins are at admin{origin_level}, destinations at admin{level}")
    extra = ["origin"]
    if "reason" in match.fields:
        labels = frame[match.fields["reason"]]
        frame = frame.assign(reason=labels.map({v: canonical_reason(v) for v in labels.unique()}))
        extra.append("reason")
    if "priority_need" in match.fields:
        frame = frame.assign(priority_need=frame[match.fields["priority_need"]].str.strip())
        extra.append("priority_need")
    table = long_table(frame, str(path), FLOWS, frame["_value"], extra)
    sens, why = assess_sensitivity("flows", min(level, origin_level), set())
    return ReadResult(
        table=table, ledger=ledger, format="flows", admin_level=level, sha256=raw.sha256,
        columns_kept=dict(match.fields), columns_dropped=match.unused, dropped_on_request=dropped,
        sensitivity=sens, sensitivity_reasons=why, duplicates_policy=DUPLICATES_POLICY, notes=notes,
    )


__all__ = ["read_flows", "canonical_reason"]
