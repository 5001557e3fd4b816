"""How good have the trigger signals been? Scores of a signals table on the scored origins.

Definitions (one row per trigger x lead x route; rows with an unobserved window are not scored):

* ``hit_rate``: share of real crossings that were signalled (hits / events);
* ``false_alarm_ratio``: share of signals with no crossing (false alarms / signals);
* ``precision_at_k`` / ``recall_at_k``: per origin, the ``k`` best-ranked areas; the share of
  them that crossed, and the share of that origin's crossings among them; averaged over
  origins (recall over origins with a crossing);
* ``brier`` (``brier_raw`` before recalibration) and ``brier_skill`` against climatology, the
  share of crossings among outcomes known at each origin;
* ``activations``: signal onsets (an area signalled at an origin and not at the one before;
  a run of signals is one release of funds); ``return_period`` = (years + 1) / activations per
  area, as OCHA's Centre for Humanitarian Data computes it, beside ``event_return_period``
  from the crossings themselves;
* crossings caught (:func:`caught_table`): a crossing episode is a run of consecutive scored
  origins at which an area's window crossed, counted once; it is caught with the full lead time
  when the area signalled at the episode's first origin (the first whose window held the
  crossing), and caught at all when it signalled at any origin of the episode;
* drift: the activation rate in the first and second half of the scored origins, with
  Fisher's exact test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

__all__ = ["trigger_metrics", "reliability_table", "drift_table", "caught_table", "onsets"]

KEYS = ["trigger", "lead", "route"]


def onsets(frame: pd.DataFrame, column: str) -> pd.Series:
    """True where ``column`` is true at an origin and was not at the area's previous origin."""
    ordered = frame.sort_values(["origin"])
    flag = ordered[column].fillna(False).astype(bool)
    before = flag.groupby([ordered[c] for c in [*KEYS, "area"] if c in ordered]).shift(1, fill_value=False)
    return (flag & ~before).reindex(frame.index)


def _at_k(part: pd.DataFrame, k: int) -> tuple[float, float]:
    precision, recall = [], []
    for _, g in part.groupby("origin"):
        ranked = g[g["rank"].notna()].sort_values(["rank", "area"])
        top = ranked.head(k)
        known = top["event"].notna()
        if known.any():
            precision.append(top.loc[known, "event"].mean())
        total = g["event"].sum()
        if total > 0:
            recall.append(top["event"].sum() / total)
    return (float(np.mean(precision)) if precision else np.nan,
            float(np.mean(recall)) if recall else np.nan)


def _years(origins: pd.Series) -> float:
    """Years of record the origins stand for: their count times the months between them."""
    months = np.unique(pd.DatetimeIndex(origins).to_period("M").astype("int64"))
    step = float(np.median(np.diff(months))) if len(months) > 1 else 1.0
    return len(months) * step / 12


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(p) & np.isfinite(y)
    return float(np.mean((p[ok] - y[ok]) ** 2)) if ok.any() else np.nan


def trigger_metrics(signals: pd.DataFrame, *, k: int = 5) -> pd.DataFrame:
    """Scores of the signals on the scored origins, one row per trigger x lead x route."""
    scored = signals[signals["role"] == "scored"].copy()
    scored["onset"] = onsets(scored, "signal")
    scored["event_onset"] = onsets(scored.assign(_e=scored["event"].eq(1.0)), "_e")
    rows = []
    for key, part in scored.groupby(KEYS, sort=False):
        judged = part[part["event"].notna() & part["probability"].notna()]
        event = judged["event"].to_numpy(float)
        signal = judged["signal"].to_numpy(bool)
        hits = int((signal & (event == 1)).sum())
        events = int(event.sum())
        n_signals = int(signal.sum())
        years = _years(part["origin"])
        n_areas = part["area"].nunique()
        activations = int(part["onset"].sum())
        event_onsets = int(part["event_onset"].sum())
        brier = _brier(judged["probability"].to_numpy(float), event)
        clim = _brier(judged["climatology"].to_numpy(float), event)
        p_at_k, r_at_k = _at_k(part, k)
        rows.append({
            **dict(zip(KEYS, key)), "n": len(judged), "events": events, "signals": n_signals,
            "hits": hits, "misses": events - hits, "false_alarms": n_signals - hits,
            "hit_rate": hits / events if events else np.nan,
            "false_alarm_ratio": (n_signals - hits) / n_signals if n_signals else np.nan,
            f"precision_at_{k}": p_at_k, f"recall_at_{k}": r_at_k,
            "brier": brier, "brier_raw": _brier(judged["probability_raw"].to_numpy(float), event),
            "brier_skill": 1 - brier / clim if clim and np.isfinite(clim) else np.nan,
            "base_rate": events / len(judged) if len(judged) else np.nan,
            "activations": activations,
            "return_period": (years + 1) / (activations / n_areas) if activations else np.inf,
            "event_return_period": (years + 1) / (event_onsets / n_areas) if event_onsets else np.inf,
            "years": years, "areas": n_areas,
        })
    return pd.DataFrame(rows)


def reliability_table(signals: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """Predicted probability against observed frequency, in equal-width bins, on scored origins.

    One row per trigger x lead x route x kind (``calibrated`` or ``raw``) x bin with ``n``,
    ``predicted`` (mean probability) and ``observed`` (share that crossed).
    """
    scored = signals[(signals["role"] == "scored") & signals["event"].notna()]
    edges = np.linspace(0, 1, bins + 1)
    frames = []
    for kind, column in (("calibrated", "probability"), ("raw", "probability_raw")):
        part = scored[scored[column].notna()]
        b = np.clip(np.digitize(part[column], edges[1:-1]), 0, bins - 1)
        table = part.assign(bin=b).groupby([*KEYS, "bin"]).agg(
            n=("event", "size"), predicted=(column, "mean"), observed=("event", "mean")).reset_index()
        table["lower"], table["upper"] = edges[table["bin"]], edges[table["bin"] + 1]
        frames.append(table.assign(kind=kind))
    return pd.concat(frames, ignore_index=True)


def drift_table(signals: pd.DataFrame) -> pd.DataFrame:
    """Activation (signal) and crossing rates early vs late in the scored origins.

    ``p_value`` is Fisher's exact test of equal signal rates; a small value means the trigger
    fires at a different rate now than it did, which a release plan must account for.
    """
    scored = signals[(signals["role"] == "scored") & signals["probability"].notna()]
    rows = []
    for key, part in scored.groupby(KEYS, sort=False):
        origins = np.sort(part["origin"].unique())
        split = origins[len(origins) // 2]
        early, late = part[part["origin"] < split], part[part["origin"] >= split]
        a, b = int(early["signal"].sum()), int(late["signal"].sum())
        table = [[a, len(early) - a], [b, len(late) - b]]
        p = fisher_exact(table)[1] if len(early) and len(late) else np.nan
        rows.append({
            **dict(zip(KEYS, key)), "early": f"{pd.Timestamp(origins[0]):%Y-%m}..{pd.Timestamp(early['origin'].max()):%Y-%m}",
            "signal_rate_early": a / len(early) if len(early) else np.nan,
            "signal_rate_late": b / len(late) if len(late) else np.nan,
            "event_rate_early": early["event"].mean(), "event_rate_late": late["event"].mean(),
            "p_value": p,
        })
    return pd.DataFrame(rows)


def caught_table(signals: pd.DataFrame) -> pd.DataFrame:
    """Crossing episodes on the scored origins and how many were signalled in time.

    One row per trigger x lead x route: ``episodes`` (runs of consecutive origins at which an
    area's lead-time window crossed, each counted once), ``caught_first`` (signalled at the
    episode's first origin: warned with the full lead time), ``caught_any`` (signalled at any
    origin of the episode) and their shares of the episodes (NaN without an episode).
    """
    scored = signals[signals["role"] == "scored"].sort_values([*KEYS, "area", "origin"])
    crossed = scored["event"].eq(1.0)
    start = onsets(scored.assign(_e=crossed), "_e")
    # number each area's episodes: the count of episode starts up to and including the origin
    number = start.astype(int).groupby([scored[c] for c in [*KEYS, "area"]]).cumsum()
    rows = scored[crossed].assign(episode=number[crossed],
                                  _signal=scored.loc[crossed, "signal"].fillna(False).astype(bool))
    # rows are in origin order within an episode, so its first row is its first origin
    per = rows.groupby([*KEYS, "area", "episode"], sort=False)["_signal"].agg(["first", "any"])
    out = per.groupby(level=KEYS, sort=False).agg(episodes=("any", "size"), caught_first=("first", "sum"),
                                                  caught_any=("any", "sum"))
    out = scored[KEYS].drop_duplicates().merge(out.reset_index(), on=KEYS, how="left")
    for column in ("episodes", "caught_first", "caught_any"):
        out[column] = out[column].fillna(0).astype(int)
    episodes = out["episodes"].where(out["episodes"] > 0)
    out["share_caught_first"] = out["caught_first"] / episodes
    out["share_caught_any"] = out["caught_any"] / episodes
    return out.reset_index(drop=True)
