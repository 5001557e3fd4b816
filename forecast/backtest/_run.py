"""The backtest runner: every spec (and the baselines) at every rolling origin, one long table."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.base import clone

from forecast.backtest._conformal import MIN_CALIBRATION, calibrate, recent_level, size_bins
from forecast.backtest._contributions import (
    CONTRIBUTION_KEYS,
    _contribution_rows,
    _explain_rows,
    tidy_contributions,
)
from forecast.backtest._folds import RollingOrigin
from forecast.backtest._metrics import add_skill, mase_scale, score
from forecast.backtest._progress import Progress, progress_bar
from forecast.cube import cube_hash
from forecast.errors import ForecastError
from forecast.features import FeatureMatrix, build_features
from forecast.models import (
    ModelSpec,
    MIN_ROWS,
    Naive,
    TooFewRows,
    as_done,
    baseline_specs,
    explain_horizons,
    feature_importance,
    fit_horizons,
    has_contributions,
    predict_horizons,
)

__all__ = ["backtest", "BacktestResult", "CONTRIBUTION_KEYS", "tidy_contributions"]


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    Attributes
    ----------
    forecasts : DataFrame
        One row per model × origin × horizon × area: ``model, origin, horizon, area, time,
        actual, point, q0.1 ... , scale, recent_mean, size_bin, calibrated_by, role``
        (``recent_mean``: the area's trailing 12-month mean at the origin; ``size_bin``: its
        tercile then; ``calibrated_by``: ``size`` or ``pooled``, :func:`~forecast.backtest.calibrate`;
        ``role``: ``scored`` or ``calibration``).
    specs : list of ModelSpec
        The models, baselines included, in run order.
    folds : RollingOrigin
    target : str
    cube_hash : str
    importance : dict of str to Series
        Feature importance (gain) of each global model's last fit.
    contributions : DataFrame
        Per scored forecast of a model with contributions (LightGBM; the calibration origins'
        forecasts are not explained): ``model, origin, horizon, area,
        time, base, scale`` and one column per driver family (:data:`forecast.features.DRIVERS`),
        base plus drivers being the point model's raw score (``scale``: ``log`` of the mean or
        the forecast itself, ``identity``). Empty when no model has them. Read one forecast
        with :meth:`explain`.
    skipped : dict of str to str
        The specs that could not run on this cube (a covariate it lacks), with the reason;
        :meth:`summary` lists them as rows without scores.
    notes : dict of str to list of str
        Per model, in words: the origins where it could not forecast and the naive forecast
        stood in (a global model with too few training rows: a stock observed in few rounds),
        and how many scored forecasts have no interval (too few earlier errors to calibrate one).
    """

    forecasts: pd.DataFrame
    specs: list[ModelSpec]
    folds: RollingOrigin
    target: str
    cube_hash: str
    importance: dict[str, pd.Series] = field(default_factory=dict)
    contributions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONTRIBUTION_KEYS))
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scored(self) -> pd.DataFrame:
        return self.forecasts[self.forecasts["role"] == "scored"]

    @property
    def models(self) -> list[str]:
        return [s.name for s in self.specs]

    def scores(self, by: Sequence[str] = ("model", "horizon")) -> pd.DataFrame:
        """Metrics on the scored origins, with skill against seasonal naive and naive."""
        levels = self.specs[0].quantiles if self.specs else []
        coverages = [round(1 - 2 * q, 6) for q in levels
                     if q < 0.5 and any(abs(1 - q - p) < 1e-9 for p in levels)]
        table = score(self.scored, by=by, coverages=sorted(coverages))
        for reference in ("seasonal_naive", "naive"):
            if reference in self.models:
                table = add_skill(table, reference, "mase")
        return table

    def summary(self, metrics: Sequence[str] = ("mase", "rmsle", "crps", "coverage80"),
                horizons: Sequence[int] | None = None) -> pd.DataFrame:
        """Model × (metric, horizon) table, models in run order."""
        table = self.scores()
        if horizons is not None:
            table = table[table["horizon"].isin(horizons)]
        wide = table.pivot(index="model", columns="horizon", values=list(metrics))
        wide = wide.reindex([*self.models, *self.skipped])
        if self.skipped:
            wide.attrs["skipped"] = dict(self.skipped)
        return wide

    def plot_fan(self, area: str, model: str | None = None, *, horizon: int = 1):
        """Fan chart of one area's forecasts against what was observed (a matplotlib Figure).

        ``model`` defaults to the last spec (the first non-baseline model run).
        """
        from forecast.backtest._plots import fan_chart

        return fan_chart(self.forecasts, area, model or self.models[-1], horizon=horizon)

    def plot_importance(self, model: str | None = None, top: int = 20):
        """Feature importance (share of gain) of a global model's last fit."""
        from forecast.backtest._plots import importance_chart

        model = model or self.models[-1]
        if model not in self.importance:
            raise ForecastError(f"no feature importance for {model!r}; global models have it: "
                                f"{', '.join(self.importance) or 'none in this backtest'}")
        return importance_chart(self.importance[model], top=top, title=f"{model}: feature importance")

    def explain(self, area: str, origin, model: str | None = None, horizon: int | None = None) -> pd.DataFrame:
        """What drove one area's forecasts from one origin, by driver family.

        Parameters
        ----------
        area : str
        origin : str, Timestamp or datetime
            The origin month (e.g. ``"2023-06"``).
        model : str, optional
            Default: the last model with contributions.
        horizon : int, optional
            Default: every horizon.

        Returns
        -------
        DataFrame
            Tidy: ``model, area, origin, horizon, time, driver, contribution, base, scale``,
            per horizon the drivers sorted by absolute contribution, largest first.

        Raises
        ------
        ForecastError
            No contributions in this backtest, or an unknown model, area, origin or horizon
            (the message lists the known ones).
        """
        calibrating = self.forecasts.loc[self.forecasts["role"] == "calibration", "origin"].unique()
        return _explain_rows(self.contributions, area, origin, model, horizon, calibrating)

    def plot_drivers(self, area: str, origin, model: str | None = None, *, horizon: int = 1):
        """One bar per driver family of a forecast (a matplotlib Figure); see :func:`driver_chart`."""
        from forecast.backtest._plots import driver_chart

        return driver_chart(self.explain(area, origin, model=model, horizon=horizon))

    def to_xarray(self) -> xr.Dataset:
        """Forecasts as a Dataset with dims (model, origin, horizon, area)."""
        keep = ["model", "origin", "horizon", "area", "actual", "point",
                *[c for c in self.forecasts if c.startswith("q")]]
        return self.forecasts[keep].set_index(["model", "origin", "horizon", "area"]).to_xarray()


def backtest(
    cube: xr.Dataset,
    specs: Sequence[ModelSpec],
    *,
    folds: RollingOrigin | None = None,
    baselines: bool = True,
    neighbours=None,
    progress: Progress | bool | None = None,
    dask=None,
    explain: bool = True,
) -> BacktestResult:
    """Rolling-origin backtest of ``specs`` beside the baselines.

    A spec that names a variable the cube lacks (a covariate of a stock file that has none) is
    skipped with its reason in :attr:`BacktestResult.skipped` while the others run; when no
    spec given can run, the backtest stops with every reason.

    Parameters
    ----------
    cube : xarray.Dataset
    specs : sequence of ModelSpec
        All for the same target, horizons and quantiles.
    folds : RollingOrigin, optional
    baselines : bool, default True
        Run naive, seasonal naive, moving average, EWM and historical mean beside the specs.
    neighbours : mapping, optional
        Passed to :func:`forecast.features.build_features`.
    progress : callable, bool or None
        Default (None): a bar per model with its ETA when a terminal or a Jupyter notebook shows
        it (nothing in a pipe or a log); ``False``: nothing; a callable is called as
        ``progress(model, done, total)`` after each origin (see
        :func:`forecast.backtest.progress_bar`).
    dask : distributed.Client, "local" or str, optional
        Run the fits as Dask tasks: on a ``Client``, a ``LocalCluster`` (``"local"``) or the
        scheduler at an address (``"tcp://host:8786"``). The forecasts are identical to a
        local run's; features are built once here and sent to every worker.
    explain : bool, default True
        Keep each scored LightGBM forecast's contributions by driver family (TreeSHAP:
        :attr:`BacktestResult.contributions`, :meth:`BacktestResult.explain`, MLflow's
        ``explanations/contributions.parquet``). The calibration origins' forecasts only set the
        intervals, so they are not explained. At scale drivers cost more than the fits (2,000
        areas: 72 TreeSHAP passes took 3x the thread time of the 12 fits); False skips them.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> result = backtest(forecast.load_somalia(), [load_spec("models/lightgbm.yaml")])  # doctest: +SKIP
    >>> result.summary(horizons=[1, 3, 6])                                            # doctest: +SKIP
    """
    folds = folds or RollingOrigin()
    specs = list(specs)
    if not specs and not baselines:
        raise ForecastError("nothing to backtest: give at least one spec or keep the baselines")
    first = specs[0] if specs else None
    target = first.target if first else "arrivals"
    horizons = first.horizons if first else [1, 2, 3, 4, 5, 6]
    quantiles = first.quantiles if first else [0.1, 0.5, 0.9]
    missing = first.resolved_missing_target if first else None
    for s in specs[1:]:
        if (s.target, s.horizons, s.quantiles, s.resolved_missing_target) != (target, horizons, quantiles, missing):
            raise ForecastError(f"spec {s.name!r} differs from {first.name!r} in target, horizons, "
                                "quantiles or missing_target; backtest them separately")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ForecastError(f"model names repeat: {names}; give each spec its own name")
    if target not in cube.data_vars:
        raise ForecastError(f"the cube has no variable {target!r} to forecast; it has "
                            f"{', '.join(str(v) for v in cube.data_vars if not str(v).endswith('_observed'))}")
    skipped = {s.name: f"skipped: {'; '.join(why)}" for s in specs if (why := s.missing_inputs(cube))}
    if specs and len(skipped) == len(specs):
        raise ForecastError("no spec can run on this cube:\n" + "\n".join(f"  {k}: {v}" for k, v in skipped.items()))
    specs = [s for s in specs if s.name not in skipped]
    names = [s.name for s in specs]
    if baselines:
        taken = set(names)
        specs = [b for b in baseline_specs(target, horizons, quantiles, missing) if b.name not in taken] + specs

    cal, scored = folds.origins(cube.sizes["time"], max(horizons))
    runner = _Runner(cube, target, horizons, quantiles, neighbours)
    frames, importance, explained, notes = [], {}, [], {}
    with progress_bar(progress) as report, _executor(dask) as client:
        for spec in specs:
            blocks = folds.blocks(cube.sizes["time"], max(horizons), spec.refit_every)
            table, imp, contributions, spec_notes = runner.run(spec, blocks, report, client,
                                                               frozenset(scored) if explain else frozenset())
            table["role"] = np.where(table["origin"].isin(runner.time[cal]), "calibration", "scored")
            spec_notes += _interval_notes(table[table["role"] == "scored"])
            spec_notes += _pooled_notes(table[table["role"] == "scored"], spec)
            if spec_notes:
                notes[spec.name] = spec_notes
            frames.append(table)
            if imp is not None:
                importance[spec.name] = imp
            if contributions is not None:
                explained.append(contributions)
    forecasts = pd.concat(frames, ignore_index=True)
    contributions = (pd.concat(explained, ignore_index=True) if explained
                     else pd.DataFrame(columns=CONTRIBUTION_KEYS))
    return BacktestResult(forecasts=forecasts, specs=specs, folds=folds, target=target,
                          cube_hash=cube_hash(cube), importance=importance, contributions=contributions,
                          skipped=skipped, notes=notes)


@contextmanager
def _executor(dask):
    if dask is None:
        yield None
        return
    from forecast.backtest._dask import connect

    with connect(dask) as client:
        yield client


class _Runner:
    """Shares the feature matrices between specs with the same feature settings."""

    def __init__(self, cube, target, horizons, quantiles, neighbours):
        self.cube, self.target = cube, target
        self.horizons, self.quantiles = list(horizons), list(quantiles)
        self.neighbours = neighbours
        self.time = pd.DatetimeIndex(cube["time"].values)
        self._features: dict = {}

    def features(self, spec: ModelSpec) -> FeatureMatrix:
        if spec.kind == "series":  # the panel only: series models read no features
            key = ("series", spec.resolved_missing_target, tuple(spec.exclude_variables))
            if key not in self._features:
                self._features[key] = build_features(self.cube, self.target, families=[],
                                                     missing_target=spec.resolved_missing_target,
                                                     exclude_variables=spec.exclude_variables)
            return self._features[key]
        key = (str(spec.features), repr(sorted(spec.feature_params.items())), spec.resolved_missing_target,
               tuple(spec.exclude_features), tuple(spec.exclude_variables))
        if key not in self._features:
            self._features[key] = spec.feature_matrix(self.cube, neighbours=self.neighbours)
        return self._features[key]

    def run(self, spec, blocks, progress, client=None, explain: frozenset = frozenset()):
        """``blocks``: the origins each fit serves (:meth:`RollingOrigin.blocks`), independent of
        each other; ``explain``: the origins whose forecasts get their driver contributions."""
        fm = self.features(spec)
        panel = fm.panel
        origins = [o for block in blocks for o in block]
        # LightGBM finds its bin edges once, on the rows known at the first origin
        bins = origins[0] if _shares_bins(spec) else None
        if client is None:
            if bins is not None:
                bins = _shared_bins(spec, fm, bins)
            outputs, parts, done = [None] * len(blocks), [None] * len(blocks), 0
            for i, out in _local_blocks(spec, fm, blocks, self.horizons, self.quantiles, bins, explain):
                outputs[i] = out
                parts[i] = self._block_rows(spec, panel, out[0])  # while the other blocks fit
                done += len(blocks[i])
                if progress:
                    progress(spec.name, done, len(origins))
        else:
            from forecast.backtest._dask import map_blocks

            outputs = map_blocks(client, _forecast_block, spec, fm, blocks, self.horizons, self.quantiles,
                                 bins, explain, progress=progress)
            parts = [self._block_rows(spec, panel, out[0]) for out in outputs]
        notes = _row_notes(self.time, len(origins), [(out, n) for out, _, n in outputs if n is not None])
        rows, raws, explained = ([x for part in parts for x in part[k]] for k in range(3))
        table = pd.concat(rows, ignore_index=True)
        table = calibrate(table, np.concatenate(raws), self.quantiles, by_size=spec.interval_calibration == "size")
        contributions = pd.concat(explained, ignore_index=True) if explained else None
        importance = next((imp for _, imp, _ in reversed(outputs) if imp is not None), None)
        return table, importance, contributions, notes

    def _block_rows(self, spec, panel, block_out) -> tuple[list, list, list]:
        """A block's forecasts as table rows, raw quantiles and driver rows, origin by origin."""
        rows, raws, explained = [], [], []
        for o, point, raw, drivers in block_out:
            history = panel.y[:, : o + 1]
            naive = Naive().fit(panel.upto(o)).forecast(self.horizons).point
            point = np.where(np.isfinite(point), point, naive)  # a model's gap falls back to naive
            if raw is None:
                raw = np.repeat(point[:, :, None], len(self.quantiles), axis=2)
            assessable = (~np.isnan(history)).any(axis=1)
            rows.append(_rows(spec.name, self.time, panel, o, self.horizons, point, mase_scale(history), assessable))
            raws.append(raw[assessable].reshape(-1, len(self.quantiles)))
            if drivers is not None:
                explained.append(_contribution_rows(spec.name, self.time, o, drivers, assessable))
        return rows, raws, explained


def _local_blocks(spec, fm, blocks, horizons, quantiles, bins=None, explain: frozenset = frozenset()):
    """``(index, result)`` of each block as it is done. A recursive global model fits once per
    block, so blocks run side by side in threads (one OpenMP thread each: LightGBM releases the
    GIL), the latest first: their fits have the most rows, so the threads finish together instead
    of one waiting alone on the largest fit. The direct strategy already fits its horizons side
    by side inside a block."""
    if spec.kind == "global" and spec.strategy == "recursive" and len(blocks) > 1:
        latest_first = list(reversed(range(len(blocks))))
        for j, out in as_done(_forecast_block, [(spec, fm, blocks[i], horizons, quantiles, bins, explain)
                                                for i in latest_first]):
            yield latest_first[j], out
        return
    for i, block in enumerate(blocks):
        yield i, _forecast_block(spec, fm, block, horizons, quantiles, bins, explain)


def _shares_bins(spec: ModelSpec) -> bool:
    return spec.kind == "global" and spec.strategy in ("direct", "recursive") and \
        hasattr(spec.build(), "fit_binned")


def _shared_bins(spec: ModelSpec, fm: FeatureMatrix, first_origin: int, last_row: int | None = None):
    """LightGBM bin edges for every fit, found on the rows known at ``first_origin``."""
    X = fm.X.to_numpy()
    return spec.build().shared_bins(X[: last_row], fm.rows_upto(first_origin))


def _forecast_block(spec: ModelSpec, fm: FeatureMatrix, block: Sequence[int], horizons, quantiles, bins=None,
                    explain: frozenset = frozenset()):
    """Fit ``spec`` at the block's first origin and forecast from each of its origins.

    ``bins``: a global model's :class:`~forecast.models.SharedBins`, or the backtest's first
    origin to make them from (a Dask task makes its own: the same edges as everywhere else).
    ``explain``: the origins (indices) whose forecasts get their driver contributions.

    Returns ``([(origin, point, raw quantiles or None, driver contributions or None), ...],
    feature importance or None, training rows or None)``; the contributions are
    :func:`forecast.models.explain_horizons`' table for a model that has them (LightGBM). A
    global model with too few training rows at the block's origin (a stock observed in few
    rounds) forecasts nothing there, so the naive forecast stands in, and the last item is the
    number of rows it had (None when it fitted).
    Pure (no shared state), so blocks can run anywhere: here, or as Dask tasks.
    """
    out, importance = [], None
    if spec.kind == "global":
        if isinstance(bins, (int, np.integer)):  # only the rows up to this block's fit are needed
            bins = _shared_bins(spec, fm, int(bins), fm.rows_upto(block[0]).stop)
        try:
            fitted = fit_horizons(spec, fm, block[0], horizons, bins)
        except TooFewRows as error:
            gap = np.full((fm.n_areas, len(horizons)), np.nan)
            return [(o, gap, None, None) for o in block], None, error.n_rows
        importance = feature_importance(fitted, fm)
        explains = bool(explain) and all(has_contributions(m) for m in fitted.values())
        transform = spec.resolved_target_transform
        for o in block:
            point, raw = predict_horizons(fitted, fm, o, horizons, spec.strategy, spec.feature_params, transform)
            drivers = (explain_horizons(fitted, fm, o, horizons, spec.strategy, spec.feature_params, transform)
                       if explains and o in explain else None)
            out.append((o, point, raw, drivers))
    else:
        fitted = clone(spec.build()).fit(fm.panel.upto(block[0]))
        for i, o in enumerate(block):
            if i:  # a series model forecasts from the end of the history it holds: give it the new months
                fitted = fitted.update(fm.panel.upto(o)) if hasattr(fitted, "update") else \
                    clone(spec.build()).fit(fm.panel.upto(o))
            fc = fitted.forecast(horizons, quantiles)
            out.append((o, fc.point, fc.quantiles, None))
    return out, importance, None


def _row_notes(time, n_origins: int, short: list) -> list[str]:
    """One note for the origins where a global model had too few training rows."""
    if not short:
        return []
    at = sorted(o for out, _ in short for o, *_ in out)
    rows = [n for _, n in short]
    return [f"naive forecast instead at {len(at)} of {n_origins} origins ({time[at[0]]:%Y-%m} to "
            f"{time[at[-1]]:%Y-%m}): {min(rows)}-{max(rows)} training rows, fewer than the {MIN_ROWS} a global "
            "model needs (the target is observed too rarely there)"]


def _interval_notes(table: pd.DataFrame) -> list[str]:
    """Why scored forecasts have no interval: too few past errors at their horizon to calibrate one."""
    lower = [c for c in table.columns if c.startswith("q") and c != "q0.5"][:1]
    if not lower:
        return []
    forecasted = np.isfinite(table["point"].to_numpy())
    missing = forecasted & ~np.isfinite(table[lower[0]].to_numpy())
    if not missing.any():
        return []
    by_h = pd.Series(missing).groupby(table["horizon"].to_numpy()).agg(["sum", "size"])
    parts = ", ".join(f"h{h}: {int(r['sum'])} of {int(r['size'])}" for h, r in by_h.iterrows() if r["sum"])
    return [f"no interval for {int(missing.sum())} scored forecasts ({parts}): fewer than {MIN_CALIBRATION} earlier "
            "errors at their horizon to calibrate one, so none is made up"]


def _pooled_notes(table: pd.DataFrame, spec: ModelSpec) -> list[str]:
    """Which size bins fell back to the pooled calibration (too few errors of their own)."""
    if spec.interval_calibration != "size" or "calibrated_by" not in table:
        return []
    pooled = table[(table["calibrated_by"] == "pooled") & (table["size_bin"] != "unknown")]
    if pooled.empty:
        return []
    parts = ", ".join(f"{b}: {n}" for b, n in pooled["size_bin"].value_counts().sort_index().items())
    return [f"{len(pooled)} scored forecasts ({parts}) have intervals from the pooled calibration: their size bin "
            f"had fewer than {MIN_CALIBRATION} earlier errors of its own"]


def _rows(name, time, panel, o, horizons, point, scale, assessable) -> pd.DataFrame:
    n_a = int(assessable.sum())
    hs = np.asarray(horizons)
    target_idx = o + hs
    actual = panel.y[:, target_idx][assessable]
    level = recent_level(panel.y[:, : o + 1])[assessable]  # known at the origin: it sizes the area
    return pd.DataFrame({
        "model": name,
        "origin": time[o],
        "horizon": np.tile(hs, n_a),
        "area": np.repeat(panel.areas[assessable].to_numpy(), len(hs)),
        "time": np.tile(time[target_idx], n_a),
        "actual": actual.ravel(),
        "point": point[assessable].ravel(),
        "scale": np.repeat(scale[assessable], len(hs)),
        "recent_mean": np.repeat(level, len(hs)),
        "size_bin": np.repeat(size_bins(level), len(hs)),
    })
