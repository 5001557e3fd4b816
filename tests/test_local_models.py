"""Per-area statistical forecasters (ETS, SARIMAX): accuracy, missing data, fallbacks, contract."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from forecast.errors import ForecastError
from forecast.models import Naive, Panel
from forecast.models._local import ETS, SARIMAX

N_AREAS, N_TIMES, ORIGIN = 6, 60, 53  # forecasts for months 54..59 are scored against the truth


def make_panel(y, exog=None):
    y = np.asarray(y, dtype=float)
    return Panel(y=y, areas=pd.Index([f"A{i}" for i in range(y.shape[0])], name="area"),
                 time=pd.date_range("2019-01-01", periods=y.shape[1], freq="MS", name="time"),
                 exog=exog or {})


def seasonal_counts(seed=0, n_areas=N_AREAS, n_times=N_TIMES):
    """Counts around exp(4) (about 55) with a ±50% yearly cycle peaking in month 3 of each year."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times)
    season = 0.5 * np.sin(2 * np.pi * t / 12)
    return np.round(np.exp(4 + season[None, :] + rng.normal(0, 0.08, (n_areas, n_times))))


@pytest.fixture(scope="module")
def seasonal():
    y = seasonal_counts()
    panel = make_panel(y)
    model = ETS(seasonal="add").fit(panel.upto(ORIGIN))
    return y, panel, model


def mae(point, actual):
    return float(np.nanmean(np.abs(point - actual)))


# ETS

def test_ets_beats_naive_mae_when_series_is_seasonal(seasonal):
    y, panel, model = seasonal
    horizons = np.arange(1, 7)
    actual = y[:, ORIGIN + horizons]
    ets = mae(model.forecast(horizons).point, actual)
    naive = mae(Naive().fit(panel.upto(ORIGIN)).forecast(horizons).point, actual)
    assert model.fallback_areas_ == {}
    assert ets < 0.4 * naive


def test_ets_recovers_seasonal_pattern_when_series_is_seasonal(seasonal):
    _, _, model = seasonal
    horizons = np.arange(1, 13)
    point = model.forecast(horizons).point
    truth = 0.5 * np.sin(2 * np.pi * (ORIGIN + horizons) / 12)  # the log-scale cycle
    months = (ORIGIN + horizons) % 12  # the cycle peaks at month 3 of 12 and bottoms out at month 9
    for row in np.log(point):
        assert np.corrcoef(row, truth)[0, 1] > 0.95
    assert set(months[point.argmax(axis=1)]) <= {2, 3, 4}
    assert set(months[point.argmin(axis=1)]) <= {8, 9, 10}
    assert np.all(point.max(axis=1) / point.min(axis=1) > 2.0)  # true ratio exp(1) = 2.7


def test_ets_drops_seasonality_when_fewer_than_two_full_seasons():
    y = seasonal_counts(n_areas=2)
    y[1, :40] = np.nan  # 20 observed months left: fewer than 2 x 12
    model = ETS(seasonal="add", min_length=12).fit(make_panel(y))
    assert model.seasonal_dropped_ == ["A1"]
    assert model.fallback_areas_ == {}
    assert np.all(np.isfinite(model.forecast([1, 2]).point))


def test_ets_fills_only_interior_gaps_when_target_has_missing_months():
    y = seasonal_counts(n_areas=2)
    y[0, :5] = np.nan  # leading: cut, not filled
    y[0, [20, 21, 33]] = np.nan  # interior: interpolated
    y[1, -2:] = np.nan  # trailing: forecast on from the last observed month, not filled
    model = ETS().fit(make_panel(y))
    assert model.filled_cells_ == 3
    assert model.fallback_areas_ == {}
    assert np.all(np.isfinite(model.forecast([1, 6], quantiles=[0.5]).quantiles))


def test_ets_forecasts_from_last_observation_when_origin_is_unobserved():
    y = seasonal_counts(n_areas=1)
    gapped = y.copy()
    gapped[0, -2:] = np.nan
    from_gap = ETS().fit(make_panel(gapped)).forecast([1, 2], quantiles=[0.1, 0.9])
    truncated = ETS().fit(make_panel(y[:, :-2])).forecast([3, 4], quantiles=[0.1, 0.9])
    np.testing.assert_allclose(from_gap.point, truncated.point, rtol=1e-9)
    np.testing.assert_allclose(from_gap.quantiles, truncated.quantiles, rtol=1e-9)


def test_ets_fit_raises_when_damped_trend_has_no_trend():
    with pytest.raises(ForecastError, match=r"damped_trend=True needs a trend to damp; set trend='add'"):
        ETS(damped_trend=True).fit(make_panel(seasonal_counts(n_areas=1)))


# SARIMAX

def ar1_counts(seed=1, n_areas=N_AREAS, n_times=N_TIMES, phi=0.7):
    """Counts whose log follows an AR(1) around log(50)."""
    rng = np.random.default_rng(seed)
    z = np.zeros((n_areas, n_times))
    for t in range(1, n_times):
        z[:, t] = phi * z[:, t - 1] + rng.normal(0, 0.2, n_areas)
    return np.round(np.exp(np.log(50) + z))


def test_sarimax_fits_without_filling_when_target_has_gaps():
    rng = np.random.default_rng(1)
    y = ar1_counts()
    holes = rng.random(y.shape) < 0.2
    holes[:, :2] = holes[:, -1] = False  # keep the start and the origin observed
    y[holes] = np.nan
    model = SARIMAX().fit(make_panel(y))
    assert model.fallback_areas_ == {}
    for i, result in enumerate(model.results_):
        assert np.isnan(result.model.endog).sum() == holes[i].sum()  # the Kalman filter saw the gaps
    fc = model.forecast([1, 3, 6], quantiles=[0.1, 0.9])
    assert np.all(np.isfinite(fc.point)) and np.all(np.isfinite(fc.quantiles))


def driven_by_covariate(seed=2):
    """y_t = 5 + 3 * x_{t-6} + noise, with x white noise: only the lagged covariate predicts y."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, (N_AREAS, N_TIMES))
    y = np.full((N_AREAS, N_TIMES), np.nan)
    y[:, 6:] = 5 + 3 * x[:, :-6] + rng.normal(0, 0.5, (N_AREAS, N_TIMES - 6))
    return y, x


def test_sarimax_exog_improves_accuracy_when_covariate_drives_series():
    y, x = driven_by_covariate()
    panel = make_panel(y, exog={"x": x}).upto(ORIGIN)
    horizons = np.arange(1, 7)
    actual = y[:, ORIGIN + horizons]
    with_x = SARIMAX(exog=("x",), exog_lag=6, transform=None).fit(panel)
    without = SARIMAX(transform=None).fit(panel)
    assert with_x.fallback_areas_ == {} and without.fallback_areas_ == {}
    err_with = mae(with_x.forecast(horizons).point, actual)
    err_without = mae(without.forecast(horizons).point, actual)
    assert err_with < 0.25 * err_without


def test_sarimax_forecast_raises_when_horizon_exceeds_exog_lag():
    y, x = driven_by_covariate()
    model = SARIMAX(exog=("x",), exog_lag=6, transform=None).fit(make_panel(y[:2], exog={"x": x[:2]}))
    with pytest.raises(ForecastError, match=r"horizon 7 is beyond exog_lag=6: the covariates \['x'\]"):
        model.forecast([1, 7])


def test_sarimax_fit_raises_when_exog_name_not_in_panel():
    y, x = driven_by_covariate()
    panel = make_panel(y[:2], exog={"x": x[:2], "rain": x[:2]})
    message = r"exog \['conflict'\] not in the panel; its covariates are: rain, x"
    model = SARIMAX(exog=("conflict",), transform=None)
    with pytest.raises(ForecastError, match=message):
        model.fit(panel)
    assert not hasattr(model, "y_")  # refused before anything was learned


def test_sarimax_fills_lagged_exog_with_area_mean_when_covariate_missing():
    y, x = driven_by_covariate()
    x = x[:2].copy()
    x[0, -3:] = np.nan  # read at horizons 4..6
    x[1, :] = np.nan  # never observed: 0
    model = SARIMAX(exog=("x",), exog_lag=6, transform=None).fit(make_panel(y[:2], exog={"x": x}))
    future = model.exog_future_[:, :, 0]
    np.testing.assert_allclose(future[0, :3], x[0, -6:-3])
    np.testing.assert_allclose(future[0, 3:], np.nanmean(x[0]))
    np.testing.assert_array_equal(future[1], 0.0)
    assert np.all(np.isfinite(model.forecast([1, 6]).point))


# shared behaviour

MODELS = [pytest.param(ETS, id="ETS"), pytest.param(SARIMAX, id="SARIMAX")]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("transform", ["log1p", None])
def test_forecast_quantiles_ordered_and_non_negative_when_levels_unsorted(make, transform):
    rng = np.random.default_rng(4)
    y = rng.poisson(2.0, (3, 36)).astype(float)  # small counts: Gaussian lower tails go below 0
    levels = [0.9, 0.05, 0.5]
    fc = make(transform=transform).fit(make_panel(y)).forecast((1, 3, 6), quantiles=levels)
    assert fc.point.shape == (3, 3)
    assert fc.quantiles.shape == (3, 3, 3)
    assert np.all(fc.quantiles >= 0) and np.all(fc.point >= 0)
    assert np.all(fc.quantiles[..., 1] <= fc.quantiles[..., 2])
    assert np.all(fc.quantiles[..., 2] <= fc.quantiles[..., 0])
    assert np.any(fc.quantiles[..., 1] < fc.quantiles[..., 0])


@pytest.mark.parametrize("make", MODELS)
def test_forecast_quantiles_none_when_no_levels_requested(make):
    fc = make().fit(make_panel(seasonal_counts(n_areas=1, n_times=30))).forecast([1, 2])
    assert fc.quantiles is None
    assert fc.point.shape == (1, 2)


def test_point_is_bias_corrected_mean_when_transform_is_log1p(seasonal):
    _, _, model = seasonal
    z = 1.0  # the 0.8413 quantile is one standard deviation above the median on the log scale
    fc = model.forecast([1, 6], quantiles=[0.5, 0.8413447460685429])
    mu = np.log1p(fc.quantiles[..., 0])
    sd = np.log1p(fc.quantiles[..., 1]) - mu
    np.testing.assert_allclose(fc.point, np.expm1(mu + (sd / z) ** 2 / 2), rtol=1e-6)
    assert np.all(fc.point > fc.quantiles[..., 0])


@pytest.mark.parametrize("make", MODELS)
def test_fit_falls_back_to_naive_when_series_is_short(make):
    y = seasonal_counts(n_areas=3, n_times=40)
    y[1, :30] = np.nan  # 10 observed months
    y[2, :-1] = np.nan  # 1 observed month: no difference of its own to size an interval
    model = make().fit(make_panel(y))
    assert model.fallback_areas_ == {"A1": "fewer than min_length=24 observed months (10)",
                                      "A2": "fewer than min_length=24 observed months (1)"}
    assert model.n_fallback_ == 2
    fc = model.forecast([1, 4], quantiles=[0.1, 0.5, 0.9])
    np.testing.assert_array_equal(fc.point[1:], y[1:, -1:].repeat(2, axis=1))
    np.testing.assert_allclose(fc.quantiles[1, :, 1], y[1, -1])  # random walk: median = last value
    assert np.all(fc.quantiles[1, :, 0] < y[1, -1]) and np.all(fc.quantiles[1, :, 2] > y[1, -1])
    assert np.all(np.diff(fc.quantiles[1, :, 2]) > 0)  # wider further ahead
    # A2 has no difference of its own: it takes the median variance of the areas that have them
    z = np.log1p(fc.quantiles[2])
    assert np.allclose(z[:, 1], np.log1p(y[2, -1])) and np.all(z[:, 2] > z[:, 1])


@pytest.mark.parametrize("make", MODELS)
def test_forecast_is_nan_when_area_never_observed(make):
    y = seasonal_counts(n_areas=2, n_times=30)
    y[1] = np.nan
    model = make().fit(make_panel(y))
    fc = model.forecast([1, 2], quantiles=[0.1, 0.9])
    assert model.fallback_areas_ == {"A1": "no observed value"}
    assert np.all(np.isnan(fc.point[1])) and np.all(np.isnan(fc.quantiles[1]))
    assert np.all(np.isfinite(fc.point[0]))


def test_fit_falls_back_when_history_is_constant():
    y = seasonal_counts(n_areas=2, n_times=30)
    y[1] = 0.0
    model = ETS().fit(make_panel(y))
    assert model.fallback_areas_ == {"A1": "constant history (every observed month is 0): nothing to fit"}
    fc = model.forecast([1, 2], quantiles=[0.1, 0.9])
    np.testing.assert_array_equal(fc.point[1], 0.0)
    np.testing.assert_array_equal(fc.quantiles[1], 0.0)


def test_fit_records_statsmodels_warnings_without_leaking_when_fit_is_hard():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 1, (1, 30)), axis=1) + 50  # ARMA(2,2) on a random walk: hard
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escaped would raise here
        model = SARIMAX(order=(2, 0, 2), transform=None).fit(make_panel(walk))
        fc = model.forecast([1, 2], quantiles=[0.5])
    assert model.n_warnings_ == len(model.fit_warnings_["A0"]) >= 1
    assert any(m.startswith("ConvergenceWarning") for m in model.fit_warnings_["A0"])
    assert model.fallback_areas_ == {}  # the Powell retry from the L-BFGS estimates converged
    assert np.all(np.isfinite(fc.point))


class _NeverConverges:
    def fit(self, *args, **kwargs):
        warnings.warn("Maximum Likelihood optimization failed to converge.", ConvergenceWarning)
        return super().fit(*args, **kwargs)


class _Breaks:
    def fit(self, *args, **kwargs):
        raise np.linalg.LinAlgError("LU decomposition error.")


@pytest.mark.parametrize(("mixin", "reason"), [
    (_NeverConverges, "did not converge: Maximum Likelihood optimization failed to converge."),
    (_Breaks, "fit failed: LinAlgError: LU decomposition error."),
], ids=["no-convergence", "error"])
@pytest.mark.parametrize(("cls", "statsmodels_name"), [(ETS, "ETSModel"), (SARIMAX, "_StatsmodelsSARIMAX")],
                         ids=["ETS", "SARIMAX"])
def test_fit_falls_back_to_naive_when_statsmodels_fit_fails(monkeypatch, cls, statsmodels_name, mixin,
                                                            reason):
    from forecast.models import _local
    original = getattr(_local, statsmodels_name)
    monkeypatch.setattr(_local, statsmodels_name, type("Patched", (mixin, original), {}))
    y = ar1_counts(n_areas=1, n_times=30)
    model = cls().fit(make_panel(y))
    assert model.fallback_areas_ == {"A0": reason}
    np.testing.assert_array_equal(model.forecast([1, 2]).point, y[:, -1:].repeat(2, axis=1))


@pytest.mark.parametrize(("cls", "params"), [
    (ETS, dict(trend="add", damped_trend=True, seasonal="add", seasonal_periods=4, transform=None,
               point="median", min_length=10, max_gap_share=0.5, n_jobs=2)),
    (SARIMAX, dict(order=(2, 0, 0), seasonal_order=(0, 0, 0, 0), trend="n", exog=("x",), exog_lag=3,
                   transform=None, point="mean", min_length=10, n_jobs=-1)),
], ids=["ETS", "SARIMAX"])
def test_clone_keeps_constructor_params_when_model_was_fitted(cls, params):
    panel = make_panel(seasonal_counts(n_areas=1, n_times=30), exog={"x": np.ones((1, 30))})
    model = cls(**params).fit(panel)
    assert model.get_params() == params
    copy = clone(model)
    assert copy.get_params() == params
    assert not hasattr(copy, "results_")
    assert hasattr(model, "results_")


@pytest.mark.parametrize("make", MODELS)
def test_fit_gives_same_forecasts_when_n_jobs_is_2(make):
    y = seasonal_counts(seed=5, n_areas=4, n_times=36)
    panel = make_panel(y)
    one = make(n_jobs=1).fit(panel).forecast([1, 3], quantiles=[0.1, 0.9])
    two = make(n_jobs=2).fit(panel).forecast([1, 3], quantiles=[0.1, 0.9])
    np.testing.assert_allclose(two.point, one.point, rtol=1e-8)
    np.testing.assert_allclose(two.quantiles, one.quantiles, rtol=1e-8)


def test_fit_raises_when_log1p_meets_negative_values():
    y = seasonal_counts(n_areas=2, n_times=30)
    y[1, 4] = -3
    with pytest.raises(ForecastError, match=r"transform='log1p' needs non-negative counts, but area 'A1' "
                                            r"has -3 at 2019-05"):
        ETS().fit(make_panel(y))


@pytest.mark.parametrize("horizons", [[0, 1], [1.5], []])
def test_forecast_raises_when_horizons_are_not_positive_whole_months(seasonal, horizons):
    _, _, model = seasonal
    with pytest.raises(ForecastError, match="horizons"):
        model.forecast(horizons)


@pytest.mark.parametrize("make", MODELS)
def test_median_point_is_the_back_transformed_median_below_the_mean(make):
    panel = make_panel(seasonal_counts(seed=3, n_areas=3, n_times=40))
    median = make(point="median").fit(panel).forecast([1, 6], quantiles=[0.5])
    mean = make().fit(panel).forecast([1, 6])
    np.testing.assert_allclose(median.point, median.quantiles[:, :, 0], rtol=1e-9)
    assert (median.point <= mean.point + 1e-9).all()


def test_two_areas_fitted_side_by_side_in_threads_each_keep_their_own_warnings():
    # warning capture is the process's: a Dask worker with several threads fitted two areas at
    # once, and one area's ConvergenceWarning landed in the other's record, which then fell back
    # to naive, so its forecasts differed from a local run's; the fits now take turns
    import threading
    from types import SimpleNamespace

    from forecast.models._local import _guarded_fit

    converged = SimpleNamespace(mle_retvals={"converged": True}, params=np.array([0.5]), llf=-1.0)
    inside_a, inside_b, warned = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def hard():  # waits (briefly) for b to be inside its own fit, then warns
        inside_a.set()
        inside_b.wait(timeout=0.5)
        warnings.warn("the optimizer did not converge", ConvergenceWarning)
        warned.set()
        return converged

    def easy():
        inside_b.set()
        warned.wait(timeout=0.5)
        return converged

    def fit(name, build):
        results[name] = _guarded_fit(build)

    a = threading.Thread(target=fit, args=("a", hard))
    a.start()
    assert inside_a.wait(timeout=10)
    b = threading.Thread(target=fit, args=("b", easy))
    b.start()
    a.join()
    b.join()
    assert results["a"][1] == "did not converge: the optimizer did not converge"
    assert results["b"] == (converged, None, ())
