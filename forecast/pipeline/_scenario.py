"""Scenarios: "what if the last season had failed", answered by the same trained model.

A scenario rewrites covariates of the cube (rainfall down by half, conflict doubled, a price up)
over months up to the cube's last month and over some areas, rebuilds the features and
forecasts again from the same origin with the same model. Each district's expected arrivals,
interval and trigger probability are compared with the baseline forecast of the unchanged cube.

A shock the model cannot feel is said, never returned as unchanged numbers in silence: whether
the model reads a variable is decided on the data, by rebuilding its features with only that
variable shocked and checking whether a column it was fitted on changes at the origin.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, AREA_NAME, TIME
from forecast.backtest import quantile_column
from forecast.errors import ForecastError
from forecast.pipeline._shocks import (
    MIN_YEARS,
    SHOCK_FORMS,
    Shock,
    apply_shock,
    parse_shock,
    percentile_of_earlier_years,
)
from forecast.policy import suppress_small_cells
from forecast.triggers import prioritize

__all__ = ["Shock", "parse_shock", "ScenarioResult", "run_scenario", "percentile_of_earlier_years", "SHOCK_FORMS",
           "DEFAULT_MONTHS", "MIN_YEARS"]

#: Months a scenario rewrites when none are named: the last season, ending at the origin.
DEFAULT_MONTHS = 3

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: Area coordinates a region name is looked up in, in order.
_REGION_COORDS = ("region", "admin1_name", "admin1_pcode")


@dataclass
class ScenarioResult:
    """A scenario's forecasts beside the baseline's, one row per district (per horizon without a trigger).

    Attributes
    ----------
    table : DataFrame
        ``area, area_name, region, shocked, lead`` (or ``horizon``), ``baseline, scenario,
        change``, the interval of each (``baseline_q0.1, baseline_q0.9, scenario_q0.1,
        scenario_q0.9`` for the default quantiles), ``baseline_probability,
        scenario_probability, probability_change``, ``baseline_signal, scenario_signal`` and
        ``status``; sorted by probability change, largest rise first. With a trigger the
        arrivals are those expected over its lead window, as ``forecast prioritize`` shows them.
    shocks : tuple of Shock
    months : list of str
        The rewritten months, ``YYYY-MM``.
    areas : list of str
        The rewritten areas.
    notes : list of str
        What the reader must know: values clipped at 0, shocked variables the model does not read.
    name : str
    region, origin, model, trigger, lead, trigger_probability
        Where and from when it forecast, and the trigger whose probability is compared.
    interval : (str, str)
        The quantile columns of the interval (the spec's lowest and highest).
    all_areas : bool
    clipped : dict of str to int
        Per variable, values a shock would have pushed below 0, set to 0.
    """

    table: pd.DataFrame
    shocks: tuple[Shock, ...]
    months: list[str]
    areas: list[str]
    notes: list[str]
    name: str
    region: str | None = None
    origin: str = ""
    model: str = ""
    trigger: str | None = None
    lead: int | None = None
    trigger_probability: float | None = None
    interval: tuple[str, str] = ("q0.1", "q0.9")
    all_areas: bool = True
    clipped: dict[str, int] = field(default_factory=dict)

    @property
    def months_label(self) -> str:
        """``2023-10..2023-12`` for a run of months, else the months separated by commas."""
        if len(self.months) == 1:
            return self.months[0]
        periods = pd.PeriodIndex(self.months, freq="M")
        if (periods[-1] - periods[0]).n == len(periods) - 1:
            return f"{self.months[0]}..{self.months[-1]}"
        return ",".join(self.months)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def published(self, k: int | None = None) -> pd.DataFrame:
        """The table as it may leave the pipeline: expected arrivals in [1, k) withheld and
        flagged in ``<column>_suppressed`` (see :func:`forecast.policy.suppress_small_cells`);
        the change of a row with a withheld value is withheld too."""
        lo, hi = self.interval
        columns = [f"{side}{suffix}" for side in ("baseline", "scenario") for suffix in ("", f"_{lo}", f"_{hi}")]
        out = suppress_small_cells(self.table, columns=columns, k=k)
        hidden = out[[f"{c}_suppressed" for c in columns]].any(axis=1)
        out["change"] = out["change"].where(~hidden)
        return out

    def summary(self) -> dict[str, float]:
        """The headline numbers: mean change of expected arrivals and of the trigger probability,
        districts at or above the trigger's probability before and after, cells rewritten."""
        t = self.table
        out = {"mean_change": float(t["change"].mean()), "n_areas_shocked": float(len(self.areas)),
               "clipped_cells": float(sum(self.clipped.values()))}
        if self.trigger is not None:
            out["mean_probability_change"] = float(t["probability_change"].mean())
            out["n_signal_baseline"] = float(t["baseline_signal"].fillna(False).astype(bool).sum())
            out["n_signal_scenario"] = float(t["scenario_signal"].fillna(False).astype(bool).sum())
        return out

    def describe(self) -> str:
        """One paragraph: what was changed, where and when, and what it did."""
        where = (f"region {self.region}" if self.region else "every area" if self.all_areas
                 else f"{len(self.areas)} area(s)")
        text = (f"scenario {self.name}: {', '.join(map(str, self.shocks))} over {self.months_label} in {where}; "
                f"model {self.model} forecasting from {self.origin}")
        s = self.summary()
        if self.trigger is not None:
            text += (f"; {self.trigger} within {self.lead} month(s): mean probability change "
                     f"{s['mean_probability_change']:+.3f}, districts at P >= {self.trigger_probability:g} "
                     f"{s['n_signal_baseline']:.0f} -> {s['n_signal_scenario']:.0f}")
        text += f"; mean change in expected arrivals {s['mean_change']:+,.0f}"
        return text


def run_scenario(trained, cube: xr.Dataset, shocks: Sequence[str | Shock], *,
                 areas: Sequence[str] | str | None = None, region: str | None = None,
                 months: str | Sequence | None = None, trigger: str | None = None, lead: int | None = None,
                 name: str | None = None) -> ScenarioResult:
    """Forecast ``cube`` again with ``shocks`` applied, beside the baseline forecast.

    Parameters
    ----------
    trained : TrainedModel
    cube : xarray.Dataset
        The data to forecast from (its last month is the origin).
    shocks : sequence of str or Shock
        ``rainfall=-50%``, ``conflict_incidents=x2``, ``maize_price=+10`` (see :func:`parse_shock`);
        one per variable.
    areas : sequence of str or str, optional
        Area keys (P-codes) to rewrite, or one comma-separated string (default: every area).
    region : str, optional
        Rewrite every area of this region instead (its name in the cube's ``region``,
        ``admin1_name`` or ``admin1_pcode`` coordinate).
    months : str or sequence, optional
        ``2023-10..2023-12``, one month ``2023-12``, or a list of months, at or before the
        origin (default: the last 3 months up to the origin).
    trigger, lead : optional
        The trigger and lead whose probability to compare (default: the model's first trigger
        and its first lead). A model trained without triggers compares expected arrivals only,
        at horizon ``lead`` (default: every horizon).
    name : str, optional
        Default: from the shocks, e.g. ``rainfall-50pct``.

    Raises
    ------
    ForecastError
        A malformed shock or months range; a variable the cube lacks (the covariates are
        listed); months after the origin; an unknown area or region; a model that reads none
        of the shocked variables.
    """
    parsed = [parse_shock(s) for s in shocks]
    if not parsed:
        raise ForecastError(f"a scenario needs at least one shock, e.g. rainfall=-50%; the forms are {SHOCK_FORMS}")
    spec = trained.spec
    _check_variables(parsed, cube, spec.target)
    name = name or "_".join(s.label for s in parsed)
    if not _NAME.match(name):
        raise ForecastError(f"scenario name {name!r}: use letters, digits and _ . + - only (it names a file)")
    time = pd.DatetimeIndex(cube[TIME].values)
    t_idx = _month_indices(months, time)
    a_idx, region = _area_indices(cube, areas, region)
    trig, lead = _resolve_trigger(trained, trigger, lead)

    single, clipped = {}, {}
    for shock in parsed:  # one cube per shock, to tell which the model reads; then all together
        single[shock.variable], clipped[shock.variable] = apply_shock(cube, shock, a_idx, t_idx)
    shocked = cube.assign({v: one[v] for v, one in single.items()})
    notes = [f"{n} value(s) of {v} would have fallen below 0 and were set to 0" for v, n in clipped.items() if n]
    unread = _unread(trained, cube, single)
    if len(unread) == len(parsed):
        raise ForecastError(f"the model {spec.name!r} does not read {', '.join(unread)}: {_why_unread(trained, time)}; "
                            "the scenario would return the baseline unchanged. Shock a variable the model reads, "
                            "or train a model whose features read these")
    if unread:
        notes.append(f"the model does not read {', '.join(unread)}: {_why_unread(trained, time)}; "
                     f"only {', '.join(s.variable for s in parsed if s.variable not in unread)} changed the forecast")

    base = _forecast(trained, cube, trig, lead)
    what = _forecast(trained, shocked, trig, lead)
    lo, hi = quantile_column(spec.quantiles[0]), quantile_column(spec.quantiles[-1])
    table = _compare(base, what, cube, a_idx, "lead" if trig is not None else "horizon", (lo, hi))
    areas_out = [str(a) for a in cube[AREA].values[a_idx]]
    return ScenarioResult(table=table, shocks=tuple(parsed), months=[f"{t:%Y-%m}" for t in time[t_idx]],
                          areas=areas_out, notes=notes, name=name, region=region, origin=f"{time[-1]:%Y-%m}",
                          model=spec.name, trigger=None if trig is None else trig.name, lead=lead,
                          trigger_probability=None if trig is None else trig.probability, interval=(lo, hi),
                          all_areas=len(a_idx) == cube.sizes[AREA], clipped=clipped)


# --- checking the request --------------------------------------------------------------------

def covariates(cube: xr.Dataset, target: str) -> list[str]:
    """The cube's area x month variables a scenario may rewrite: all but the target and masks."""
    return [v for v, da in cube.data_vars.items()
            if set(da.dims) == {AREA, TIME} and not v.endswith("_observed") and v != target]


def _check_variables(shocks: list[Shock], cube: xr.Dataset, target: str) -> None:
    known = covariates(cube, target)
    seen = set()
    for shock in shocks:
        v = shock.variable
        if v in seen:
            raise ForecastError(f"{v} is shocked twice; give one change per variable")
        seen.add(v)
        if v == target:
            raise ForecastError(f"{v} is the model's target: a scenario changes what drives it, not the outcome; "
                                f"shock one of the cube's covariates: {', '.join(known)}")
        if v not in known:
            near = difflib.get_close_matches(v, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ForecastError(f"the cube has no covariate {v!r}{hint}; its covariates are: {', '.join(known)}")


def _month(text) -> pd.Timestamp:
    if isinstance(text, str):
        if not _MONTH.match(text.strip()):
            raise ValueError(text)
        return pd.Timestamp(f"{text.strip()}-01")
    return pd.Timestamp(text).to_period("M").to_timestamp()


def _month_indices(months, time: pd.DatetimeIndex) -> np.ndarray:
    origin = time[-1]
    if months is None:
        return np.arange(max(0, len(time) - DEFAULT_MONTHS), len(time))
    form = "write one month (2023-12), a range FIRST..LAST (2023-10..2023-12) or a list of months"
    try:
        if isinstance(months, str):
            parts = months.split("..")
            if len(parts) > 2:
                raise ValueError(months)
            first, last = (_month(p) for p in (parts[0], parts[-1]))
            if first > last:
                raise ForecastError(f"months {months!r} run backwards: the first month comes before the last")
            wanted = pd.date_range(first, last, freq="MS")
        else:
            wanted = pd.DatetimeIndex(sorted({_month(m) for m in months}))
    except (ValueError, TypeError):
        raise ForecastError(f"cannot read months {months!r}: {form}") from None
    if wanted.empty:
        raise ForecastError(f"no months given: {form}")
    late = wanted[wanted > origin]
    if len(late):
        raise ForecastError(f"month(s) {', '.join(f'{t:%Y-%m}' for t in late)} come after the cube's last month "
                            f"{origin:%Y-%m}, the origin the model forecasts from: a scenario rewrites what has "
                            f"happened ('what if the last season had failed'); ask for months up to {origin:%Y-%m}")
    index = time.get_indexer(wanted)
    if (index < 0).any():
        raise ForecastError(f"month(s) {', '.join(f'{t:%Y-%m}' for t in wanted[index < 0])} are not months of the "
                            f"cube ({time[0]:%Y-%m} to {origin:%Y-%m})")
    return index


def _area_indices(cube: xr.Dataset, areas, region: str | None) -> tuple[np.ndarray, str | None]:
    keys = pd.Index(cube[AREA].values.astype(str))
    if areas is not None and region is not None:
        raise ForecastError("give the areas or a region to rewrite, not both")
    if region is not None:
        return _region_indices(cube, str(region))
    if areas is None:
        return np.arange(len(keys)), None
    wanted = [a.strip() for a in areas.split(",")] if isinstance(areas, str) else [str(a).strip() for a in areas]
    wanted = list(dict.fromkeys(a for a in wanted if a))
    if not wanted:
        raise ForecastError("no areas given: name P-codes, e.g. --areas SO2401,SO2402, or a --region")
    index = keys.get_indexer(wanted)
    unknown = [a for a, i in zip(wanted, index) if i < 0]
    if unknown:
        shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
        raise ForecastError(f"area(s) {', '.join(unknown)} are not in the cube; its {len(keys)} areas are keyed "
                            f"{cube.attrs.get('area_key', 'by P-code')}: {shown}")
    return np.sort(index), None


def _region_indices(cube: xr.Dataset, region: str) -> tuple[np.ndarray, str]:
    coords = [c for c in _REGION_COORDS if c in cube.coords and cube[c].dims == (AREA,)]
    if not coords:
        raise ForecastError(f"the cube has no region coordinate ({', '.join(_REGION_COORDS)}) to find "
                            f"region {region!r} in; name the areas instead")
    for exact in (True, False):
        for c in coords:
            values = cube[c].values.astype(str)
            hit = values == region if exact else np.char.lower(values) == region.lower()
            if hit.any():  # the region as the cube spells it
                return np.flatnonzero(hit), str(values[hit][0])
    names = sorted(set(cube[coords[0]].values.astype(str)))
    raise ForecastError(f"no region {region!r} in the cube; its regions ({coords[0]}) are: {', '.join(names)}")


def _resolve_trigger(trained, trigger: str | None, lead: int | None):
    horizons = list(trained.spec.horizons)
    if lead is not None and lead > max(horizons):
        raise ForecastError(f"lead {lead} needs forecasts {lead} months ahead; the model forecasts {horizons} months ahead")
    if not trained.triggers:
        if trigger is not None:
            raise ForecastError(f"this model was trained without triggers, so it has no trigger {trigger!r}; "
                                "train it with triggers (forecast train --triggers FILE)")
        if lead is not None and lead not in horizons:
            raise ForecastError(f"horizon {lead} is not one the model forecasts: {horizons}")
        return None, lead
    spec = trained.triggers[0] if trigger is None else next((t for t in trained.triggers if t.name == trigger), None)
    if spec is None:
        raise ForecastError(f"no trigger {trigger!r}; this model has {', '.join(t.name for t in trained.triggers)}")
    lead = spec.leads[0] if lead is None else int(lead)
    if lead not in spec.leads:
        raise ForecastError(f"trigger {spec.name!r} has leads {spec.leads}; lead {lead} is not one of them")
    return spec, lead


# --- shocking and reading --------------------------------------------------------------------

def _unread(trained, cube: xr.Dataset, single: dict[str, xr.Dataset]) -> list[str]:
    """The shocked variables that change nothing the model reads at the origin: for a global
    model, no column it was fitted on; for a series model, not among its ``exog``."""
    spec = trained.spec
    if spec.kind != "global":
        return [v for v in single if v not in set(getattr(trained.fitted, "exog", None) or ())]
    base = spec.feature_matrix(cube)
    rows = base.rows_at(cube.sizes[TIME] - 1)
    columns = [c for c in trained.columns if c in base.X.columns]
    before = base.X.iloc[rows][columns].to_numpy()
    return [v for v, shocked in single.items() if np.array_equal(
        before, spec.feature_matrix(shocked).X.iloc[rows].reindex(columns=columns).to_numpy(), equal_nan=True)]


def _why_unread(trained, time: pd.DatetimeIndex) -> str:
    spec = trained.spec
    if spec.kind != "global":
        exog = list(getattr(trained.fitted, "exog", None) or ())
        return (f"its estimator {spec.estimator!r} reads " + (f"only the covariates {', '.join(exog)}" if exog
                                                              else "no covariate, only the target's own history"))
    families = spec.features if isinstance(spec.features, str) else ", ".join(spec.features)
    return (f"none of the {len(trained.columns)} features it was fitted on (families: {families}) changes at its "
            f"origin {time[-1]:%Y-%m} under these shocks")


def _forecast(trained, cube: xr.Dataset, trig, lead: int | None) -> pd.DataFrame:
    """Per area (and horizon without a trigger): expected arrivals, interval, probability, signal."""
    spec = trained.spec
    forecasts = trained.predict(cube)
    lo, hi = quantile_column(spec.quantiles[0]), quantile_column(spec.quantiles[-1])
    if trig is None:
        rows = forecasts if lead is None else forecasts[forecasts["horizon"] == lead]
        return pd.DataFrame({AREA: rows[AREA].to_numpy(), "horizon": rows["horizon"].to_numpy(),
                             "expected": rows["point"].to_numpy(float), lo: rows[lo].to_numpy(float),
                             hi: rows[hi].to_numpy(float), "probability": np.nan, "signal": pd.NA,
                             "status": "ok"})
    ranking = prioritize(forecasts, cube, trig, lead, quantiles=spec.quantiles,
                         missing_target=spec.resolved_missing_target,
                         calibrator=trained.trigger_calibration.get((trig.name, lead)))
    return ranking.rename(columns={"lower": lo, "upper": hi})[
        [AREA, "lead", "expected", lo, hi, "probability", "signal", "status"]]


def _compare(base: pd.DataFrame, what: pd.DataFrame, cube: xr.Dataset, a_idx: np.ndarray, step: str,
             interval: tuple[str, str]) -> pd.DataFrame:
    merged = base.merge(what.drop(columns="status"), on=[AREA, step], how="outer", suffixes=("_b", "_s"))
    codes = cube[AREA].values.astype(str)
    names = dict(zip(codes, cube[AREA_NAME].values.astype(str))) if AREA_NAME in cube.coords else {}
    region = next((c for c in ("region", "admin1_name") if c in cube.coords), None)
    regions = dict(zip(codes, cube[region].values.astype(str))) if region else {}
    out = pd.DataFrame({AREA: merged[AREA], AREA_NAME: merged[AREA].map(names).fillna(""),
                        "region": merged[AREA].map(regions).fillna(""),
                        "shocked": merged[AREA].isin(set(codes[a_idx])), step: merged[step]})
    out["baseline"], out["scenario"] = merged["expected_b"], merged["expected_s"]
    out["change"] = out["scenario"] - out["baseline"]
    for side, suffix in (("baseline", "_b"), ("scenario", "_s")):
        for c in interval:
            out[f"{side}_{c}"] = merged[c + suffix]
    out["baseline_probability"] = merged["probability_b"].astype(float)
    out["scenario_probability"] = merged["probability_s"].astype(float)
    out["probability_change"] = out["scenario_probability"] - out["baseline_probability"]
    out["baseline_signal"], out["scenario_signal"] = merged["signal_b"], merged["signal_s"]
    out["status"] = merged["status"].fillna("no forecast")
    out = out.sort_values(["probability_change", "change", AREA], ascending=[False, False, True],
                          na_position="last", kind="stable")
    return out.reset_index(drop=True)
