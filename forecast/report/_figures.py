"""The report's pictures, as PNG bytes: the map, fan charts, skill per horizon, reliability.

Built on :class:`matplotlib.figure.Figure` directly (headless, no global pyplot state). Every
count of people drawn respects the small-cell rule: an observed month with 1 to k-1 people is
left out of the history and said so under the chart.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.dates import DateFormatter, MonthLocator, YearLocator
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon

from forecast._names import AREA, AREA_NAME, TIME
from forecast.backtest import quantile_column

__all__ = ["fan_charts", "map_figure", "skill_figure", "reliability_figure", "png"]

DPI = 110
CMAP = "YlOrRd"
UNASSESSED = "#d9d9d9"
HISTORY_MONTHS = 36


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def map_figure(boundaries: str | Path, ranking: pd.DataFrame, trigger, lead: int, month: str) -> bytes:
    """Areas coloured by the probability of crossing the trigger; unassessed areas hatched grey.

    Areas that signal (probability at or above the trigger's) are outlined in black.
    """
    from forecast.io import Gazetteer

    gazetteer = Gazetteer.from_file(boundaries)
    fig = Figure(figsize=(7.2, 6.4), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(0, 1)
    by_area = ranking.set_index(AREA)
    colored, grey, outlined, values = [], [], [], []
    for pcode, polygons in gazetteer.geometry.items():
        if pcode not in by_area.index:
            continue
        row = by_area.loc[pcode]
        assessed = str(row["status"]).startswith("ok") and pd.notna(row["probability"])
        for rings in polygons:
            patch = Polygon(rings[0], closed=True)
            if assessed:
                colored.append(patch)
                values.append(float(row["probability"]))
                if bool(row["signal"]):
                    outlined.append(Polygon(rings[0], closed=True))
            else:
                grey.append(patch)
    if colored:
        coll = PatchCollection(colored, cmap=CMAP, norm=norm, edgecolor="white", linewidth=0.4)
        coll.set_array(np.asarray(values))
        ax.add_collection(coll)
        fig.colorbar(coll, ax=ax, shrink=0.6, label=f"probability of crossing within {lead} months")
    if grey:
        ax.add_collection(PatchCollection(grey, facecolor=UNASSESSED, edgecolor="white", hatch="///", linewidth=0.4))
    if outlined:
        ax.add_collection(PatchCollection(outlined, facecolor="none", edgecolor="black", linewidth=1.4))
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(handles=[Patch(facecolor=UNASSESSED, hatch="///", edgecolor="white", label="unassessed (no recent data)"),
                       Patch(facecolor="none", edgecolor="black", linewidth=1.4,
                             label=f"signal: P >= {trigger.probability:g}")],
              loc="lower right", fontsize=8, frameon=False)
    ax.set_title(f"Trigger '{trigger.name}' within {lead} months of {month}", fontsize=10)
    return png(fig)


def fan_charts(cube, forecasts: pd.DataFrame, ranking: pd.DataFrame, areas: list[str], spec, *, k: int) -> bytes | None:
    """History, the forecast median and 80% interval, and the trigger threshold, one panel per area."""
    if not areas:
        return None
    target = spec.target
    lo, mid, hi = (quantile_column(q) for q in (0.1, 0.5, 0.9))
    cols = 2 if len(areas) > 1 else 1
    rows = int(np.ceil(len(areas) / cols))
    fig = Figure(figsize=(7.6, 2.3 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    time = pd.DatetimeIndex(cube[TIME].values)
    start = max(0, len(time) - HISTORY_MONTHS)
    by_area = ranking.set_index(AREA)
    withheld = False
    for ax, area in zip(axes, areas):
        series = cube[target].sel({AREA: area}).values.astype(float)[start:]
        small = (series > 0) & (series < k)
        withheld |= bool(small.any())
        ax.plot(time[start:], np.where(small, np.nan, series), color="#333333", lw=1.2, label="observed")
        part = forecasts[forecasts[AREA] == area].sort_values("horizon")
        if not part.empty and {lo, mid, hi} <= set(part.columns):
            t = pd.DatetimeIndex(part[TIME])
            ax.fill_between(t, part[lo], part[hi], color="#fc8d59", alpha=0.35, lw=0, label="80% interval")
            ax.plot(t, part[mid], color="#d7301f", lw=1.6, label="forecast (median)")
        threshold = by_area.loc[area, "threshold"] if area in by_area.index else np.nan
        if pd.notna(threshold):
            ax.axhline(threshold, color="#2b8cbe", ls="--", lw=1, label="trigger threshold")
        name = by_area.loc[area, AREA_NAME] if area in by_area.index else area
        p = by_area.loc[area, "probability"] if area in by_area.index else np.nan
        ax.set_title(f"{name} ({area}): P = {p:.0%}" if pd.notna(p) else f"{name} ({area})", fontsize=9)
        ax.tick_params(labelsize=7)
        locator = YearLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(DateFormatter("%Y"))
        ax.xaxis.set_minor_locator(MonthLocator(bymonth=(4, 7, 10)))
        ax.yaxis.set_major_formatter(_thousands)
        ax.set_ylim(bottom=0)
    for ax in axes[len(areas):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    if withheld:
        fig.suptitle(f"months with 1-{k - 1} {target} are withheld (small cells)", fontsize=7, color="#555555")
    return png(fig)


def _thousands(value, _pos=None) -> str:
    return f"{value:,.0f}"


def skill_figure(skill: pd.DataFrame) -> bytes:
    """Skill (1 - MASE / baseline MASE) against naive and seasonal naive, per horizon; >0 = better."""
    fig = Figure(figsize=(7.2, 2.8), layout="constrained")
    ax = fig.add_subplot()
    h = skill["horizon"].to_numpy()
    width = 0.38
    for offset, base, color in ((-width / 2, "naive", "#74a9cf"), (width / 2, "seasonal_naive", "#0570b0")):
        column = f"skill_vs_{base}"
        if column in skill:
            ax.bar(h + offset, skill[column], width, color=color, label=f"vs {base.replace('_', ' ')}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("months ahead")
    ax.set_ylabel("skill (MASE)")
    ax.set_xticks(h)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Better than the baselines above zero, worse below", fontsize=9)
    return png(fig)


def reliability_figure(reliability: pd.DataFrame | None, trigger: str, lead: int, route: str) -> bytes | None:
    """Predicted probability against how often the trigger was crossed, in the backtest."""
    if reliability is None:
        return None
    part = reliability[(reliability["trigger"] == trigger) & (reliability["lead"].astype(int) == lead)
                       & (reliability["route"] == route) & (reliability["kind"] == "calibrated")]
    if part.empty:
        return None
    fig = Figure(figsize=(3.6, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1)
    sizes = 12 + 200 * part["n"] / part["n"].max()
    ax.scatter(part["predicted"], part["observed"], s=sizes, color="#d7301f", alpha=0.8)
    ax.plot(part["predicted"], part["observed"], color="#d7301f", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("forecast probability", fontsize=8)
    ax.set_ylabel("share that crossed", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"Calibration, lead {lead} (dot size = cases)", fontsize=8)
    return png(fig)
