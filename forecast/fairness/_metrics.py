"""Per-group metrics through fairlearn's MetricFrame, and the comparison of groups with the policy.

Signal metrics treat an activation as a prediction of the event "the window crossed the
trigger": the hit rate is the share of events signalled (recall, the true-positive rate), the
false-alarm ratio the share of activations without an event (1 - precision), the selection
rate the share of rows signalled. Rows whose event was not observed count in no metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate

from forecast.policy import Policy

__all__ = ["signal_table", "mase_table", "judge", "group_status", "too_small", "HIGHER_IS_BETTER",
           "SIGNAL_METRICS"]

SIGNAL_METRICS = ("hit_rate", "false_alarm_ratio", "selection_rate")
#: Metrics where a larger value serves a group better; for the others a smaller value does.
HIGHER_IS_BETTER = {"hit_rate": True, "selection_rate": True, "mase": False,
                    "false_alarm_ratio": False, "false_positive_rate": False}
GROUP = "group"


# --------------------------------------------------------------------------- metric callables
# Written out rather than taken from scikit-learn: a group without events (or without
# activations) gets NaN, not a zero-division warning and a made-up 0.


def hit_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of events (``y_true == 1``) that were signalled; NaN without events."""
    events = np.asarray(y_true) == 1
    return float(np.asarray(y_pred)[events].mean()) if events.any() else math.nan


def false_alarm_ratio(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of activations (``y_pred == 1``) without an event; NaN without activations."""
    alarms = np.asarray(y_pred) == 1
    return float((np.asarray(y_true)[alarms] == 0).mean()) if alarms.any() else math.nan


def false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of non-events that were signalled; NaN without non-events."""
    quiet = np.asarray(y_true) == 0
    return float(np.asarray(y_pred)[quiet].mean()) if quiet.any() else math.nan


def selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of rows signalled."""
    return float(np.mean(y_pred)) if len(y_pred) else math.nan


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray) -> float:
    """Mean of ``|actual - point| / scale``, exactly as :func:`forecast.backtest.score` pools it."""
    return float(np.mean(np.abs(np.asarray(y_pred) - np.asarray(y_true)) / np.asarray(scale)))


def _count(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return len(y_true)


def _events(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return int((np.asarray(y_true) == 1).sum())


def _alarms(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    return int((np.asarray(y_pred) == 1).sum())


# --------------------------------------------------------------------------- per-group tables


def signal_table(rows: pd.DataFrame, labels: pd.Series, order: Sequence[str],
                 signal: str = "signal") -> tuple[pd.DataFrame, dict[str, float]]:
    """Signal metrics per group (rows ``order``) and overall, from one set of signals.

    Only rows with an observed event and a probability count in the metrics (as in
    :func:`forecast.triggers.trigger_metrics`); the others are counted per group.

    Returns
    -------
    (DataFrame, dict)
        Per group: ``n_rows`` (assessed rows), ``n_unassessed`` (window not observed),
        ``n_no_probability`` (window observed, but the trigger had no probability: no
        threshold yet, stale data), ``n_events``, ``n_alarms``, ``hit_rate``,
        ``false_alarm_ratio``, ``selection_rate``, ``false_positive_rate``; and the same over
        all rows.
    """
    group = rows["area"].map(labels).to_numpy()
    unobserved = rows["event"].isna().to_numpy()
    no_probability = ~unobserved & rows["probability"].isna().to_numpy()
    assessed = ~unobserved & ~no_probability
    metrics = {"n_rows": _count, "n_events": _events, "n_alarms": _alarms, "hit_rate": hit_rate,
               "false_alarm_ratio": false_alarm_ratio, "selection_rate": selection_rate,
               "false_positive_rate": false_positive_rate}
    columns = list(metrics)
    if assessed.any():
        frame = MetricFrame(
            metrics=metrics,
            y_true=rows["event"].to_numpy()[assessed].astype(int),
            y_pred=rows[signal].to_numpy()[assessed].astype(int),
            sensitive_features=pd.Series(group[assessed], name=GROUP),
        )
        by_group = frame.by_group.reindex(order)
        overall = {k: float(v) for k, v in frame.overall.items()}
    else:
        by_group = pd.DataFrame(index=pd.Index(order, name=GROUP), columns=columns, dtype=float)
        overall = {k: math.nan for k in columns}
    for count in ("n_rows", "n_events", "n_alarms"):
        by_group[count] = by_group[count].fillna(0).astype("int64")
        overall[count] = int(overall[count]) if not math.isnan(overall[count]) else 0
    for position, (name, flags) in enumerate((("n_unassessed", unobserved),
                                              ("n_no_probability", no_probability)), start=1):
        counts = pd.Series(flags).groupby(group).sum() if len(flags) else pd.Series(dtype="int64")
        by_group.insert(position, name, counts.reindex(order, fill_value=0).to_numpy(dtype="int64"))
        overall[name] = int(flags.sum())
    return by_group, overall


def mase_table(rows: pd.DataFrame, labels: pd.Series, order: Sequence[str]
               ) -> tuple[pd.DataFrame, dict[str, float]]:
    """``n_scored`` and ``mase`` per group and overall, from scored rows (observed actuals)."""
    if len(rows):
        frame = MetricFrame(
            metrics={"n_scored": _count, "mase": mase},
            y_true=rows["actual"].to_numpy(dtype=float),
            y_pred=rows["point"].to_numpy(dtype=float),
            sensitive_features=pd.Series(rows["area"].map(labels).to_numpy(), name=GROUP),
            sample_params={"mase": {"scale": rows["scale"].to_numpy(dtype=float)}},
        )
        by_group = frame.by_group.reindex(order)
        overall = {"n_scored": int(frame.overall["n_scored"]), "mase": float(frame.overall["mase"])}
    else:
        by_group = pd.DataFrame(index=pd.Index(order, name=GROUP), columns=["n_scored", "mase"],
                                dtype=float)
        overall = {"n_scored": 0, "mase": math.nan}
    by_group["n_scored"] = by_group["n_scored"].fillna(0).astype("int64")
    by_group["mase"] = by_group["mase"].astype(float)
    return by_group, overall


# --------------------------------------------------------------------------- judging


_COUNTS = ("n_areas", "n_rows", "n_events", "n_alarms", "n_scored")


def too_small(row: pd.Series | Mapping, metric: str, policy: Policy) -> str | None:
    """Why a group (one row of a per-group table, a Series or a dict) is too small to judge ``metric``, or None."""
    m = policy.minimums
    row = {name: int(row[name]) for name in _COUNTS}  # the judges pass dicts: faster than Series rows
    if row["n_areas"] < m.min_areas:
        return f"{row['n_areas']} area(s) < min_areas {m.min_areas}"
    if metric == "mase" and row["n_scored"] < m.min_rows:
        return f"{row['n_scored']} scored row(s) < min_rows {m.min_rows}"
    if metric == "selection_rate" and row["n_rows"] < m.min_rows:
        return f"{row['n_rows']} assessed row(s) < min_rows {m.min_rows}"
    if metric in ("hit_rate", "equalized_odds") and row["n_events"] < m.min_events:
        return f"{row['n_events']} event(s) < min_events {m.min_events}"
    if metric == "equalized_odds" and row["n_rows"] - row["n_events"] < m.min_events:
        return f"{row['n_rows'] - row['n_events']} non-event(s) < min_events {m.min_events}"
    if metric == "false_alarm_ratio" and row["n_alarms"] < m.min_alarms:
        return f"{row['n_alarms']} activation(s) < min_alarms {m.min_alarms}"
    return None


def left_out(row: pd.Series | Mapping, metric: str, policy: Policy) -> str | None:
    """Why a group is not compared on ``metric`` (too small, or the metric is NaN), or None."""
    why = too_small(row, metric, policy)
    if why is None and not np.isfinite(_value(row, metric)):
        why = f"{metric} is NaN (a scored row without a point forecast?)"
    return why


def group_status(table: pd.DataFrame, metrics: Sequence[str], policy: Policy) -> list[str]:
    """``"ok"``, ``"too small: <why>"`` or the metrics a group is left out of, per group."""
    statuses = []
    for row in table.to_dict("records"):
        if row["n_areas"] < policy.minimums.min_areas:
            statuses.append(f"too small: {too_small(row, metrics[0], policy)}")
            continue
        small = [f"{metric} ({why})" for metric in metrics
                 if (why := too_small(row, metric, policy)) is not None]
        missing = [why for metric in metrics if too_small(row, metric, policy) is None
                   and (why := left_out(row, metric, policy)) is not None]
        parts = (["too small for " + ", ".join(small)] if small else []) + missing
        statuses.append("; ".join(parts) or "ok")
    return statuses


def judge(table: pd.DataFrame, metric: str, policy: Policy,
          outcomes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict:
    """Compare the groups of ``table`` (index: group) that are large enough to judge ``metric``.

    ``outcomes`` = (event, signal, group) per assessed row, needed for ``equalized_odds``.
    Returns one row of the disparities table (without trigger, lead and group column).
    """
    limit = policy.limit(metric)
    eligible, small = [], []
    for group, row in table.to_dict("index").items():
        why = left_out(row, metric, policy)
        if why:
            small.append(f"{group} ({why})")
        else:
            eligible.append(group)
    result = {"metric": metric, "difference": math.nan, "ratio": math.nan,
              "limit": limit_text(limit), "passed": pd.NA, "status": "",
              "groups_compared": ", ".join(map(str, eligible)), "n_groups_compared": len(eligible),
              "measured": metric, "worst_group": None, "worst_value": math.nan, "best_group": None,
              "best_value": math.nan, "groups_left_out": "; ".join(small)}
    if len(eligible) < 2:
        result["status"] = (f"cannot judge: {len(eligible)} group(s) large enough, 2 needed"
                            + (f"; left out: {'; '.join(small)}" if small else ""))
        return result
    if metric == "equalized_odds":
        _equalized_odds(result, table.loc[eligible], outcomes, eligible)
    else:
        values = table.loc[eligible, metric].astype(float)
        high, low = values.max(), values.min()
        result["difference"] = float(high - low)
        result["ratio"] = float(low / high) if high > 0 else 1.0
        better_high = HIGHER_IS_BETTER[metric]
        worst = values.idxmin() if better_high else values.idxmax()
        best = values.idxmax() if better_high else values.idxmin()
        result.update(worst_group=worst, worst_value=float(values[worst]),
                      best_group=best, best_value=float(values[best]))
    if not limit.checked:
        result["status"] = "not checked (no limit in the policy)"
        return result
    ok = True
    if limit.max_difference is not None:
        ok &= bool(result["difference"] <= limit.max_difference + 1e-12)
    if limit.min_ratio is not None:
        ok &= bool(np.isfinite(result["ratio"]) and result["ratio"] >= limit.min_ratio - 1e-12)
    result["passed"] = ok
    result["status"] = "passed" if ok else "failed"
    return result


def _value(row: pd.Series, metric: str) -> float:
    if metric == "equalized_odds":
        both = np.isfinite(row["hit_rate"]) and np.isfinite(row["false_positive_rate"])
        return 0.0 if both else math.nan
    return float(row[metric])


def _equalized_odds(result: dict, table: pd.DataFrame, outcomes, eligible: list) -> None:
    event, signal, group = outcomes
    keep = np.isin(group, eligible)
    args = (event[keep].astype(int), signal[keep].astype(int))
    with np.errstate(divide="ignore", invalid="ignore"):
        # fairlearn's equalized_odds_difference and _ratio (worst case), from one MetricFrame
        # instead of one each: the same numbers, half the time (30 judgements in the demo)
        rates = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                            y_true=args[0], y_pred=args[1], sensitive_features=group[keep])
        result["difference"] = float(max(rates.difference()))
        result["ratio"] = float(min(rates.ratio()))
    tpr, fpr = table["hit_rate"].astype(float), table["false_positive_rate"].astype(float)
    if tpr.max() - tpr.min() >= fpr.max() - fpr.min():  # the gap fairlearn reports
        worst, best, values, measured = tpr.idxmin(), tpr.idxmax(), tpr, "true_positive_rate"
    else:
        worst, best, values, measured = fpr.idxmax(), fpr.idxmin(), fpr, "false_positive_rate"
    result.update(measured=measured, worst_group=worst, worst_value=float(values[worst]),
                  best_group=best, best_value=float(values[best]))


def limit_text(limit) -> str:
    parts = []
    if limit.max_difference is not None:
        parts.append(f"difference <= {limit.max_difference:g}")
    if limit.min_ratio is not None:
        parts.append(f"ratio >= {limit.min_ratio:g}")
    return " and ".join(parts) or "not checked"
