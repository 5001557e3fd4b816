"""Fits side by side in threads run on one OpenMP thread each: no oversubscribed cores."""

from __future__ import annotations

import os
import threading
import warnings

import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: F401  (loads scikit-learn's OpenMP)
from threadpoolctl import threadpool_info

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.models import ESTIMATORS, ModelSpec, as_done, register_estimator, side_by_side

needs_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenMP uses one thread anyway")


def _openmp_threads() -> list[int]:
    """What each loaded OpenMP runtime would start a team with, in the calling thread."""
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"]


def test_side_by_side_returns_results_in_the_items_order_and_raises_a_failure_where_it_came():
    assert list(side_by_side(lambda a, b: a * b, [(i, 2) for i in range(7)])) == [0, 2, 4, 6, 8, 10, 12]
    assert list(side_by_side(pow, [])) == []

    def fail_on_three(i):
        if i == 3:
            raise ValueError("item 3")
        return i

    results = side_by_side(fail_on_three, [(i,) for i in range(5)])
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(results)


def test_as_done_gives_each_result_with_its_index_as_soon_as_it_is_done(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("forecast.models._threads").os, "cpu_count", lambda: 2)
    release = threading.Event()

    def work(i):
        if i == 0:  # the first item runs until the caller has had the second's result
            assert release.wait(timeout=10)
        return i * 10

    results = as_done(work, [(0,), (1,), (2,)])
    first, second = next(results), next(results)
    assert {first, second} == {(1, 10), (2, 20)}  # not held back behind item 0
    release.set()
    assert next(results) == (0, 0)
    assert list(results) == []
    assert list(as_done(pow, [])) == []


def test_as_done_raises_a_failure_at_once_and_starts_no_more_items(monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("forecast.models._threads").os, "cpu_count", lambda: 1)
    ran = []

    def work(i):
        ran.append(i)
        if i == 1:
            raise ValueError("item 1")
        if i == 2:  # started before the failure reached the caller: it finishes, nothing after it starts
            threading.Event().wait(0.5)
        return i

    results = as_done(work, [(i,) for i in range(5)])
    assert next(results) == (0, 0)
    with pytest.raises(ValueError, match="item 1"):
        next(results)
    assert 3 not in ran and 4 not in ran, ran


@needs_cores
def test_every_thread_of_side_by_side_runs_one_openmp_thread_and_the_caller_keeps_its_own():
    before = _openmp_threads()
    assert before and max(before) >= 2  # scikit-learn's OpenMP is loaded and would use every core
    seen = list(side_by_side(lambda _: (threading.current_thread().name, _openmp_threads()),
                             [(i,) for i in range(8)]))
    assert all(name != threading.main_thread().name for name, _ in seen)  # it ran in the pool
    assert all(counts and max(counts) == 1 for _, counts in seen), seen
    assert _openmp_threads() == before


class _Probe(RegressorMixin, BaseEstimator):
    """A regressor that records how many OpenMP threads its fit could start."""

    seen: list = []

    def fit(self, X, y):
        _Probe.seen.append(max(_openmp_threads()))
        self.mean_ = float(y.mean())
        return self

    def predict(self, X):
        return [self.mean_] * len(X)


@needs_cores
@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_a_backtest_fits_its_horizons_or_origins_side_by_side_on_one_openmp_thread_each(strategy):
    # scikit-learn's HistGradientBoosting read the machine's core count in each pool thread and
    # ran two threads per fit beside the other fits: 43% slower on two cores
    _Probe.seen = []
    register_estimator("omp_probe", "global", lambda **_: _Probe())
    try:
        spec = ModelSpec(name="probe", estimator="omp_probe", horizons=[1, 2, 3], strategy=strategy,
                         features=["lags"])
        backtest(make_panel(6, 48, seed=3), [spec], folds=RollingOrigin(n_origins=3, calibration_origins=0),
                 baselines=False, progress=False)
    finally:
        del ESTIMATORS["omp_probe"]
    assert _Probe.seen and set(_Probe.seen) == {1}, _Probe.seen


def test_warning_filters_set_inside_threads_that_overlap_are_not_left_behind(monkeypatch):
    # catch_warnings puts back, as it exits, the filters it found as it entered: thread 1 entered
    # inside thread 0's context and exits after it, so without the pool's care thread 0's
    # temporary "error" filter would stay the process's own
    import importlib

    monkeypatch.setattr(importlib.import_module("forecast.models._threads").os, "cpu_count", lambda: 2)
    entered, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    before = list(warnings.filters)

    def overlap(i):
        if i == 1:
            assert entered.wait(timeout=10)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            if i == 0:
                entered.set()
                assert second_in.wait(timeout=10)
            else:
                second_in.set()
                assert first_out.wait(timeout=10)
        if i == 0:
            first_out.set()

    list(side_by_side(overlap, [(0,), (1,)]))
    assert warnings.filters == before  # thread 0's "error" filter left with its thread


def test_a_hist_gradient_boosting_backtest_leaves_the_warning_filters_as_they_were():
    # scikit-learn enters catch_warnings in each check_array and in each task of its Parallel:
    # fitted side by side, its fits left ComplexWarning an error (or no filters at all) behind
    spec = ModelSpec(name="hgb", estimator="hist_gradient_boosting", horizons=[1, 2, 3, 4],
                     params={"max_iter": 5, "max_leaf_nodes": 7})
    before = list(warnings.filters)
    backtest(make_panel(6, 40, seed=5, with_flows=False), [spec],
             folds=RollingOrigin(n_origins=4, calibration_origins=2, min_train=18), baselines=False, progress=False)
    assert warnings.filters == before


def test_scikit_learns_warning_of_emptied_filters_does_not_fail_a_fit_in_a_pool():
    # scikit-learn warns when its Parallel caught the filters as another thread had emptied them;
    # under filters that make warnings errors (this test run's) that warning failed the fit
    race = ("`sklearn.utils.parallel.delayed` should be used with `sklearn.utils.parallel.Parallel` to make it "
            "possible to propagate the scikit-learn configuration of the current thread to the joblib workers.")
    before = list(warnings.filters)
    with pytest.raises(UserWarning):  # outside a pool, this run's filters make it an error
        warnings.warn(race, UserWarning)
    assert list(side_by_side(lambda: warnings.warn(race, UserWarning) or "fitted", [()])) == ["fitted"]
    with pytest.raises(UserWarning, match="other"):  # other warnings are as the caller's filters say
        list(side_by_side(lambda: warnings.warn("other", UserWarning), [()]))
    assert warnings.filters == before


def test_a_pool_closing_waits_for_a_per_area_fit_of_another_thread_to_finish_catching_its_warnings():
    # the pool puts the process's filters back as it closes; done while another thread's fit was
    # catching its warnings, it took that fit's "always record" away, and under this run's filters
    # the fit's warning became an error
    from forecast.models._threads import caught_warnings

    pool_open, fit_in = threading.Event(), threading.Event()
    seen = {}

    def per_area_fit():
        assert pool_open.wait(timeout=10)
        try:
            with caught_warnings() as caught:
                fit_in.set()
                threading.Event().wait(0.5)  # the pool's work is done by now and the pool closing
                warnings.warn("a hard area", UserWarning)
            seen["caught"] = [str(w.message) for w in caught]
        except Exception as exc:  # noqa: BLE001  (the failure the test is about)
            seen["error"] = exc

    fit = threading.Thread(target=per_area_fit)
    fit.start()
    list(side_by_side(lambda: pool_open.set() or fit_in.wait(timeout=10), [()]))
    fit.join()
    assert seen == {"caught": ["a hard area"]}
