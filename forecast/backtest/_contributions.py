"""The contributions of a backtest's forecasts by driver family: keyed as the forecasts are,
read one forecast at a time (:meth:`BacktestResult.explain`), tidy for tables and charts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

__all__ = ["CONTRIBUTION_KEYS", "tidy_contributions"]

#: The columns of :attr:`BacktestResult.contributions` before one column per driver family.
CONTRIBUTION_KEYS = ["model", "origin", "horizon", "area", "time", "base", "scale"]


def _contribution_rows(name, time, o, drivers: pd.DataFrame, assessable) -> pd.DataFrame:
    """The contributions of the assessed areas' forecasts from origin ``o``, keyed as the forecasts are."""
    n_h = len(drivers) // len(assessable)
    part = drivers[np.repeat(assessable, n_h)].reset_index(drop=True)
    frame = pd.DataFrame({"model": name, "origin": time[o], "horizon": part["horizon"], "area": part["area"],
                          "time": time[o + part["horizon"].to_numpy()]})
    return pd.concat([frame, part.drop(columns=["area", "horizon"])], axis=1)


def _explain_rows(contributions: pd.DataFrame, area: str, origin, model, horizon, calibrating=()) -> pd.DataFrame:
    """:meth:`BacktestResult.explain`: one area's and origin's rows, tidy, largest first.
    ``calibrating``: the calibration origins, whose forecasts are not explained."""
    if contributions.empty:
        raise ForecastError("this backtest kept no contributions: only LightGBM models have them "
                            "(estimator: lightgbm)")
    models = list(dict.fromkeys(contributions["model"]))
    model = models[-1] if model is None else model
    if model not in models:
        raise ForecastError(f"no contributions for model {model!r}; models with them: {', '.join(models)}")
    rows = contributions[contributions["model"] == model]
    if area not in set(rows["area"]):
        known = sorted(set(rows["area"]))
        raise ForecastError(f"no forecasts of {model!r} for area {area!r}; {len(known)} areas have them, e.g. "
                            f"{', '.join(known[:5])}")
    rows = rows[rows["area"] == area]
    try:
        when = pd.Timestamp(origin)
    except (TypeError, ValueError):
        raise ForecastError(f"origin {origin!r} is not a month (write it as 2023-06)") from None
    origins = pd.DatetimeIndex(rows["origin"].unique()).sort_values()
    if when not in origins:
        if when in pd.DatetimeIndex(calibrating):
            raise ForecastError(f"origin {when:%Y-%m} is a calibration origin: its forecasts set the intervals and "
                                f"are not explained; the scored origins run from {origins[0]:%Y-%m} to "
                                f"{origins[-1]:%Y-%m}")
        raise ForecastError(f"no origin {when:%Y-%m} in this backtest for {area!r}; its origins run from "
                            f"{origins[0]:%Y-%m} to {origins[-1]:%Y-%m}")
    rows = rows[rows["origin"] == when]
    if horizon is not None:
        if int(horizon) not in set(rows["horizon"]):
            raise ForecastError(f"no horizon {horizon}; the horizons are {sorted(set(rows['horizon']))}")
        rows = rows[rows["horizon"] == int(horizon)]
    return tidy_contributions(rows)


def tidy_contributions(wide: pd.DataFrame) -> pd.DataFrame:
    """Contribution rows (one column per driver) as a tidy table: one row per forecast and driver,
    per forecast the drivers sorted by absolute contribution, largest first."""
    keys = [c for c in ("model", "area", "origin", "horizon", "time") if c in wide.columns]
    drivers = [c for c in wide.columns if c not in (*CONTRIBUTION_KEYS, "role")]
    long = wide.melt(id_vars=[*keys, "base", "scale"], value_vars=drivers, var_name="driver",
                     value_name="contribution")
    long["size"] = long["contribution"].abs()
    long = long.sort_values([*[k for k in keys if k != "model"], "size"],
                            ascending=[True] * (len(keys) - ("model" in keys)) + [False], kind="stable")
    return long[[*keys, "driver", "contribution", "base", "scale"]].reset_index(drop=True)
