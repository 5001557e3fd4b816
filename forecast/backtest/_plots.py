"""Plots of backtest results: fan charts per area and feature importance.

Built on :class:`matplotlib.figure.Figure` directly, so they work headless (CI, MLflow
artifacts) and display inline in Jupyter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from forecast.backtest._metrics import quantile_column, quantile_levels
from forecast.errors import ForecastError

__all__ = ["fan_chart", "importance_chart"]


def fan_chart(forecasts: pd.DataFrame, area: str, model: str, *, horizon: int = 1,
              title: str | None = None) -> Figure:
    """Actuals against ``model``'s ``horizon``-month-ahead forecasts and intervals for one area.

    Parameters
    ----------
    forecasts : DataFrame
        :attr:`BacktestResult.forecasts` (scored rows are drawn).
    area, model : str
    horizon : int, default 1
    """
    rows = forecasts[(forecasts["area"] == area) & (forecasts["model"] == model)
                     & (forecasts["horizon"] == horizon) & (forecasts["role"] == "scored")]
    if rows.empty:
        raise ForecastError(f"no scored forecasts for area {area!r}, model {model!r}, horizon {horizon}")
    rows = rows.sort_values("time")
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.add_subplot()
    levels = quantile_levels(rows)
    pairs = [(lo, 1 - lo) for lo in levels if lo < 0.5 and any(abs(1 - lo - q) < 1e-9 for q in levels)]
    for i, (lo, hi) in enumerate(sorted(pairs)):
        ax.fill_between(rows["time"], rows[quantile_column(lo)], rows[quantile_column(hi)],
                        color="tab:blue", alpha=0.15 + 0.15 * i, linewidth=0,
                        label=f"{round((hi - lo) * 100)}% interval")
    ax.plot(rows["time"], rows["point"], color="tab:blue", label=f"{model} (h={horizon})")
    ax.plot(rows["time"], rows["actual"], "o-", color="black", markersize=3, label="observed")
    ax.set_title(title or f"{area}: {horizon}-month-ahead forecasts at each origin")
    ax.set_ylabel("people")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def importance_chart(importance: pd.Series, *, top: int = 20, title: str = "feature importance") -> Figure:
    """Horizontal bars of the ``top`` features by share of total gain."""
    top_items = importance.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(6, 0.25 * len(top_items) + 1), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(top_items.index, np.asarray(top_items.values, dtype=float), color="tab:blue")
    ax.set_xlabel("share of gain")
    ax.set_title(title)
    return fig
