"""Our backtest against Nixtla's mlforecast on the Somalia sample, in one run.

    pip install -e '.[bench]'          # adds mlforecast
    python benchmarks/backtest_vs_mlforecast.py

Both sides: the same target panel (PRMN arrivals, 74 districts x 96 months, unrecorded months
read as 0 from the first recorded month, as our backtest does), the same 12 origins
(2022-07 .. 2023-06), horizons 1-6, the direct strategy (one model per horizon), the same
LightGBM median model and settings, scored by the same code (``forecast.backtest.score``, with
our per-area MASE scale). What differs is the feature set: mlforecast's is the target's own lags,
rolling windows and month; ours adds covariates, neighbours, flows, admin totals and masks.
Writes benchmarks/results/backtest_vs_mlforecast.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMax, RollingMean, RollingStd

import forecast
from forecast.backtest import RollingOrigin, score
from forecast.features import build_features

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "backtest_vs_mlforecast.json"
LGBM = dict(objective="quantile", alpha=0.5, n_estimators=100, learning_rate=0.1, num_leaves=31,
            min_child_samples=20, max_bin=63, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=1.0, random_state=0, n_jobs=1, verbose=-1)


def long_frame(cube) -> pd.DataFrame:
    panel = build_features(cube, "arrivals", families=["lags"], missing_target="zero").panel
    frame = pd.DataFrame(panel.y, index=panel.areas, columns=panel.time).stack(future_stack=True)
    frame = frame.rename("y").rename_axis(["unique_id", "ds"]).reset_index()
    return frame.dropna(subset=["y"])  # before recording starts: no rows, as in our backtest


def mlforecast_model() -> MLForecast:
    return MLForecast(models={"mlforecast_lgbm": lgb.LGBMRegressor(**LGBM)}, freq="MS",
                      lags=[1, 2, 3, 6, 12],
                      lag_transforms={1: [RollingMean(3), RollingMean(6), RollingMean(12),
                                          RollingStd(3), RollingMax(3)]},
                      date_features=["month"])


def median_time(func, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    cube = forecast.load_somalia()
    df = long_frame(cube)
    spec = forecast.load_spec(ROOT / "models" / "lightgbm_median.yaml")

    start = time.perf_counter()
    ours = forecast.backtest(cube, [spec], folds=RollingOrigin(n_origins=12, calibration_origins=12))
    t_ours = time.perf_counter() - start

    start = time.perf_counter()
    cv = mlforecast_model().cross_validation(df, n_windows=12, h=6, step_size=1, max_horizon=6)
    t_mlf = time.perf_counter() - start

    cv["horizon"] = ((cv["ds"].dt.year - cv["cutoff"].dt.year) * 12 + cv["ds"].dt.month - cv["cutoff"].dt.month)
    scored = ours.scored
    keys = ["area", "origin", "horizon"]
    theirs = cv.rename(columns={"unique_id": "area", "cutoff": "origin", "mlforecast_lgbm": "point"})
    base = scored[scored["model"] == spec.name][[*keys, "time", "actual", "scale"]]
    theirs = base.merge(theirs[[*keys, "point"]], on=keys, how="inner").assign(model="mlforecast_lgbm")
    if len(theirs) != len(base):
        print(f"note: {len(base) - len(theirs)} of our scored rows have no mlforecast forecast")
    rows = pd.concat([scored[scored["model"].isin([spec.name, "naive", "seasonal_naive"])]
                      [[*keys, "model", "time", "actual", "scale", "point"]].merge(theirs[keys], on=keys),
                      theirs], ignore_index=True)
    table = score(rows, by=("model", "horizon"))
    wide = table[table["horizon"].isin([1, 3, 6])].pivot(index="model", columns="horizon",
                                                          values=["mase", "mae", "rmsle"])

    t_feat_ours = median_time(lambda: build_features(cube, "arrivals", missing_target="zero"))
    t_feat_mlf = median_time(lambda: mlforecast_model().preprocess(df, max_horizon=6))

    mase = table.set_index(["model", "horizon"])["mase"]
    ratio = {h: float(mase[(spec.name, h)] / mase[("mlforecast_lgbm", h)]) for h in (1, 3, 6)}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "mlforecast": __import__("mlforecast").__version__, "lightgbm": lgb.__version__,
                    "load_average_at_start": os.getloadavg()[0]},
        "wall_seconds": {"ours_backtest_incl_5_baselines_and_calibration": t_ours,
                         "mlforecast_cross_validation": t_mlf,
                         "ours_features_all_families": t_feat_ours, "mlforecast_preprocess": t_feat_mlf},
        "ratios": {"backtest_time_ours_over_mlforecast": t_ours / t_mlf,
                   "features_time_ours_over_mlforecast": t_feat_ours / t_feat_mlf,
                   "mase_ours_over_mlforecast": ratio},
        "scores": json.loads(table.to_json(orient="records")),
        "rows_scored_per_model_and_horizon": int(table["n"].iloc[0]),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    pd.set_option("display.width", 200)
    print(wide.round(3).to_string())
    print(json.dumps(result["wall_seconds"], indent=2))
    print(json.dumps(result["ratios"], indent=2))
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
