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
from matplotlib.patheffects import withStroke

from forecast._names import AREA, AREA_NAME, TIME
from forecast.backtest import quantile_column

__all__ = ["fan_charts", "map_figure", "draw_fans", "draw_map", "skill_figure", "reliability_figure", "png"]

DPI = 110
CMAP = "YlOrRd"
UNASSESSED = "#d9d9d9"
HISTORY_MONTHS = 24


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def map_figure(boundaries: str | Path, ranking: pd.DataFrame, trigger, lead: int, month: str,
               labels: dict[str, str] | None = None) -> bytes:
    """:func:`draw_map` as PNG bytes."""
    return png(draw_map(boundaries, ranking, trigger, lead, month, labels))


def draw_map(boundaries: str | Path, ranking: pd.DataFrame, trigger, lead: int, month: str,
             labels: dict[str, str] | None = None) -> Figure:
    """Areas coloured by the probability of crossing the trigger; unassessed areas hatched grey.

    Areas that signal (probability at or above the trigger's) are outlined in black. ``labels``
    writes a key on areas (their rank in the headline table) at the centre of their largest
    polygon, so that the map and the table can be read together.
    """
    from forecast.io import Gazetteer

    gazetteer = Gazetteer.from_file(boundaries)
    fig = Figure(figsize=(7.2, 6.4), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(0, 1)
    by_area = ranking.set_index(AREA)
    colored, grey, outlined, values, keys = [], [], [], [], []
    for pcode, polygons in gazetteer.geometry.items():
        if pcode not in by_area.index:
            continue
        if labels and pcode in labels and polygons:
            keys.append((labels[pcode], _centre(max((rings[0] for rings in polygons), key=_area))))
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
    for text, (x, y) in keys:
        ax.text(x, y, text, ha="center", va="center", fontsize=7, fontweight="bold", color="black",
                path_effects=[withStroke(linewidth=2.2, foreground="white")])
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.legend(handles=[Patch(facecolor=UNASSESSED, hatch="///", edgecolor="white", label="unassessed (no recent data)"),
                       Patch(facecolor="none", edgecolor="black", linewidth=1.4,
                             label=f"signal: P >= {trigger.probability:g}")],
              loc="lower right", fontsize=8, frameon=False)
    title = f"Trigger '{trigger.name}' within {lead} months of {month}"
    ax.set_title(title + ("\nnumbers: rank in the headline table" if keys else ""), fontsize=10)
    return fig


def _area(ring) -> float:
    xy = np.asarray(ring, dtype=float)
    return abs(_shoelace(xy))


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _centre(ring) -> tuple[float, float]:
    """The centroid of a polygon's outer ring (its vertices' mean when it has no area)."""
    xy = np.asarray(ring, dtype=float)
    a = _shoelace(xy)
    if abs(a) < 1e-12:
        return float(xy[:, 0].mean()), float(xy[:, 1].mean())
    x, y = xy[:, 0], xy[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    return float(((x + np.roll(x, -1)) * cross).sum() / (6 * a)), float(((y + np.roll(y, -1)) * cross).sum() / (6 * a))


def fan_charts(cube, forecasts: pd.DataFrame, ranking: pd.DataFrame, areas: list[str], spec, *, k: int,
               outlook: pd.DataFrame | None = None, lead: int | None = None) -> bytes | None:
    """:func:`draw_fans` as PNG bytes (None without areas)."""
    fig = draw_fans(cube, forecasts, ranking, areas, spec, k=k, outlook=outlook, lead=lead)
    return None if fig is None else png(fig)


def draw_fans(cube, forecasts: pd.DataFrame, ranking: pd.DataFrame, areas: list[str], spec, *, k: int,
              outlook: pd.DataFrame | None = None, lead: int | None = None) -> Figure | None:
    """History, the forecast median and 80% interval, and the trigger threshold, one panel per area.

    With ``outlook`` (:func:`forecast.triggers.monthly_outlook`) and ``lead``, the trigger window
    is shaded and each of its months carries its probability of reaching the threshold, so a
    district likely to cross while its median stays below the line reads as what it is: the
    upper part of that month's interval reaches the threshold.
    """
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
            ax.axhline(threshold, color="#2b8cbe", ls="--", lw=1, label="trigger threshold (a month)")
        months = _window(outlook, area, lead)
        if months is not None:
            first, last = months["month"].iloc[0], months["month"].iloc[-1]
            ax.axvspan(first - pd.Timedelta(days=15), last + pd.Timedelta(days=15),
                       color="#2b8cbe", alpha=0.10, lw=0, label=f"trigger window ({len(months)} months)")
            # each month's probability, listed in the corner: the window is too narrow to write on
            for i, (when, p_month) in enumerate(zip(months["month"], months["probability"])):
                ax.text(0.02, 0.95 - 0.11 * i, f"{when:%b %Y}: {p_month:.0%}" if pd.notna(p_month) else f"{when:%b %Y}: -",
                        transform=ax.transAxes, ha="left", va="top", fontsize=6.5, color="#08519c",
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
        name = by_area.loc[area, AREA_NAME] if area in by_area.index else area
        p = by_area.loc[area, "probability"] if area in by_area.index else np.nan
        title = f"{name} ({area}): P = {p:.0%}" if pd.notna(p) else f"{name} ({area})"
        rank = by_area.loc[area, "rank"] if area in by_area.index and "rank" in by_area else np.nan
        ax.set_title(f"{int(rank)}. {title}" if pd.notna(rank) else title, fontsize=9)
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
    notes = []
    if outlook is not None:
        notes.append("blue, top left: each month's probability of reaching the threshold")
    if withheld:
        notes.append(f"months with 1-{k - 1} {target} are withheld (small cells)")
    if notes:
        fig.suptitle("; ".join(notes), fontsize=7, color="#555555")
    return fig


def _window(outlook: pd.DataFrame | None, area: str, lead: int | None) -> pd.DataFrame | None:
    if outlook is None or lead is None:
        return None
    part = outlook[(outlook[AREA] == area) & (outlook["horizon"] <= lead)].sort_values("horizon")
    return part.assign(month=pd.to_datetime(part["month"])) if len(part) else None


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
