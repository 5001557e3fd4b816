"""One model's scored origins of a backtest, as a backtest of their own (what a trained model calibrates on)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from forecast.backtest._conformal import calibrate
from forecast.backtest._folds import RollingOrigin
from forecast.backtest._metrics import quantile_column
from forecast.backtest._run import BacktestResult, _interval_notes, _pooled_notes
from forecast.errors import ForecastError

__all__ = ["scored_part"]


def scored_part(result: BacktestResult, model: str) -> BacktestResult:
    """The backtest of ``model`` at ``result``'s scored origins alone, without fitting anything again.

    It is what :func:`~forecast.backtest.backtest` of that one spec, without baselines, on
    ``RollingOrigin(n_origins=<the scored origins>, calibration_origins=0)`` returns: each
    origin's forecasts rest only on the data up to it, so they are taken as they are, and the
    intervals, ``calibrated_by`` and ``mean`` are made again from these origins' own earlier
    errors, as a run of its own makes them. One thing stays of the longer run: a LightGBM
    model's bin edges, found on the rows known at the run's first origin (a calibration origin),
    where a run of its own finds them at its first scored origin.

    Parameters
    ----------
    result : BacktestResult
    model : str
        One of ``result.models``.

    Returns
    -------
    BacktestResult
        One spec; every origin ``scored``; ``folds`` the rolling origins that give exactly these.
    """
    spec = next((s for s in result.specs if s.name == model), None)
    if spec is None:
        raise ForecastError(f"model {model!r} is not in the backtest; it has {', '.join(result.models)}")
    folds = result.folds
    rows = result.forecasts[(result.forecasts["model"] == model) & (result.forecasts["role"] == "scored")]
    if rows.empty:
        raise ForecastError(f"the backtest has no scored forecasts of {model!r}")
    raw = np.column_stack([rows[f"raw_{quantile_column(q)}"].to_numpy(float) for q in spec.quantiles])
    table = calibrate(rows.drop(columns="role").reset_index(drop=True), raw, spec.quantiles,
                      by_size=spec.interval_calibration == "size")
    table["role"] = "scored"
    # the same scored origins, with the calibration origins' months counted as training history
    alone = RollingOrigin(n_origins=folds.n_origins, step=folds.step, calibration_origins=0,
                          min_train=folds.min_train + folds.step * folds.calibration_origins,
                          refit_every=folds.refit_every)
    notes = _interval_notes(table) + _pooled_notes(table, spec)
    explained = result.contributions
    explained = explained[(explained["model"] == model) & explained["origin"].isin(rows["origin"].unique())]
    return replace(result, forecasts=table, specs=[spec], folds=alone, contributions=explained.reset_index(drop=True),
                   importance={k: v for k, v in result.importance.items() if k == model}, skipped={},
                   notes={model: notes} if notes else {})
