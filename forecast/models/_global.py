"""Global models: one estimator over every area, on the feature matrix.

Both follow the scikit-learn estimator contract and add :meth:`predict_quantiles`. The point
forecast uses a count-aware loss (Poisson by default: displacement figures are counts whose
spread grows with their level); each quantile gets its own quantile-loss model, and the
quantiles are sorted so that they never cross and clipped at zero.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from forecast.errors import ForecastError
from forecast.models._explain import Contributions

__all__ = ["LightGBMForecaster", "HistGBForecaster", "SharedBins"]


class _GlobalForecaster(RegressorMixin, BaseEstimator):
    _count_losses: tuple[str, ...] = ()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = self._loss() in self._count_losses
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the point model and one model per quantile.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; NaN means "not observed".
        y : array-like of shape (n_samples,)
            Non-negative counts for the count losses.
        sample_weight : array-like of shape (n_samples,), optional
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", y_numeric=True)
        quantiles = self._check_fit(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
            if sample_weight.sum() <= 0:
                raise ValueError("sample_weight sums to zero: no sample would count in the fit")
        self._fit_models(X, y, sample_weight, quantiles)
        return self

    def _check_fit(self, y) -> np.ndarray:
        """Refuse what no fit can take (negative counts, bad quantiles or point); the quantiles."""
        if self._loss() in self._count_losses and np.any(y < 0):
            raise ValueError(f"loss {self._loss()!r} needs non-negative targets (counts); "
                             f"the smallest is {y.min():g}")
        quantiles = np.asarray(self.quantiles, dtype=float)
        if quantiles.size and (quantiles.min() <= 0 or quantiles.max() >= 1):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(self.quantiles)}")
        if self.point not in ("mean", "median"):
            raise ValueError(f"point must be 'mean' or 'median', got {self.point!r}")
        return quantiles

    def _fit_models(self, X, y, sample_weight, quantiles) -> None:
        if self.point == "median":
            self.model_ = self._quantile_model(0.5).fit(X, y, sample_weight=sample_weight)
        else:
            self.model_ = self._point_model().fit(X, y, sample_weight=sample_weight)
        self.quantile_models_ = [
            self.model_ if self.point == "median" and _is_median(q)
            else self._quantile_model(q).fit(X, y, sample_weight=sample_weight)
            for q in quantiles]

    def predict(self, X) -> np.ndarray:
        """Point forecast (the mean for count losses), never negative for counts."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        pred = self.model_.predict(X)
        return np.maximum(pred, 0.0) if self._nonnegative() else pred

    def predict_quantiles(self, X) -> np.ndarray:
        """Quantiles in the order of ``quantiles``, shape (n_samples, n_quantiles); never crossing."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return self._quantiles(X)

    def predict_with_quantiles(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(predict(X), predict_quantiles(X))``, each distinct model run once: with
        ``point="median"`` the point model is the 0.5 quantile's."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        point = self.model_.predict(X)
        return (np.maximum(point, 0.0) if self._nonnegative() else point), self._quantiles(X, point)

    def _quantiles(self, X, point=None) -> np.ndarray:
        """The quantile models' predictions, sorted; ``point``: the point model's, reused."""
        if not self.quantile_models_:
            return np.empty((X.shape[0], 0))
        out = np.sort(np.column_stack([point if point is not None and m is self.model_ else m.predict(X)
                                       for m in self.quantile_models_]), axis=1)
        return np.maximum(out, 0.0) if self._nonnegative() else out

    def _nonnegative(self) -> bool:
        return self._loss() in self._count_losses

    def _outer_rounds(self, name: str, full) -> int:
        """Boosting rounds of the quantile models other than the median: parameter ``name``
        (``quantile_n_estimators``, ``quantile_max_iter``), or ``full`` when it is None."""
        value = getattr(self, name, None)  # a model pickled before the option: None
        if value is None:
            return int(full)
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value!r}")
        return int(value)

    @property
    def feature_importances_(self) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.asarray(self._importances(), dtype=float)


class LightGBMForecaster(_GlobalForecaster):
    """LightGBM with a count-aware objective for the point forecast and quantile models.

    Parameters
    ----------
    objective : {"poisson", "tweedie", "regression"}, default "poisson"
        Loss of the point model when ``point="mean"``.
    point : {"mean", "median"}, default "mean"
        What :meth:`predict` returns. The mean (count objective) keeps totals right (level
        ratio near 1); the median (the 0.5 quantile model) minimises absolute errors, so it
        scores better on MAE/MASE and RMSLE when arrivals are heavy-tailed, but under-forecasts
        totals. The backtest reports both effects.
    quantiles : tuple of float, default (0.1, 0.5, 0.9)
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree,
    reg_lambda, max_bin : LightGBM's parameters of the same names.
    quantile_n_estimators : int, optional
        Boosting rounds of the quantile models other than the median (default:
        ``n_estimators``); the median, the point model or not, keeps ``n_estimators``, so a
        median and a mean spec with the same settings have the same intervals. The outer
        quantiles are shifted by the conformal calibration anyway, so fewer rounds cost little:
        on the Somalia sample, 20 instead of 100 for the 0.1 and 0.9 models left 80% coverage
        within 1.1 points and CRPS within 1% at h1/h3/h6, and cut the backtest's time by 30-40%
        (benchmarks/README.md). The shipped LightGBM specs use 20.
    tweedie_variance_power : float, default 1.5
        Used with ``objective="tweedie"``.
    random_state : int, default 0
    n_jobs : int, default 1
        LightGBM threads. One by default: OpenMP threads oversubscribed by parallel test
        workers or other jobs slow LightGBM down by ten times or more (measured: 4.4 s with 1
        thread, 51 s with 2 on a busy 2-core machine).

    Examples
    --------
    >>> model = LightGBMForecaster(n_estimators=50).fit(X, y)   # doctest: +SKIP
    >>> model.predict_quantiles(X[:3])                          # doctest: +SKIP
    """

    _count_losses = ("poisson", "tweedie")

    def __init__(self, objective="poisson", point="mean", quantiles=(0.1, 0.5, 0.9), n_estimators=300,
                 learning_rate=0.05, num_leaves=31, min_child_samples=20, subsample=0.8,
                 colsample_bytree=0.8, reg_lambda=1.0, max_bin=255, tweedie_variance_power=1.5,
                 random_state=0, n_jobs=1, quantile_n_estimators=None):
        self.objective = objective
        self.point = point
        self.quantiles = quantiles
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.tweedie_variance_power = tweedie_variance_power
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.quantile_n_estimators = quantile_n_estimators

    def _loss(self):
        return self.objective

    def _point_params(self) -> dict:
        extra = {"tweedie_variance_power": self.tweedie_variance_power} if self.objective == "tweedie" else {}
        return {"objective": self.objective, **extra}

    def _fit_models(self, X, y, sample_weight, quantiles) -> None:
        """Every model (point and quantiles) trains on one binned ``lgb.Dataset``: the bins are
        found once per fit, not once per model. The boosters are what ``LGBMRegressor`` would
        fit with the same parameters (its defaults are spelled out in :meth:`_booster_params`)."""
        import lightgbm as lgb

        if X.shape[0] < 2:
            raise ValueError(f"LightGBM needs at least 2 samples to bin the features; got {X.shape[0]} sample")
        first = self._first_params()
        self._train(lgb.Dataset(X, y, weight=sample_weight, params=first, free_raw_data=False), quantiles)

    def fit_binned(self, bins: SharedBins, rows, y, sample_weight=None):
        """Fit on rows of ``bins.X`` with bin edges found once (:class:`SharedBins`).

        The same models as :meth:`fit` on ``bins.X[rows]`` except for the bin edges, which are
        the ones ``bins`` found on its reference rows. A backtest uses this to find the edges
        once, not once per origin.

        Parameters
        ----------
        bins : SharedBins
            Made by :meth:`shared_bins` of an estimator with the same parameters.
        rows : array of int
            Increasing row numbers of ``bins.X``.
        y, sample_weight : arrays of shape (len(rows),)
        """
        rows = np.asarray(rows, dtype=np.int32)
        y = np.asarray(y, dtype=float)
        if rows.ndim != 1 or len(rows) != len(y):
            raise ValueError(f"rows and y must be 1-d of the same length, got {rows.shape} and {y.shape}")
        if len(rows) < 2:
            raise ValueError(f"LightGBM needs at least 2 samples to fit; got {len(rows)}")
        if np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= len(bins.X):
            raise ValueError(f"rows must be increasing row numbers of the binned matrix (0..{len(bins.X) - 1})")
        if _binning(bins.params) != _binning(self._first_params()):
            raise ValueError(f"these bins were made with other binning parameters ({_binning(bins.params)}, "
                             f"this estimator has {_binning(self._first_params())}); make them with its shared_bins()")
        quantiles = self._check_fit(y)
        self.n_features_in_ = bins.X.shape[1]
        self._train(bins.dataset(rows, y, sample_weight), quantiles)
        return self

    def shared_bins(self, X, reference_rows) -> SharedBins:
        """Bins for :meth:`fit_binned`: edges found on ``X[reference_rows]``."""
        return SharedBins(X, reference_rows, self._first_params())

    def _first_params(self) -> dict:
        median = self.point == "median"
        return self._booster_params({"objective": "quantile", "alpha": 0.5} if median else self._point_params())

    def _train(self, data, quantiles) -> None:
        import lightgbm as lgb

        median = self.point == "median"
        rounds = int(self.n_estimators)
        outer = self._outer_rounds("quantile_n_estimators", rounds)
        threads = int(self.n_jobs)
        self.model_ = _Booster(lgb.train(self._first_params(), data, num_boost_round=rounds), threads)
        self.quantile_models_ = [
            self.model_ if median and _is_median(q)
            else _Booster(lgb.train(self._booster_params({"objective": "quantile", "alpha": float(q)}), data,
                                    num_boost_round=rounds if _is_median(q) else outer), threads)
            for q in quantiles]

    def _booster_params(self, objective: dict) -> dict:
        # LGBMRegressor's own defaults for what we do not expose, so results match it exactly
        return {**objective, "boosting_type": "gbdt", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "max_depth": -1, "min_child_samples": self.min_child_samples,
                "min_child_weight": 1e-3, "min_split_gain": 0.0, "subsample": self.subsample,
                "subsample_freq": 1 if self.subsample < 1 else 0, "colsample_bytree": self.colsample_bytree,
                "reg_alpha": 0.0, "reg_lambda": self.reg_lambda, "max_bin": self.max_bin,
                "subsample_for_bin": 200000, "random_state": self.random_state, "num_threads": self.n_jobs,
                "verbose": -1}

    def _importances(self):
        return self.model_.booster.feature_importance(importance_type="gain")

    def contributions(self, X, columns=None) -> Contributions:
        """Each feature's contribution to the point model's raw score, per prediction (TreeSHAP).

        ``base + values.sum(axis=1)`` equals the point model's raw score
        (``booster.predict(X, raw_score=True)``): for the Poisson and Tweedie objectives the
        log of the forecast mean (``scale="log"``); for ``point="median"`` (the 0.5 quantile
        model) and squared error the forecast itself, before clipping at zero
        (``scale="identity"``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        columns : sequence of str, optional
            The feature names (default ``x0, x1, ...``).

        Returns
        -------
        Contributions
            ``values`` (n_samples, n_features), ``base`` (n_samples,), ``columns``, ``scale``;
            :meth:`Contributions.to_array` gives LightGBM's (n_samples, n_features + 1).
        """
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        columns = [f"x{j}" for j in range(X.shape[1])] if columns is None else [str(c) for c in columns]
        if len(columns) != X.shape[1]:
            raise ForecastError(f"{len(columns)} column names for {X.shape[1]} features")
        raw = self.model_.contributions(X)
        identity = self.point == "median" or self.objective not in self._count_losses
        return Contributions(values=raw[:, :-1], base=raw[:, -1], columns=columns,
                             scale="identity" if identity else "log")


class SharedBins:
    """A feature matrix binned once for LightGBM, with bin edges found on reference rows only.

    A backtest fits LightGBM at every origin on the rows known there. Binning those rows at
    every origin repeats the same work; instead the edges are found once, on the rows known at
    the backtest's first origin (``reference_rows``), every row of ``X`` is binned with them
    once, and each fit takes its rows as a subset (:meth:`dataset`), which copies bins and
    bins nothing. No fit sees edges from data after its origin: the reference rows are known
    at the first origin, so at every origin.

    Fits on subsets may run in threads side by side as long as every LightGBM call in them
    names its threads (``num_threads``, as :class:`LightGBMForecaster` does, predictions
    included): with one prediction that did not, training on subsets in another thread
    segfaulted in ``LGBM_BoosterCreate`` (LightGBM 4.7; in 1 of ~15 backtests at 2,000 areas).

    Parameters
    ----------
    X : array of shape (n_rows, n_features)
    reference_rows : slice or array of int
        The rows the bin edges come from.
    params : dict
        The LightGBM parameters of the fits (those that decide the bins must match theirs).
    n_jobs : int, optional
        Threads for binning (default: every core; the bins do not depend on it).
    """

    def __init__(self, X, reference_rows, params: dict, n_jobs: int | None = None):
        import lightgbm as lgb

        self.X = X
        self.params = dict(params)
        reference = np.asarray(X[reference_rows], dtype=np.float32)
        if len(reference) < 2:
            raise ValueError(f"LightGBM needs at least 2 reference rows to find bins; got {len(reference)}")
        # binning once is serial work: every core (threads do not change the bins)
        build = {**self.params, "num_threads": n_jobs or os.cpu_count() or 1}
        edges = lgb.Dataset(reference, np.zeros(len(reference)), params=build).construct()
        # labels are set per subset; the parent's are placeholders
        self._binned = lgb.Dataset(np.asarray(X, dtype=np.float32), np.zeros(len(X)), reference=edges,
                                   params=build).construct()

    def dataset(self, rows, y, sample_weight=None):
        """The constructed ``lgb.Dataset`` of ``rows`` (increasing row numbers) with labels ``y``."""
        import lightgbm as lgb

        data = lgb.Dataset(None, reference=self._binned, params=self.params)
        data.used_indices = np.asarray(rows, dtype=np.int32)  # what Dataset.subset sets, without sorting a list
        data.construct()
        data.set_label(np.asarray(y, dtype=float))
        if sample_weight is not None:
            data.set_weight(np.asarray(sample_weight, dtype=float))
        return data


def _is_median(q: float) -> bool:
    """The 0.5 quantile: the median, which keeps every model's rounds (the outer ones may take fewer)."""
    return abs(q - 0.5) < 1e-12


def _binning(params: dict) -> tuple:
    """The parameters that decide LightGBM's bins (and the features it pre-filters)."""
    return tuple(params.get(k) for k in ("max_bin", "subsample_for_bin", "random_state", "min_child_samples"))


class _Booster:
    """A trained LightGBM booster with the ``predict`` of a fitted regressor."""

    def __init__(self, booster, n_jobs: int = 1):
        self.booster = booster
        self.n_jobs = n_jobs

    def predict(self, X) -> np.ndarray:
        # num_threads always: a LightGBM call without it resets LightGBM's process-wide thread
        # count, which fits running in other threads read (see SharedBins)
        return self.booster.predict(X, num_threads=getattr(self, "n_jobs", 1))

    def contributions(self, X) -> np.ndarray:
        """TreeSHAP contributions, shape (n_samples, n_features + 1), the base value last."""
        return self.booster.predict(X, pred_contrib=True, num_threads=getattr(self, "n_jobs", 1))


class HistGBForecaster(_GlobalForecaster):
    """scikit-learn's HistGradientBoostingRegressor with Poisson loss, and quantile models.

    Parameters
    ----------
    loss : {"poisson", "squared_error"}, default "poisson"
    point : {"mean", "median"}, default "mean"
        As for :class:`LightGBMForecaster`.
    quantiles : tuple of float, default (0.1, 0.5, 0.9)
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization :
        HistGradientBoostingRegressor's parameters of the same names.
    random_state : int, default 0
    quantile_max_iter : int, optional
        Boosting iterations of the quantile models other than the median (default: ``max_iter``),
        as :class:`LightGBMForecaster`'s ``quantile_n_estimators``: a backtest's conformal
        calibration re-centres those outer quantiles, so they need fewer iterations than the
        point forecast.
    """

    _count_losses = ("poisson",)

    def __init__(self, loss="poisson", point="mean", quantiles=(0.1, 0.5, 0.9), max_iter=300, learning_rate=0.05,
                 max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=1.0, random_state=0,
                 quantile_max_iter=None):
        self.loss = loss
        self.point = point
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state
        self.quantile_max_iter = quantile_max_iter

    def _loss(self):
        return self.loss

    def _common(self) -> dict:
        return dict(max_iter=self.max_iter, learning_rate=self.learning_rate,
                    max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                    l2_regularization=self.l2_regularization, random_state=self.random_state,
                    early_stopping=False)

    def _point_model(self):
        return HistGradientBoostingRegressor(loss=self.loss, **self._common())

    def _quantile_model(self, q):
        params = self._common()
        if not _is_median(q):
            params["max_iter"] = self._outer_rounds("quantile_max_iter", self.max_iter)
        return HistGradientBoostingRegressor(loss="quantile", quantile=float(q), **params)

    def _fit_models(self, X, y, sample_weight, quantiles) -> None:
        never = np.isnan(X).all(axis=0)
        if never.any():
            # a feature never observed in the training rows (a covariate before its first month,
            # on few DTM rounds) carries nothing to split on; scikit-learn's binning fails on it
            # (1.7: "window shape cannot be larger than input array shape"), so it is a constant
            X = X.copy()
            X[:, never] = 0.0
        super()._fit_models(X, y, sample_weight, quantiles)

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        self.n_iter_ = self.model_.n_iter_
        return self

    def contributions(self, X, columns=None):
        """Refused: HistGradientBoosting gives no per-prediction contributions."""
        raise ForecastError("HistGBForecaster (HistGradientBoosting) has no per-prediction contributions, so "
                            "its forecasts cannot be explained by driver; use LightGBMForecaster (estimator: "
                            "lightgbm) for explanations")

    def _importances(self):
        # HistGradientBoosting has no built-in importances; report zeros with the right shape
        # rather than pretend. Permutation importance is the honest alternative (slow).
        return np.zeros(self.n_features_in_)
