"""Plots of backtest results: fan charts per area, feature importance, drivers of a forecast.

Built on :class:`matplotlib.figure.Figure` directly, so they work headless (CI, MLflow
artifacts) and display inline in Jupyter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from forecast.backtest._metrics import quantile_column, quantile_levels
from forecast.errors import ForecastError

__all__ = ["fan_chart", "importance_chart", "driver_chart"]


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


#: Bar colours of a driver that pushed a forecast up, and one that pushed it down.
UP, DOWN = "tab:red", "tab:blue"
_SCALE_WORDS = {"log": "contribution to log(forecast)", "log1p": "contribution to log(1 + forecast)",
                "identity": "contribution (people)",
                "log_ratio": "contribution to the change log((1 + forecast) / (1 + last round))"}


def driver_chart(explanation: pd.DataFrame, ax=None, *, title: str | None = None) -> Figure:
    """One horizontal bar per driver family of one forecast, signed: up in red, down in blue.

    Parameters
    ----------
    explanation : DataFrame
        Tidy rows of one forecast (one area, origin and horizon): ``driver, contribution`` and
        ``area, origin, horizon, time, scale`` as :meth:`BacktestResult.explain` or
        ``TrainedModel.explain(cube, area=...)`` give them.
    ax : matplotlib Axes, optional
        Draw here (default: a new figure).
    title : str, optional
        Default: the area, the month forecast and the origin.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in ("driver", "contribution") if c not in explanation.columns]
    if missing:
        raise ForecastError(f"driver_chart needs the columns driver and contribution; {missing} missing "
                            "(pass BacktestResult.explain(...) or TrainedModel.explain(cube, area=...))")
    if explanation.empty:
        raise ForecastError("driver_chart got no rows: nothing to draw")
    for key in ("area", "origin", "horizon"):
        if key in explanation.columns and explanation[key].nunique() > 1:
            raise ForecastError(f"driver_chart draws one forecast, but the rows hold {explanation[key].nunique()} "
                                f"values of {key} ({', '.join(map(str, explanation[key].unique()[:6]))}); "
                                f"choose one, e.g. explain(..., horizon=1)")
    rows = explanation.assign(size=explanation["contribution"].abs()).sort_values("size")
    values = rows["contribution"].to_numpy(dtype=float)
    if ax is None:
        fig = Figure(figsize=(6, 0.35 * len(rows) + 1.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.barh(rows["driver"].astype(str), values, color=[UP if v > 0 else DOWN for v in values])
    ax.axvline(0.0, color="black", linewidth=0.8)
    scale = str(explanation["scale"].iloc[0]) if "scale" in explanation.columns else "identity"
    ax.set_xlabel(_SCALE_WORDS.get(scale, f"contribution ({scale})"))
    ax.set_title(title or _driver_title(explanation.iloc[0]))
    return fig


def _driver_title(row) -> str:
    area = row.get("area", "")
    if "time" in row and pd.notna(row["time"]):
        month = f"{pd.Timestamp(row['time']):%Y-%m}"
        origin = f" from {pd.Timestamp(row['origin']):%Y-%m}" if "origin" in row else ""
        return f"{area}: drivers of the forecast for {month}{origin}"
    return f"{area}: drivers of the forecast"
