"""Progress where people work (a bar with an ETA in a terminal or a notebook, silence elsewhere),
and a warning when a feature family a spec names finds nothing in the cube."""

from __future__ import annotations

import io
import re
import sys
import warnings

import IPython
import IPython.display
import pytest

from forecast.backtest import ProgressBar, RollingOrigin, backtest, progress_bar
from forecast.datasets import make_panel
from forecast.errors import DataQualityWarning, ForecastError
from forecast.features import build_features
from forecast.models import ModelSpec
from forecast.pipeline import train
from forecast.triggers import TriggerSpec, evaluate_triggers

TINY = {"n_estimators": 5, "num_leaves": 4, "min_child_samples": 5, "max_bin": 15}
FOLDS = RollingOrigin(n_origins=3, calibration_origins=2)
CALIBRATION = RollingOrigin(n_origins=8, calibration_origins=0)  # enough errors to calibrate a trained model
TRIGGER = TriggerSpec(name="spike", kind="percentile", value=80, min_history=6, leads=[1])
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    """Standard error as a terminal: what a user running a script sees."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def cube():
    return make_panel(5, 40, seed=4, with_flows=False)


@pytest.fixture()
def spec():
    return ModelSpec(name="tiny", estimator="lightgbm", params=TINY, horizons=[1, 2], features=["lags", "season"])


def on_terminal(monkeypatch):
    """sys.stderr as a terminal (set in the test itself: pytest's capture resets sys.stderr after
    fixtures); returns a function giving what was drawn on it, escape codes removed."""
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return lambda: ANSI.sub("", screen.getvalue())


def test_backtest_shows_a_bar_per_model_with_an_eta_by_default_when_stderr_is_a_terminal(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    backtest(cube, [spec], folds=FOLDS)
    drawn = terminal()
    assert "ETA" in drawn and "━" in drawn
    final = drawn.splitlines()[-6:]  # the last drawing: one finished row per model
    assert [line.split()[0] for line in final] == ["naive", "seasonal_naive", "moving_average", "ewm",
                                                   "historical_mean", "tiny"]
    assert all(re.search(r" 5/5 \d+:\d\d:\d\d done$", line.rstrip()) for line in final), final


def test_backtest_draws_nothing_when_progress_is_false(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    backtest(cube, [spec], folds=FOLDS, progress=False)
    assert terminal() == ""


def test_backtest_draws_nothing_by_default_when_nobody_watches(cube, spec, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backtest(cube, [spec], folds=FOLDS)
    assert capsys.readouterr() == ("", "")


def test_backtest_calls_a_progress_callable_after_each_origin_and_draws_nothing(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    seen = []
    backtest(cube, [spec], folds=FOLDS, baselines=False, progress=lambda *a: seen.append(a))
    assert seen[-1] == ("tiny", 5, 5) and all(label == "tiny" and total == 5 for label, _, total in seen)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert terminal() == ""


def test_default_bar_stays_silent_when_another_live_display_draws(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    from rich.console import Console

    with Console(stderr=True).status("the command line's own spinner"):
        backtest(cube, [spec], folds=FOLDS, baselines=False)
    assert "tiny" not in terminal()


def test_evaluate_triggers_shows_a_bar_with_an_eta_by_default_and_calls_a_callable(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    result = backtest(cube, [spec], folds=FOLDS, baselines=False, progress=False)
    evaluate_triggers(result, cube, [TRIGGER], routes=["forecast", "logistic"])
    assert re.search(r"trigger signals .* 2/2 \d+:\d\d:\d\d done", terminal())
    seen = []
    evaluate_triggers(result, cube, [TRIGGER], routes=["forecast", "logistic"], progress=lambda *a: seen.append(a))
    assert seen == [("trigger signals", 1, 2), ("trigger signals", 2, 2)]


def test_train_shows_one_bar_for_its_steps_by_default(cube, spec, monkeypatch):
    terminal = on_terminal(monkeypatch)
    train(cube, spec, calibration=CALIBRATION, triggers=[TRIGGER])
    final = [line.split()[0] for line in terminal().splitlines()[-3:]]
    assert final == ["tiny", "tiny:", "trigger"]  # calibration origins, the fit on every month, the trigger
    assert "tiny: fit on every month" in terminal() and "ETA" in terminal()


def test_train_calls_a_progress_callable_for_each_step(cube, spec):
    seen = []
    train(cube, spec, calibration=CALIBRATION, progress=lambda *a: seen.append(a))
    assert ("tiny", 8, 8) in seen and seen[-2:] == [("tiny: fit on every month", 0, 1),
                                                    ("tiny: fit on every month", 1, 1)]


def test_progress_bar_on_a_console_given_draws_there(cube, spec, capsys):
    from rich.console import Console

    screen = io.StringIO()
    backtest(cube, [spec], folds=FOLDS, baselines=False,
             progress=ProgressBar(Console(file=screen, force_terminal=True, width=100)))
    assert re.search(r"tiny .* 5/5 \d+:\d\d:\d\d done", ANSI.sub("", screen.getvalue()))
    assert capsys.readouterr() == ("", "")


class ZMQInteractiveShell:
    """Stands for the shell of a Jupyter kernel."""


def test_backtest_updates_one_display_in_place_by_default_in_a_jupyter_notebook(cube, spec, monkeypatch, capsys):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    def display(obj, display_id=False):
        assert display_id is True
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython, "get_ipython", ZMQInteractiveShell)
    monkeypatch.setattr(IPython.display, "display", display)
    backtest(cube, [spec], folds=FOLDS, baselines=False)
    assert shown, "nothing displayed"
    last = shown[-1]
    assert re.search(r"tiny .* 5/5 \d+:\d\d:\d\d done", repr(last))
    assert last._repr_html_().startswith("<pre") and "5/5" in last._repr_html_()
    assert capsys.readouterr() == ("", "")  # no text beside the display


def test_progress_refuses_what_is_not_a_callable_nor_a_bool():
    with pytest.raises(ForecastError, match="progress must be a callable progress.label, done, total., False"):
        with progress_bar("yes"):
            pass


# -- a feature family that finds nothing in the cube ------------------------------------------

def test_a_spec_asking_for_covariates_on_a_cube_without_any_warns_naming_the_family_and_what_it_looked_for(cube):
    bare = cube[["arrivals"]]
    spec = ModelSpec(name="cov", estimator="lightgbm", params=TINY, horizons=[1], features=["lags", "covariates"])
    with pytest.warns(DataQualityWarning) as caught:
        spec.feature_matrix(bare)
    message = str(caught[0].message)
    assert message.startswith("feature family 'covariates' found nothing in the cube: it looks for the covariates "
                              "conflict_events, conflict_fatalities, rainfall, rain_anomaly, price_index, departures, "
                              "returns or idp_stock; the cube has no covariate besides the target. The model runs "
                              "without 'covariates' features")
    assert len(caught) == 1


@pytest.mark.parametrize(("family", "looked_for"), [
    ("drought", "the drought indicators rainfall, ndvi or drought_index"),
    ("conflict", "the conflict counts conflict_incidents, conflict_fatalities or conflict_events"),
    ("markets", "the prices, wages or terms of trade water_price, "),
    ("food_security", "IPC classifications: variables named ipc_*"),
    ("pressure", "origin-destination flows (the cube's 'flows') to weigh rainfall, ndvi, drought_index or "
                 "conflict_incidents at the areas arrivals came from"),
])
def test_a_driver_family_named_on_a_cube_without_its_variables_warns(cube, family, looked_for):
    without = cube.drop_vars([v for v in cube.data_vars if v.startswith(("conflict", "rain"))])
    with pytest.warns(DataQualityWarning, match=f"feature family '{family}' found nothing in the cube") as caught:
        build_features(without, "arrivals", families=["lags", family])
    assert f"it looks for {looked_for}" in str(caught[0].message)
    assert "the cube's covariates are departures, idp_stock, returns" in str(caught[0].message)


def test_the_warning_says_which_variables_exclude_variables_withheld(cube):
    with pytest.warns(DataQualityWarning, match=r"returns \(exclude_variables withholds conflict_events, "
                                                r"conflict_fatalities\)"):
        build_features(cube, "arrivals", families=["conflict"],
                       exclude_variables=["conflict_events", "conflict_fatalities"])


def test_no_warning_when_families_is_all_or_a_family_has_nothing_to_look_for(cube):
    bare = cube[["arrivals"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_features(bare, "arrivals")                       # "all" takes what the cube has
        build_features(bare, "arrivals", families=["stock_flow"])  # a flow target has no rounds
        build_features(cube, "arrivals", families=["lags", "covariates", "conflict", "drought"])
