"""Bar charts of a fairness report: one panel per group column, the policy limit drawn in.

Built on :class:`matplotlib.figure.Figure` directly, so they work headless (CI, MLflow
artifacts) and display inline in Jupyter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from forecast.errors import ForecastError
from forecast.fairness._metrics import HIGHER_IS_BETTER

__all__ = ["disparity_chart"]

PLOTTABLE = ("hit_rate", "false_alarm_ratio", "selection_rate", "mase")
#: Inches of panel width per group: room for its name, slanted at 45 degrees.
PER_GROUP = 0.32


def disparity_chart(report, metric: str, *, trigger=None, lead=None, route=None) -> Figure:
    """``metric`` per group of each group column, with the worst value the policy allows.

    Parameters
    ----------
    report : FairnessReport
    metric : {"hit_rate", "false_alarm_ratio", "selection_rate", "mase"}
    trigger, lead, route : optional
        The set of signals to draw; needed when the report has several.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if metric not in PLOTTABLE:
        hint = (" (equalized odds compares hit rates and false-positive rates: plot 'hit_rate', "
                "and read false_positive_rate in report.by_group)" if metric == "equalized_odds" else "")
        raise ForecastError(f"can plot one of {list(PLOTTABLE)} per group, got {metric!r}{hint}")
    rows, disparities, label = _one_combination(report, trigger, lead, route)
    columns = list(dict.fromkeys(rows["group_column"]))
    # a panel as wide as its groups need (18 regions' names side by side need more than 3 groups')
    widths = [max(3.0, PER_GROUP * int((rows["group_column"] == c).sum()) + 0.8) for c in columns]
    fig = Figure(figsize=(sum(widths) + 1.0, 3.8), layout="constrained")
    axes = fig.subplots(1, len(columns), squeeze=False, width_ratios=widths)[0]
    limit = report.policy.limit(metric)
    for ax, column in zip(axes, columns):
        table = rows[rows["group_column"] == column]
        verdict = disparities[(disparities["group_column"] == column)
                              & (disparities["metric"] == metric)].iloc[0]
        compared = set(filter(None, str(verdict["groups_compared"]).split(", ")))
        judged = table["group"].isin(compared).to_numpy()
        values = table[metric].to_numpy(dtype=float)
        x = np.arange(len(table))
        ax.bar(x[judged], np.nan_to_num(values[judged]), color="tab:blue", label="judged")
        ax.bar(x[~judged], np.nan_to_num(values[~judged]), color="lightgrey", hatch="//",
               edgecolor="grey", label="too small to judge")
        ax.set_xticks(x, table["group"].astype(str), rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
        line = _allowed(limit, metric, verdict["best_value"])
        if line is not None:
            ax.axhline(line, color="tab:red", linestyle="--",
                       label=f"policy limit ({verdict['limit']})")
        ax.set_title(f"{column}: {verdict['status'].split(':')[0]}", fontsize=9)
        ax.set_ylabel(metric.replace("_", " "))
        if metric != "mase":
            ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{metric.replace('_', ' ')} by group{label}", fontsize=10)
    return fig


def _one_combination(report, trigger, lead, route):
    rows, disparities = report.by_group, report.disparities
    names = ["trigger", "lead", "route"]
    keys = rows[names].drop_duplicates()
    for name, wanted in zip(names, (trigger, lead, route)):
        if wanted is not None:
            keys = keys[keys[name] == wanted]
    if len(keys) != 1:
        present = ["(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, values) if not pd.isna(v)) + ")"
                   for values in rows[names].drop_duplicates().itertuples(index=False)]
        raise ForecastError(f"pick one set of signals to plot with trigger=, lead= and route=; the "
                            f"report has {', '.join(present)}")
    chosen = keys.iloc[0]

    def match(frame: pd.DataFrame) -> pd.Series:
        same = pd.Series(True, index=frame.index)
        for name in names:
            value = chosen[name]
            same &= frame[name].isna() if pd.isna(value) else frame[name] == value
        return same

    label = "" if pd.isna(chosen["trigger"]) else f" (trigger {chosen['trigger']!r}, lead {int(chosen['lead'])}"
    label += "" if pd.isna(chosen["route"]) else f", route {chosen['route']!r}"
    label += "" if pd.isna(chosen["trigger"]) else ")"
    return rows[match(rows)], disparities[match(disparities)], label


def _allowed(limit, metric: str, best: float) -> float | None:
    """The worst value the policy allows, given the best judged group's value."""
    if not np.isfinite(best):
        return None
    high = HIGHER_IS_BETTER[metric]
    bounds = []
    if limit.max_difference is not None:
        bounds.append(best - limit.max_difference if high else best + limit.max_difference)
    if limit.min_ratio is not None:
        bounds.append(best * limit.min_ratio if high else best / limit.min_ratio)
    if not bounds:
        return None
    return max(bounds) if high else min(bounds)
