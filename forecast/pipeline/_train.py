"""Fit a model on all the data, with intervals calibrated on its own recent backtest errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import clone

from forecast._names import AREA, TIME
from forecast.backtest import (MIN_CALIBRATION, SIZE_BINS, BacktestResult, Progress, RollingOrigin, apply_total_shifts,
                               backtest, calibrate_totals, conformal_shifts, group_totals, level_groups, mase_scale,
                               progress_bar, quantile_column, recent_level, scored_part, size_bins, total_ratio)
from forecast.cube import cube_hash
from forecast.errors import ForecastError
from forecast.models import ModelSpec, Naive, fit_horizons, predict_horizons

__all__ = ["TrainedModel", "train"]


@dataclass
class TrainedModel:
    """A model fitted on every month of a cube, ready to forecast from a cube's last month.

    Attributes
    ----------
    spec : ModelSpec
    fitted : dict or SeriesForecaster
        Global models: one estimator per horizon (or one ``pooled``); series models: the
        unfitted estimator (they refit on the history they are given).
    shifts : dict of int to ndarray
        Per horizon, the conformal shift of each quantile in units of the area's scale.
    total_ratios : dict of int to float
        Per horizon, the outcomes' total over the point forecasts' total on the calibration
        origins (:func:`~forecast.backtest.total_ratio`): ``mean`` is the point times it.
    size_shifts : dict of (int, str) to ndarray
        Per horizon and size bin (:data:`~forecast.backtest.SIZE_BINS`), the shifts calibrated on
        that bin's errors alone (``interval_calibration: size``); a bin with too few errors is
        absent and takes ``shifts``.
    total_calibration : dict of (str, int) to TotalCalibration
        Per level (``admin1``, ``national``) and window length, the interval of totals over
        the level's groups (:meth:`totals`), from the calibration origins' totals.
    columns : list of str
        The feature columns the global model was fitted on.
    cube_hash : str
    n_calibration : dict of int to int
        Backtest errors behind each horizon's shifts.
    """

    spec: ModelSpec
    fitted: object
    shifts: dict[int, np.ndarray]
    columns: list[str] = field(default_factory=list)
    cube_hash: str = ""
    n_calibration: dict[int, int] = field(default_factory=dict)
    triggers: list = field(default_factory=list)
    size_shifts: dict = field(default_factory=dict)
    total_ratios: dict = field(default_factory=dict)
    trigger_calibration: dict = field(default_factory=dict)
    total_calibration: dict = field(default_factory=dict)

    def prioritize(self, cube: xr.Dataset, trigger: str | None = None, lead: int | None = None, *,
                   weight: str | None = None, max_staleness: int | None = None) -> pd.DataFrame:
        """Areas ranked for anticipatory action from the cube's last month.

        Parameters
        ----------
        cube : xarray.Dataset
        trigger : str, optional
            One of the triggers the model was trained with (default: the first).
        lead : int, optional
            One of the trigger's leads (default: its first).
        weight : str, optional
            An area coordinate to weight the score by (e.g. ``population``).
        max_staleness : int, optional
            Months without a record after which an area is not ranked (default 6).

        See :func:`forecast.triggers.prioritize` for the score and the columns.
        """
        from forecast.triggers import MAX_STALENESS, prioritize

        if not self.triggers:
            raise ForecastError("this model was trained without triggers; train it with "
                                "triggers=load_triggers(...) (forecast train --triggers FILE)")
        names = [t.name for t in self.triggers]
        spec = self.triggers[0] if trigger is None else next((t for t in self.triggers if t.name == trigger), None)
        if spec is None:
            raise ForecastError(f"no trigger {trigger!r}; this model has {', '.join(names)}")
        lead = spec.leads[0] if lead is None else lead
        return prioritize(self.predict(cube), cube, spec, lead, quantiles=self.spec.quantiles,
                          missing_target=self.spec.resolved_missing_target,
                          calibrator=self.trigger_calibration.get((spec.name, lead)), weight=weight,
                          max_staleness=MAX_STALENESS if max_staleness is None else max_staleness)

    def predict(self, cube: xr.Dataset) -> pd.DataFrame:
        """Forecasts for every area and horizon from the cube's last month.

        Returns
        -------
        DataFrame
            ``area, origin, horizon, time, point, mean, q...`` (one row per area × horizon; ``mean``:
            the point times the horizon's ``total_ratios``, the forecast whose totals hold).
        """
        spec = self.spec
        fm = spec.feature_matrix(cube)  # as it was trained: its families, less what it excludes
        o = cube.sizes[TIME] - 1
        panel = fm.panel
        if spec.kind == "global":
            X = fm.X.reindex(columns=self.columns)  # a feature the new data cannot give is missing
            fm = type(fm)(X=X, panel=fm.panel, families=fm.families)
            point, raw = predict_horizons(self.fitted, fm, o, spec.horizons, spec.strategy, spec.feature_params,
                                          spec.resolved_target_transform)
        else:
            fc = clone(self.fitted).fit(panel).forecast(spec.horizons, spec.quantiles)
            point, raw = fc.point, fc.quantiles
        naive = Naive().fit(panel).forecast(spec.horizons).point
        point = np.where(np.isfinite(point), point, naive)
        if raw is None:
            raw = np.repeat(point[:, :, None], len(spec.quantiles), axis=2)
        scale = mase_scale(panel.y)
        time = pd.DatetimeIndex(cube[TIME].values)
        n_a, n_h = point.shape
        frame = pd.DataFrame({
            AREA: np.repeat(panel.areas.to_numpy(), n_h),
            "origin": time[o],
            "horizon": np.tile(spec.horizons, n_a),
            TIME: np.tile([time[o] + pd.DateOffset(months=int(h)) for h in spec.horizons], n_a),
            "point": point.ravel(),
        })
        bins = size_bins(recent_level(panel.y))  # each area's size at the origin picks its shifts
        quant = np.stack([raw[:, j] + self.shift_rows(np.full(n_a, h), bins) * scale[:, None]
                          for j, h in enumerate(spec.horizons)], axis=1)
        quant = np.maximum(np.sort(quant, axis=2), 0.0)
        ratios = getattr(self, "total_ratios", {})  # a model pickled before means has none
        frame["mean"] = (point * np.array([ratios.get(h, np.nan) for h in spec.horizons])[None, :]).ravel()
        for k, q in enumerate(spec.quantiles):
            frame[quantile_column(q)] = quant[:, :, k].ravel()
        assessed = (~np.isnan(panel.y)).any(axis=1)
        return frame[np.repeat(assessed, n_h)].reset_index(drop=True)

    def totals(self, cube: xr.Dataset, lead: int, forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
        """What the areas add up to over the ``lead`` months after the cube's last month, per
        region (``admin1``) and for the country (``national``): the sum of the areas' ``mean``
        forecasts, with the 80% interval calibrated on the calibration origins' totals
        (:func:`~forecast.backtest.calibrate_totals`; the country's on the regions' when it has too
        few of its own).

        Parameters
        ----------
        cube : xarray.Dataset
        lead : int
            Months in the window (at most the model's last consecutive horizon).
        forecasts : DataFrame, optional
            :meth:`predict` of ``cube``, when it was made already.

        Returns
        -------
        DataFrame
            ``level, group, name, n_areas, of_areas, lead, mean, point, lower, upper,
            n_calibration, calibrated_by``; ``point`` sums the areas' medians (a fraction of the
            total, shown for comparison). ``n_areas`` of the group's ``of_areas`` areas have a
            forecast (an area never observed has none) and are added up.
        """
        from forecast.features import Panel

        spec = self.spec
        if lead not in self._window_leads():
            raise ForecastError(f"no {lead}-month total: model {spec.name!r} forecasts horizons {list(spec.horizons)}")
        forecasts = self.predict(cube) if forecasts is None else forecasts
        panel = Panel.from_cube(cube, spec.target, missing_target=spec.resolved_missing_target)
        scale = pd.Series(mase_scale(panel.y), index=panel.areas.astype(str))
        forecasts = forecasts.assign(scale=forecasts[AREA].astype(str).map(scale).to_numpy(float))
        frames = []
        for level, (groups, names) in level_groups(cube).items():
            table = group_totals(forecasts, groups.reindex(forecasts[AREA].astype(str).unique()), lead)
            size = groups.value_counts()
            calibration = getattr(self, "total_calibration", {}).get((level, lead))  # older pickles have none
            shifts = None if calibration is None else calibration.shifts
            table["lower"], table["upper"] = apply_total_shifts(table["mean"], table["scale"], shifts)
            table["n_calibration"] = 0 if calibration is None else calibration.n
            table["calibrated_by"] = None if calibration is None else calibration.calibrated_by
            table["of_areas"] = table["group"].map(size).to_numpy()
            frames.append(table.assign(level=level, name=table["group"].map(names)))
        out = pd.concat(frames, ignore_index=True)
        return out[["level", "group", "name", "n_areas", "of_areas", "lead", "mean", "point", "lower", "upper",
                     "n_calibration", "calibrated_by"]]

    def _window_leads(self) -> list[int]:
        """Window lengths whose every month the model forecasts (1, 2, ... up to the first gap)."""
        horizons, out = set(int(h) for h in self.spec.horizons), []
        while len(out) + 1 in horizons:
            out.append(len(out) + 1)
        return out

    def shift_rows(self, horizons: np.ndarray, bins: np.ndarray) -> np.ndarray:
        """The calibrated shifts of forecasts at ``horizons`` of areas in size ``bins``: their bin's
        own where it had enough errors, else the horizon's pooled ones (NaN: no interval)."""
        sized = getattr(self, "size_shifts", {})  # a model pickled before size bins has none
        empty = np.full(len(self.spec.quantiles), np.nan)
        return np.vstack([sized.get((int(h), b), self.shifts.get(int(h), empty)) for h, b in zip(horizons, bins)]
                         ) if len(horizons) else np.empty((0, len(self.spec.quantiles)))

    def explain(self, cube: xr.Dataset, area: str | None = None, horizon: int | None = None) -> pd.DataFrame:
        """What drives the forecasts from the cube's last month, by driver family.

        A LightGBM model's contributions are TreeSHAP values of its point model, on its raw
        score (``scale``: ``log`` of the mean for the Poisson objective, ``identity`` for the
        median); a SARIMAX's are its covariates' terms on its transformed scale (``log1p``).
        Base plus the drivers is that raw score.

        Parameters
        ----------
        cube : xarray.Dataset
        area : str, optional
            One area: a tidy table (one row per horizon and driver, largest first).
        horizon : int, optional
            One of the model's horizons (default: every one).

        Returns
        -------
        DataFrame
            Without ``area``: ``area, origin, horizon, time, base, scale`` and one column per
            driver family, one row per assessed area × horizon (as :meth:`predict`). With it:
            ``area, origin, horizon, time, driver, contribution, base, scale``.

        Raises
        ------
        ForecastError
            A model without contributions (ETS, SARIMAX without covariates, HistGradientBoosting,
            the baselines), an unknown area or horizon.
        """
        from forecast.backtest import tidy_contributions
        from forecast.models import explain_horizons, explain_series, has_contributions

        spec = self.spec
        if not has_contributions(self.fitted):
            raise ForecastError(f"model {spec.name!r} (estimator {spec.estimator}) gives no contributions per "
                                "forecast, so no driver breakdown; LightGBM models and SARIMAX with covariates "
                                "(exog) have them")
        if horizon is not None and int(horizon) not in spec.horizons:
            raise ForecastError(f"no horizon {horizon}; model {spec.name!r} forecasts {list(spec.horizons)} months ahead")
        fm = spec.feature_matrix(cube)  # as it was trained: its families, less what it excludes
        o = cube.sizes[TIME] - 1
        if spec.kind == "global":
            fm = type(fm)(X=fm.X.reindex(columns=self.columns), panel=fm.panel, families=fm.families)
            table = explain_horizons(self.fitted, fm, o, spec.horizons, spec.strategy, spec.feature_params,
                                     spec.resolved_target_transform)
        else:
            table = explain_series(clone(self.fitted).fit(fm.panel), spec.horizons)
        assessed = set(fm.panel.areas[(~np.isnan(fm.panel.y)).any(axis=1)])
        table = table[table[AREA].isin(assessed)]
        if horizon is not None:
            table = table[table["horizon"] == int(horizon)]
        origin = pd.Timestamp(cube[TIME].values[o])
        table.insert(1, "origin", origin)
        table.insert(3, TIME, [origin + pd.DateOffset(months=int(h)) for h in table["horizon"]])
        table = table.reset_index(drop=True)
        if area is None:
            return table
        if area not in set(table[AREA]):
            known = sorted(set(table[AREA]))
            raise ForecastError(f"no explained forecast for area {area!r}; {len(known)} areas have one, e.g. "
                                f"{', '.join(known[:5])}")
        return tidy_contributions(table[table[AREA] == area])

    def scenario(self, shocks, *, cube: xr.Dataset, areas=None, region: str | None = None, months=None,
                 trigger: str | None = None, lead: int | None = None, name: str | None = None):
        """Forecast ``cube`` again with covariates rewritten, beside the baseline forecast.

        ``model.scenario(["rainfall=-50%"], cube=cube, region="Bay")``: what if the last season
        had failed. See :func:`forecast.pipeline.run_scenario` for the arguments and the
        :class:`~forecast.pipeline.ScenarioResult` it returns.
        """
        from forecast.pipeline._scenario import run_scenario

        return run_scenario(self, cube, shocks, areas=areas, region=region, months=months, trigger=trigger,
                            lead=lead, name=name)


def train(cube: xr.Dataset, spec: ModelSpec, *, calibration: RollingOrigin | BacktestResult | None = None,
          triggers: Sequence = (), progress: Progress | bool | None = None) -> TrainedModel:
    """Fit ``spec`` on all of ``cube`` and calibrate its intervals on a backtest of the last months.

    Parameters
    ----------
    cube : xarray.Dataset
    spec : ModelSpec
    calibration : RollingOrigin or BacktestResult, optional
        The origins whose errors calibrate the intervals (default: the last 12, every month).
        A backtest of ``spec`` already run on this cube lends its scored origins' forecasts
        instead (:func:`forecast.backtest.scored_part`), so nothing is fitted twice: with the
        default 12 scored origins they are the default's origins. Its LightGBM bin edges were
        found at its first (calibration) origin, so the shifts are close to, not identical with,
        those of a calibration run of its own.
    triggers : sequence of TriggerSpec
        Triggers to prioritize with; their probabilities are recalibrated (Platt) on the same
        origins' known outcomes.
    progress : callable, bool or None
        As in :func:`forecast.backtest.backtest`: by default one bar, with an ETA, for the
        calibration origins (labelled with the spec's name), the fit on every month
        (``"<name>: fit on every month"``, 0 then 1 of 1) and, with triggers, their signals.
    """
    calibration = calibration or RollingOrigin(n_origins=12, calibration_origins=0)
    with progress_bar(progress) as report:
        return _train(cube, spec, calibration, triggers, report)


def _train(cube, spec, calibration, triggers, report) -> TrainedModel:
    digest = cube_hash(cube)
    if isinstance(calibration, BacktestResult):
        result = _lent(calibration, spec, digest)
    else:
        result = backtest(cube, [spec], folds=calibration, baselines=False, progress=report or False)
    rows = result.forecasts
    levels = np.asarray(spec.quantiles)
    shifts, counts, sized, ratios = {}, {}, {}, {}
    for h in spec.horizons:
        part = rows[(rows["horizon"] == h) & np.isfinite(rows["actual"])]
        if len(part) < MIN_CALIBRATION:
            continue
        base = np.column_stack([part[f"raw_{quantile_column(q)}"] for q in levels])
        resid = (part["actual"].to_numpy()[:, None] - base) / part["scale"].to_numpy()[:, None]
        shifts[h] = conformal_shifts(resid, levels)
        counts[h] = len(part)
        ratios[h] = total_ratio(part["actual"].to_numpy(), part["point"].to_numpy())
        if spec.interval_calibration == "size":  # each size bin on its own errors, when it has enough
            for b in SIZE_BINS:
                own = (part["size_bin"] == b).to_numpy()
                if own.sum() >= MIN_CALIBRATION:
                    sized[(h, b)] = conformal_shifts(resid[own], levels)
    if not shifts:
        raise ForecastError(f"{spec.name}: too few observed outcomes in the last "
                            f"{result.folds.n_origins} origins to calibrate intervals")
    step = f"{spec.name}: fit on every month"
    if report:
        report(step, 0, 1)
    if spec.kind == "global":
        fm = spec.feature_matrix(cube)
        fitted = fit_horizons(spec, fm, cube.sizes[TIME] - 1, spec.horizons)
        columns = list(fm.X.columns)
    else:
        fitted, columns = spec.build(), []
    if report:
        report(step, 1, 1)
    model = TrainedModel(spec=spec, fitted=fitted, shifts=shifts, columns=columns, cube_hash=digest,
                         n_calibration=counts, triggers=list(triggers), size_shifts=sized, total_ratios=ratios)
    model.trigger_calibration = _trigger_calibration(result, cube, triggers, model, report)
    model.total_calibration = _total_calibration(rows, cube, model._window_leads())
    return model


def _lent(result: BacktestResult, spec: ModelSpec, digest: str) -> BacktestResult:
    """The scored origins of a backtest of ``spec`` on the cube of hash ``digest``, as a calibration run."""
    if result.cube_hash != digest:
        raise ForecastError(f"the backtest given as calibration ran on another cube (hash {result.cube_hash[:12]}, "
                            f"this cube {digest[:12]}); pass the cube it ran on, or a RollingOrigin to calibrate "
                            "on a backtest of its own")
    ran = next((s for s in result.specs if s.name == spec.name), None)
    if ran is None:
        raise ForecastError(f"the backtest given as calibration has no model {spec.name!r}; it has "
                            f"{', '.join(result.models)}")
    if ran != spec:
        raise ForecastError(f"the backtest given as calibration ran another {spec.name!r} (its spec differs from "
                            "the one to train); backtest this spec, or pass a RollingOrigin")
    return scored_part(result, spec.name)


def _total_calibration(rows: pd.DataFrame, cube: xr.Dataset, leads: list[int]) -> dict:
    """Per level and window length, the interval of totals from the calibration origins' own
    (out-of-sample ``mean``) totals; each level falls back on the finer one's errors."""
    out, finer = {}, None
    for level, (groups, _) in level_groups(cube).items():
        for lead in leads:
            out[(level, lead)] = calibrate_totals(rows, groups, lead, finer=finer)
        finer = groups
    return out


def _trigger_calibration(result, cube, triggers, model, report=None) -> dict:
    """Per (trigger, lead), Platt recalibration of the forecast route on the calibration origins,
    their quantiles shifted as the final model shifts them."""
    if not triggers:
        return {}
    from forecast.triggers import PlattCalibrator, trigger_signals

    spec = result.specs[-1]
    rows = result.forecasts.copy()
    levels = list(spec.quantiles)
    raw = np.column_stack([rows[f"raw_{quantile_column(q)}"] for q in levels])
    shift = model.shift_rows(rows["horizon"].to_numpy(), rows["size_bin"].to_numpy())
    quant = np.maximum(np.sort(raw + shift * rows["scale"].to_numpy()[:, None], axis=1), 0.0)
    for k, q in enumerate(levels):
        rows[quantile_column(q)] = quant[:, k]
    result = type(result)(**{**result.__dict__, "forecasts": rows})
    signals = trigger_signals(result, cube, triggers, model=spec.name, routes=("forecast",), recalibrate="never",
                              progress=report)
    return {(t, lead): PlattCalibrator().fit(part["probability_raw"], part["event"])
            for (t, lead), part in signals.groupby(["trigger", "lead"])}
