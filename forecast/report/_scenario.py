"""A scenario beside the baseline, as the forecast report shows it.

A scenario (``forecast scenario``, logged under the train run) is read back as its published
table; this module picks what a reader needs: the shocks in words, the districts whose
probability or expected arrivals moved most, and which would start or stop signalling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast._names import AREA, AREA_NAME
from forecast.report._changes import _truth

__all__ = ["scenario_section"]


def scenario_section(table: pd.DataFrame, trigger: str, lead: int, *, top: int = 15) -> dict:
    """What the report shows of a scenario: what was changed, what it did, the districts it moved most.

    Parameters
    ----------
    table : DataFrame
        A scenario's published table as :func:`forecast.tracking.read_scenario` returns it
        (``attrs["scenario"]``: its shocks, months, areas and notes; ``attrs["run_id"]``).
    trigger, lead
        The report's; a scenario compared on another trigger or lead is shown with a note.
    top : int
        Rows for this many districts: those whose probability or expected arrivals moved most
        (the shocked districts first among equals), then any whose signal changed.

    Returns
    -------
    dict
        ``name, describe, shocks, said`` (the shocks in words), ``months, notes, run_id, rows``
        (records), ``moved`` (districts whose signal changed: ``started``, ``stopped``) and
        ``n_shocked``.
    """
    meta = dict(table.attrs.get("scenario", {}))
    notes = list(meta.get("notes", []))
    if meta.get("trigger") not in (None, trigger) or (meta.get("lead") is not None and int(meta["lead"]) != lead):
        notes.append(f"this scenario compares the trigger {meta.get('trigger')!r} at lead {meta.get('lead')}, "
                     f"not the report's {trigger!r} at lead {lead}")
    frame = table.copy()
    if "status" in frame:  # an unassessed district has no forecast to act on, in either column
        assessed = frame["status"].astype(str).str.startswith("ok")
        if (~assessed).any():
            notes.append(f"{int((~assessed).sum())} unassessed district(s) (no recent data or no threshold) are "
                         "left out, as in the ranking")
        frame = frame[assessed]
    lo, hi = tuple(meta.get("interval") or ("q0.1", "q0.9"))
    for side in ("baseline", "scenario"):
        frame[f"{side}_lower"] = frame.get(f"{side}_{lo}", np.nan)
        frame[f"{side}_upper"] = frame.get(f"{side}_{hi}", np.nan)
    base_signal = frame.get("baseline_signal", pd.Series(False, index=frame.index)).map(_truth)
    what_signal = frame.get("scenario_signal", pd.Series(False, index=frame.index)).map(_truth)
    frame["signal_change"] = np.select([what_signal & ~base_signal, base_signal & ~what_signal],
                                       ["starts signalling", "stops signalling"], "")
    size = frame.get("probability_change", pd.Series(np.nan, index=frame.index)).abs().fillna(0.0)
    frame["_order"] = size + frame["signal_change"].ne("").astype(float)
    frame["_shocked"] = frame.get("shocked", pd.Series(False, index=frame.index)).map(_truth)
    frame = frame.sort_values(["_order", "_shocked"], ascending=False, kind="stable")
    rows = frame[(frame["_order"] > 0) | frame["_shocked"]].head(top)
    columns = [c for c in (AREA, AREA_NAME, "region", "baseline_probability", "scenario_probability",
                           "probability_change", "baseline", "baseline_lower", "baseline_upper", "scenario",
                           "scenario_lower", "scenario_upper", "change", "signal_change", "status") if c in rows]
    return {"name": meta.get("name", ""), "describe": meta.get("describe", ""),
            "shocks": list(meta.get("shocks", [])), "months": meta.get("months", []), "notes": notes,
            "run_id": table.attrs.get("run_id", ""), "rows": rows[columns].to_dict("records"),
            "n_shocked": len(meta["areas"]) if meta.get("areas") else int(frame["_shocked"].sum()),
            "said": [_said(str(shock)) for shock in meta.get("shocks", [])],
            "moved": {"started": int((frame["signal_change"] == "starts signalling").sum()),
                      "stopped": int((frame["signal_change"] == "stops signalling").sum())}}


def _said(shock: str) -> str:
    """A shock as a reader says it: ``rainfall=p10`` is rainfall at each district's 10th percentile
    of the same month in earlier years; the other forms read as written."""
    variable, _, change = shock.partition("=")
    if change.startswith("p"):
        n = change[1:]
        last = n[-1:] if not n.endswith(("11", "12", "13")) else ""
        nth = n + {"1": "st", "2": "nd", "3": "rd"}.get(last, "th")
        return f"{variable} at each district's {nth} percentile of the same month in earlier years ({shock})"
    return shock
