"""Model specifications: what to fit, on which features, for which target and horizons.

A spec is declared in YAML (``models/*.yaml``) and loaded into a frozen pydantic model that
rejects unknown keys, unknown estimators, unknown estimator parameters and bad horizons with
a message naming the file and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from forecast._names import target_kind
from forecast.errors import ForecastError
from forecast.policy import shipped_file
from forecast.features import DEFAULT_PARAMS, FAMILIES
from forecast.models._baselines import BASELINES
from forecast.models._global import HistGBForecaster, LightGBMForecaster

__all__ = ["ModelSpec", "load_spec", "ESTIMATORS", "Estimator", "register_estimator",
           "baseline_specs", "default_missing_target"]


@dataclass(frozen=True)
class Estimator:
    """An estimator a spec can name: ``global`` models read features, ``series`` models the panel."""

    kind: Literal["global", "series"]
    factory: Callable


ESTIMATORS: dict[str, Estimator] = {
    "lightgbm": Estimator("global", LightGBMForecaster),
    "hist_gradient_boosting": Estimator("global", HistGBForecaster),
    **{name: Estimator("series", cls) for name, cls in BASELINES.items()},
}


def register_estimator(name: str, kind: Literal["global", "series"], factory: Callable) -> None:
    """Make ``factory`` available to specs as ``estimator: name``."""
    ESTIMATORS[name] = Estimator(kind, factory)


def _register_local() -> None:
    from forecast.models._local import ETS, SARIMAX

    ESTIMATORS.setdefault("ets", Estimator("series", ETS))
    ESTIMATORS.setdefault("sarimax", Estimator("series", SARIMAX))


def _estimator(name: str) -> Estimator:
    """The registered estimator; the statsmodels ones register on first use, also in a fresh
    process that unpickled a spec (a Dask worker) without ever validating one."""
    if name not in ESTIMATORS:
        _register_local()
    return ESTIMATORS[name]


#: Boosting rounds a global model's params may set: every model's, and the 0.1 / 0.9 models' (None:
#: as many as every model's).
_ROUNDS = ("n_estimators", "max_iter", "quantile_n_estimators", "quantile_max_iter")

#: The loss of a point model of a change (``target_transform: log_ratio``), per parameter name.
_CHANGE_LOSS = {"objective": "regression", "loss": "squared_error"}
_COUNT_LOSSES = ("poisson", "tweedie")


def default_missing_target(target: str) -> str:
    """Flow-monitoring targets are event logs (no record = nobody moved); stocks are rounds."""
    return "zero" if target_kind(target) == "flow" else "skip"


def _closest(word: str, options) -> str:
    near = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


class ModelSpec(BaseModel):
    """One model to backtest or train.

    Attributes
    ----------
    name : str
        The model's name in tables and its MLflow run name.
    estimator : str
        A key of ``ESTIMATORS``: lightgbm, hist_gradient_boosting, ets, sarimax, naive,
        seasonal_naive, moving_average, ewm, historical_mean.
    params : dict
        The estimator's constructor parameters.
    features : list of str or "all"
        Feature families (global models only).
    feature_params : dict
        Overrides of the feature defaults (lags, windows, covariate_lags, ...).
    exclude_features : list of str
        Columns of the families to leave out (e.g. ``y_max3``), checked against what the
        families produce.
    exclude_variables : list of str
        Cube variables the model must not read at all, for ablations (e.g. ``[rainfall, ndvi]``
        to withhold the drought data): they are left out of the panel before any family runs,
        so no column of any family (covariates, drought, pressure, spatial, masks, ...) comes
        from them. ``flows`` withholds the flows. A name the cube lacks, or the target, is
        refused when the features are built.
    target : str
        ``arrivals`` or ``idp_stock`` (any cube variable on area × time).
    missing_target : {"skip", "zero"}, optional
        Default: ``zero`` for flow-monitoring targets (arrivals, departures, returns), ``skip``
        for stocks observed in rounds.
    target_transform : {"level", "log_ratio"}, optional
        What a global model learns. ``level``: the target itself. ``log_ratio``: the change
        from the last observed value at the origin (the last round of a stock),
        ``log1p(y[t+h]) - log1p(y_last[t])``; its forecasts go back to levels as
        ``expm1(log1p(y_last) + change)``, so a model that learns no change forecasts the last
        round again, as the naive forecast does. Rows of an area not yet observed have no last
        value and are not trained on. The change can be negative, so a count objective
        (``poisson``, ``tweedie``) gives way to squared error for the point model; the
        quantile models are unchanged. Default: ``log_ratio`` for a global model of a stock
        (``idp_stock``: learning its level from pooled features is what loses to the last
        round), ``level`` otherwise. Series models (ETS, SARIMAX, baselines) take ``level``:
        they read each area's own series.
    horizons : list of int
        Months ahead, default 1-6.
    quantiles : list of float
        Default 0.1, 0.5, 0.9.
    strategy : {"direct", "pooled", "recursive"}
        ``direct``: one model per horizon; ``pooled``: one model with the horizon as a feature;
        ``recursive``: one one-month-ahead model whose forecasts are fed back as the target
        (features ``lags``, ``rolling`` and ``season`` only: nothing else can be rebuilt from
        a forecast). Global models only.
    drop_incomplete_rows : bool
        Train a global model only on rows whose every feature is observed, as mlforecast's
        ``dropna`` does (default False: LightGBM reads NaN as "not observed" and learns from
        the first months of each area too). Forecasts are made for every area either way.
    refit_every : int, optional
        Estimate this model at every n-th backtest origin only (default: the folds'
        ``refit_every``). In between, a global model reuses its fit on the new feature rows and
        ETS keeps its parameters and filters the new months (``ETS.update``): the expensive
        part of per-area models is the estimation, not the filter.
    interval_calibration : {"size", "pooled"}
        ``size`` (default): intervals calibrated per size bin of the areas (terciles of their
        trailing 12-month mean at the origin), a bin with too few past errors falling back to the
        pooled calibration; ``pooled``: one calibration for every area
        (:func:`forecast.backtest.calibrate`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    estimator: str
    description: str = ""
    params: dict = {}
    features: list[str] | Literal["all"] = "all"
    feature_params: dict = {}
    exclude_features: list[str] = []
    exclude_variables: list[str] = []
    target: str = "arrivals"
    missing_target: Literal["skip", "zero"] | None = None
    target_transform: Literal["level", "log_ratio"] | None = None
    horizons: list[int] = [1, 2, 3, 4, 5, 6]
    quantiles: list[float] = [0.1, 0.5, 0.9]
    strategy: Literal["direct", "pooled", "recursive"] = "direct"
    drop_incomplete_rows: bool = False
    refit_every: int | None = None
    interval_calibration: Literal["size", "pooled"] = "size"

    @field_validator("estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        _register_local()
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r}{_closest(value, ESTIMATORS)}; "
                             f"known: {', '.join(sorted(ESTIMATORS))}")
        return value

    @field_validator("horizons")
    @classmethod
    def _good_horizons(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one horizon is needed")
        bad = [h for h in value if not 1 <= h <= 24]
        if bad:
            raise ValueError(f"horizons are months ahead between 1 and 24, got {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"horizons repeat: {value}")
        return sorted(value)

    @field_validator("quantiles")
    @classmethod
    def _good_quantiles(cls, value: list[float]) -> list[float]:
        bad = [q for q in value if not 0 < q < 1]
        if bad:
            raise ValueError(f"quantiles lie strictly between 0 and 1, got {bad}")
        return sorted(set(value))

    @field_validator("features")
    @classmethod
    def _known_families(cls, value):
        if value == "all":
            return value
        unknown = [f for f in value if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature families {unknown}{_closest(unknown[0], FAMILIES)}; "
                             f"known: {', '.join(FAMILIES)}")
        return value

    @field_validator("refit_every")
    @classmethod
    def _positive_refit(cls, value):
        if value is not None and value < 1:
            raise ValueError(f"refit_every must be at least 1 (1 = estimate at every origin), got {value}")
        return value

    @field_validator("feature_params")
    @classmethod
    def _known_feature_params(cls, value: dict) -> dict:
        unknown = set(value) - set(DEFAULT_PARAMS) - {"covariates"}
        if unknown:
            raise ValueError(f"unknown feature parameters {sorted(unknown)}; known: "
                             f"{', '.join(sorted([*DEFAULT_PARAMS, 'covariates']))}")
        return value

    @model_validator(mode="after")
    def _params_fit_estimator(self) -> ModelSpec:
        known = set(ESTIMATORS[self.estimator].factory().get_params())
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(f"estimator {self.estimator!r} has no parameter(s) {unknown}"
                             f"{_closest(unknown[0], known)}; it takes: {', '.join(sorted(known))}")
        if "quantiles" in self.params:
            raise ValueError("set quantiles at the top level of the spec, not under params")
        for name in (n for n in _ROUNDS if n in self.params):  # at load, not at a fit deep in a backtest
            value = self.params[name]
            if value is None and name.startswith("quantile_"):
                continue  # the outer quantile models take every model's rounds
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"params.{name} is a number of boosting rounds, a whole number of at least 1; "
                                 f"got {value!r}")
        if self.drop_incomplete_rows and self.kind != "global":
            raise ValueError(f"drop_incomplete_rows is for global models (rows of features); {self.estimator!r} "
                             "reads each area's series")
        if self.target_transform == "log_ratio" and self.kind != "global":
            raise ValueError(f"target_transform log_ratio is for global models; {self.estimator!r} reads each "
                             "area's own series (ETS and SARIMAX have their own transform parameter)")
        if self.strategy == "recursive" and self.resolved_target_transform == "log_ratio":
            raise ValueError("strategy recursive feeds forecasts back as the target's level; with target_transform "
                             "log_ratio (the default for a stock) use strategy direct or pooled, or set "
                             "target_transform: level")
        if self.strategy == "recursive":
            from forecast.features import check_recursive

            if self.kind != "global":
                raise ValueError(f"strategy recursive is for global models; {self.estimator!r} forecasts each "
                                 "series itself")
            try:
                check_recursive(self.features)
            except ForecastError as error:
                raise ValueError(str(error)) from None
        return self

    @property
    def kind(self) -> str:
        return _estimator(self.estimator).kind

    @property
    def resolved_missing_target(self) -> str:
        return self.missing_target or default_missing_target(self.target)

    @property
    def resolved_target_transform(self) -> str:
        """``target_transform``, or its default: ``log_ratio`` for a global model of a stock."""
        if self.target_transform:
            return self.target_transform
        return "log_ratio" if self.kind == "global" and target_kind(self.target) == "stock" else "level"

    def missing_inputs(self, cube) -> list[str]:
        """Why this spec cannot run on ``cube``: each variable it names (``exog`` of a series
        model, ``feature_params.covariates``, ``exclude_variables``) that the cube lacks, in
        words; empty when it can run. The target itself is checked by the backtest."""
        have = {str(v) for v in cube.data_vars if not str(v).endswith("_observed")}
        reasons = []
        exog = self.params.get("exog", ()) if "exog" in _estimator(self.estimator).factory().get_params() else ()
        absent = [v for v in ([exog] if isinstance(exog, str) else exog) if v not in have]
        if absent:
            reasons.append(f"its covariate(s) {', '.join(absent)} (params.exog) are not in the cube")
        absent = [v for v in self.feature_params.get("covariates", ()) if v not in have]
        if absent:
            reasons.append(f"its covariate(s) {', '.join(absent)} (feature_params.covariates) are not in the cube")
        absent = [v for v in self.exclude_variables if v not in have]
        if absent:
            reasons.append(f"it withholds {', '.join(absent)} (exclude_variables), which the cube does not have")
        return reasons

    def feature_matrix(self, cube, *, neighbours=None):
        """This spec's features of ``cube``: its families and parameters, less ``exclude_features``,
        read without ``exclude_variables``."""
        from forecast.features import build_features

        return build_features(cube, self.target, families=self.features, params=self.feature_params,
                              missing_target=self.resolved_missing_target, neighbours=neighbours,
                              exclude=self.exclude_features, exclude_variables=self.exclude_variables)

    def build(self):
        """A fresh, unfitted estimator for this spec (``params`` applied with ``set_params``)."""
        estimator = _estimator(self.estimator).factory()
        params = dict(self.params)
        if "quantiles" in estimator.get_params():
            params["quantiles"] = tuple(self.quantiles)
        if self.resolved_target_transform == "log_ratio":  # a change can be negative: no count loss
            params.update({k: v for k, v in _CHANGE_LOSS.items()
                           if k in estimator.get_params() and params.get(k, estimator.get_params()[k]) in _COUNT_LOSSES})
        return estimator.set_params(**params)

    def hash(self) -> str:
        """SHA-256 of the spec's content (key order does not matter)."""
        data = self.model_dump(mode="json")
        if data["target_transform"] is None:  # unset: the hash of a spec written before the field existed
            del data["target_transform"]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def load_spec(path: str | Path, **overrides) -> ModelSpec:
    """Read a model spec from YAML; ``overrides`` (e.g. ``target=``) replace its fields.

    ``path`` is a user's own file, or the name of a spec the toolkit ships (``lightgbm_median``,
    ``ets``, ...: :func:`forecast.policy.shipped_names`), found the same way in a checkout and
    in an installed toolkit.

    Raises
    ------
    ForecastError
        Naming the file and each field at fault; for an unknown name, the shipped specs.
    """
    path = shipped_file(path, kind="model spec", exclude=("triggers",))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForecastError(f"{path}: no such model spec") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ForecastError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ForecastError(f"{path}: a model spec is a mapping of fields (name, estimator, ...)")
    data.setdefault("name", path.stem)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ModelSpec(**data)
    except ValidationError as err:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
                 for e in err.errors()]
        raise ForecastError(f"{path}: invalid model spec\n" + "\n".join(lines)) from None


def baseline_specs(target: str, horizons, quantiles, missing_target: str | None = None) -> list[ModelSpec]:
    """Specs for the baselines that run beside every model."""
    return [ModelSpec(name=name, estimator=name, target=target, horizons=list(horizons),
                      quantiles=list(quantiles), missing_target=missing_target) for name in BASELINES]
