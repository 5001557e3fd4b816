"""Row accounting: every input row is either kept or quarantined with its reason.

Readers carry a private ``_row`` column (the record number a user sees: header = row 1 in a
CSV or sheet, hashtag row = row 2 in HXL, the 1-based index of a JSON record) and call
:meth:`Ledger.reject` with a boolean mask; rejected rows leave the frame at once, so a row
is quarantined for its first problem only and the counts always add up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ROW = "_row"
QUARANTINE_COLUMNS = ["source_file", "row", "field", "value", "reason"]
_MAX_VALUE_CHARS = 80


@dataclass
class Ledger:
    """Counts and quarantined records for one input file."""

    source_file: str
    rows_in: int = 0
    _records: list[pd.DataFrame] = field(default_factory=list, repr=False)
    _withheld: list[pd.DataFrame] = field(default_factory=list, repr=False)

    def reject(
        self,
        frame: pd.DataFrame,
        mask: pd.Series | np.ndarray,
        field: str,
        reason: str | pd.Series,
        values: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Quarantine ``frame[mask]`` and return the remaining rows.

        ``field`` is the column as the user's file names it; ``reason`` a sentence (or one per
        row); ``values`` the offending values (defaults to ``frame[field]`` when present).
        """
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return frame
        bad = frame.loc[mask]
        if values is None:
            values = bad[field] if field in bad.columns else pd.Series("", index=bad.index)
        else:
            values = values[mask] if len(values) == len(frame) else values
        reasons = reason[mask] if isinstance(reason, pd.Series) else reason
        self._records.append(
            pd.DataFrame(
                {
                    "source_file": self.source_file,
                    "row": bad[ROW].to_numpy(),
                    "field": field,
                    "value": np.asarray(values, dtype=object).astype(str),
                    "reason": np.asarray(reasons, dtype=object)
                    if isinstance(reasons, pd.Series)
                    else reasons,
                }
            )
        )
        return frame.loc[~mask]

    def withhold(self, frame: pd.DataFrame, mask, column: str, field: str, reason: str | pd.Series) -> pd.DataFrame:
        """Withhold the values ``frame[column][mask]`` (they become missing); the rows stay.

        ``field`` is the column as the user's file names it. Each withheld value is recorded
        like a quarantined row (file, row, field, value, reason) in :attr:`withheld`.
        """
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return frame
        bad = frame.loc[mask]
        reasons = reason[mask] if isinstance(reason, pd.Series) else reason
        self._withheld.append(pd.DataFrame({
            "source_file": self.source_file, "row": bad[ROW].to_numpy(), "field": field,
            "value": bad[column].map(lambda v: f"{v:g}").to_numpy(dtype=object),
            "reason": np.asarray(reasons, dtype=object) if isinstance(reasons, pd.Series) else reasons,
        }))
        frame = frame.copy()
        frame.loc[mask, column] = np.nan
        return frame

    def reject_rows(self, rows: list[tuple[int, str, str, str]]) -> None:
        """Quarantine rows that never became part of a frame (row, field, value, reason)."""
        if rows:
            self._records.append(
                pd.DataFrame(
                    [(self.source_file, *r) for r in rows], columns=QUARANTINE_COLUMNS
                )
            )

    @property
    def quarantine(self) -> pd.DataFrame:
        return _table(self._records)

    @property
    def withheld(self) -> pd.DataFrame:
        """Values withheld from rows that were kept (:meth:`withhold`), in row order."""
        return _table(self._withheld)

    @property
    def values_withheld(self) -> int:
        return int(sum(len(r) for r in self._withheld))

    def withheld_reasons(self) -> dict[str, int]:
        """How many values were withheld for each reason, most frequent first."""
        return _kinds(self._withheld, lambda reason: str(reason).split(" (", 1)[0])

    @property
    def rows_quarantined(self) -> int:
        return int(sum(len(r) for r in self._records))

    def reasons(self) -> dict[str, int]:
        """How many rows were quarantined for each reason, most frequent first."""
        return _kinds(self._records)


def _table(records: list[pd.DataFrame]) -> pd.DataFrame:
    if not records:
        table = pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})
        table["row"] = table["row"].astype("int64")
        return table
    table = pd.concat(records, ignore_index=True)
    table["value"] = table["value"].map(_shorten)
    table["row"] = table["row"].astype("int64")
    return table.sort_values("row", kind="stable").reset_index(drop=True)


def _kinds(records: list[pd.DataFrame], kind=None) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in records:
        counts.update(r["reason"].map(kind or _reason_kind))
    return dict(counts.most_common())


def _shorten(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _reason_kind(reason: str) -> str:
    """The stable part of a reason ('unknown area name' of 'unknown area name: ...')."""
    return str(reason).split(":", 1)[0]
