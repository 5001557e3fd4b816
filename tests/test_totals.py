"""A forecast whose totals hold beside the median that ranks (issue 20 §1, first step): ``mean``
is the point forecast scaled by how much earlier outcomes totalled against earlier forecasts,
known at the origin; it ranks areas exactly as the point does, and its level ratio is scored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.backtest import RollingOrigin, calibrate, score, total_ratio
from forecast.datasets import make_panel
from forecast.models import ModelSpec
from forecast.pipeline import train

LEVELS = [0.1, 0.5, 0.9]


def _under_forecast(n_origins: int = 30, n_areas: int = 40, seed: int = 1) -> pd.DataFrame:
    """A median that forecasts a third of what comes (heavy-tailed outcomes, as arrivals are)."""
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2016-01-01", periods=n_origins, freq="MS")
    rows = [{"model": "m", "origin": o, "horizon": 1, "area": f"a{i}", "time": o + pd.DateOffset(months=1),
             "point": 10.0 * (i + 1), "scale": 1.0, "actual": 30.0 * (i + 1) * rng.lognormal(0, 0.3)}
            for o in origins for i in range(n_areas)]
    return pd.DataFrame(rows)


def test_the_mean_keeps_totals_where_the_median_does_not_and_ranks_the_same():
    table = _under_forecast()
    raw = np.repeat(table[["point"]].to_numpy(), len(LEVELS), axis=1)
    done = calibrate(table, raw, LEVELS)
    late = done[done["origin"] >= done["origin"].min() + pd.DateOffset(months=3)]
    scores = score(late, by=["model", "horizon"]).iloc[0]
    assert scores["level_ratio"] < 0.4 and 0.9 < scores["mean_level_ratio"] < 1.1
    for _, part in late.groupby(["origin", "horizon"]):
        assert (part["mean"].rank(method="first").to_numpy() == part["point"].rank(method="first").to_numpy()).all()
    assert done.loc[done["origin"] == done["origin"].min(), "mean"].isna().all()  # nothing known yet


def test_total_ratio_counts_only_pairs_where_both_are_known():
    assert total_ratio(np.array([30.0, np.nan, 10.0]), np.array([10.0, 5.0, np.nan])) == 3.0
    assert np.isnan(total_ratio(np.array([1.0]), np.array([0.0])))


def test_a_trained_model_gives_the_mean_beside_the_point():
    cube = make_panel(20, 60, seed=6)
    spec = ModelSpec(name="naive_totals", estimator="naive", horizons=[1, 2])
    model = train(cube, spec, calibration=RollingOrigin(n_origins=12, calibration_origins=0), progress=False)
    forecasts = model.predict(cube)
    for h in (1, 2):
        part = forecasts[forecasts["horizon"] == h]
        assert np.isfinite(model.total_ratios[h])
        assert np.allclose(part["mean"], part["point"] * model.total_ratios[h])
