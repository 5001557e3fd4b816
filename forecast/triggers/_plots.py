"""Plots of trigger signals: reliability diagrams and a hit / miss timeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from forecast.errors import ForecastError
from forecast.triggers._scores import reliability_table

__all__ = ["reliability_plot", "timeline_plot"]

_OUTCOMES = [("no signal, no crossing", "#f2f2f2"), ("hit", "#1a9850"), ("miss", "#d73027"),
             ("false alarm", "#fdae61"), ("not observed", "#ffffff")]


def reliability_plot(signals: pd.DataFrame, trigger: str, *, bins: int = 10) -> Figure:
    """Observed frequency against predicted probability, one panel per lead, one line per route."""
    rows = signals[signals["trigger"] == trigger]
    if rows.empty:
        raise ForecastError(f"no signals for trigger {trigger!r}; have: {', '.join(signals['trigger'].unique())}")
    table = reliability_table(rows, bins=bins)
    leads = sorted(rows["lead"].unique())
    fig = Figure(figsize=(4 * len(leads), 4), layout="constrained")
    axes = fig.subplots(1, len(leads), squeeze=False)[0]
    for ax, lead in zip(axes, leads):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly reliable")
        for route, part in table[(table["lead"] == lead) & (table["kind"] == "calibrated")].groupby("route"):
            ax.plot(part["predicted"], part["observed"], marker="o", label=route)
            for _, r in part.iterrows():
                ax.annotate(f"{r['n']:.0f}", (r["predicted"], r["observed"]), fontsize=6,
                            xytext=(2, 2), textcoords="offset points", color="0.4")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability", title=f"lead {lead} month(s)")
    axes[0].set_ylabel("observed frequency of crossing")
    axes[-1].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Reliability of '{trigger}' (scored origins; labels: cases per bin)")
    return fig


def timeline_plot(signals: pd.DataFrame, trigger: str, lead: int, route: str, *, max_areas: int = 40) -> Figure:
    """Hits, misses and false alarms per area (rows) and origin (columns).

    Areas with no crossing and no signal are left out; at most ``max_areas`` (most events first).
    """
    rows = signals[(signals["trigger"] == trigger) & (signals["lead"] == lead)
                   & (signals["route"] == route) & (signals["role"] == "scored")]
    if rows.empty:
        raise ForecastError(f"no scored signals for trigger {trigger!r}, lead {lead}, route {route!r}")
    code = np.select(
        [rows["event"].isna(), rows["signal"] & rows["event"].eq(1), ~rows["signal"] & rows["event"].eq(1),
         rows["signal"] & rows["event"].eq(0)], [4, 1, 2, 3], 0)
    grid = rows.assign(code=code).pivot(index="area", columns="origin", values="code").fillna(4)
    active = grid.isin([1, 2, 3]).sum(axis=1)
    grid = grid[active > 0]
    events = grid.isin([1, 2]).sum(axis=1).sort_values(ascending=False)
    grid = grid.loc[events.index[:max_areas]]
    fig = Figure(figsize=(9, 1.5 + 0.22 * max(len(grid), 1)), layout="constrained")
    ax = fig.add_subplot()
    if len(grid):
        ax.imshow(grid.to_numpy(), aspect="auto", interpolation="nearest",
                  cmap=ListedColormap([c for _, c in _OUTCOMES]), vmin=-0.5, vmax=4.5)
        ax.set_yticks(range(len(grid)), grid.index, fontsize=7)
        ticks = range(0, grid.shape[1], max(1, grid.shape[1] // 12))
        ax.set_xticks(list(ticks), [f"{pd.Timestamp(grid.columns[i]):%Y-%m}" for i in ticks], rotation=45, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no crossing and no signal in the scored origins", ha="center", transform=ax.transAxes)
    ax.set(xlabel="origin", title=f"'{trigger}', lead {lead}, {route}: hits, misses and false alarms")
    fig.legend(handles=[Patch(color=c, label=n) for n, c in _OUTCOMES[1:4]], loc="outside right upper", fontsize=8)
    return fig
