"""Global models: one estimator over every area, on the feature matrix.

Both follow the scikit-learn estimator contract and add :meth:`predict_quantiles`. The point
forecast uses a count-aware loss (Poisson by default: displacement figures are counts whose
spread grows with their level); each quantile gets its own quantile-loss model, and the
quantiles are sorted so that they never cross and clipped at zero.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

__all__ = ["LightGBMForecaster", "HistGBForecaster"]


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
        if self._loss() in self._count_losses and np.any(y < 0):
            raise ValueError(f"loss {self._loss()!r} needs non-negative targets (counts); "
                             f"the smallest is {y.min():g}")
        quantiles = np.asarray(self.quantiles, dtype=float)
        if quantiles.size and (quantiles.min() <= 0 or quantiles.max() >= 1):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(self.quantiles)}")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
            if sample_weight.sum() <= 0:
                raise ValueError("sample_weight sums to zero: no sample would count in the fit")
        if self.point not in ("mean", "median"):
            raise ValueError(f"point must be 'mean' or 'median', got {self.point!r}")
        self._fit_models(X, y, sample_weight, quantiles)
        return self

    def _fit_models(self, X, y, sample_weight, quantiles) -> None:
        if self.point == "median":
            self.model_ = self._quantile_model(0.5).fit(X, y, sample_weight=sample_weight)
        else:
            self.model_ = self._point_model().fit(X, y, sample_weight=sample_weight)
        self.quantile_models_ = [
            self.model_ if self.point == "median" and abs(q - 0.5) < 1e-12
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
        if not self.quantile_models_:
            return np.empty((X.shape[0], 0))
        out = np.sort(np.column_stack([m.predict(X) for m in self.quantile_models_]), axis=1)
        return np.maximum(out, 0.0) if self._nonnegative() else out

    def _nonnegative(self) -> bool:
        return self._loss() in self._count_losses

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
                 random_state=0, n_jobs=1):
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
        median = self.point == "median"
        first = self._booster_params({"objective": "quantile", "alpha": 0.5} if median else self._point_params())
        data = lgb.Dataset(X, y, weight=sample_weight, params=first, free_raw_data=False)
        rounds = int(self.n_estimators)
        self.model_ = _Booster(lgb.train(first, data, num_boost_round=rounds))
        self.quantile_models_ = [
            self.model_ if median and abs(q - 0.5) < 1e-12
            else _Booster(lgb.train(self._booster_params({"objective": "quantile", "alpha": float(q)}), data,
                                    num_boost_round=rounds))
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


class _Booster:
    """A trained LightGBM booster with the ``predict`` of a fitted regressor."""

    def __init__(self, booster):
        self.booster = booster

    def predict(self, X) -> np.ndarray:
        return self.booster.predict(X)


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
    """

    _count_losses = ("poisson",)

    def __init__(self, loss="poisson", point="mean", quantiles=(0.1, 0.5, 0.9), max_iter=300, learning_rate=0.05,
                 max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=1.0, random_state=0):
        self.loss = loss
        self.point = point
        self.quantiles = quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

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
        return HistGradientBoostingRegressor(loss="quantile", quantile=float(q), **self._common())

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        self.n_iter_ = self.model_.n_iter_
        return self

    def _importances(self):
        # HistGradientBoosting has no built-in importances; report zeros with the right shape
        # rather than pretend. Permutation importance is the honest alternative (slow).
        return np.zeros(self.n_features_in_)
