"""Who is left behind: forecast skill and trigger performance per group of areas, against the policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.backtest import check_scale, numeric_column, require_columns
from forecast.errors import ForecastError
from forecast.fairness._inputs import (
    ROUTE,
    assessed,
    check_groups,
    check_signals,
    group_labels,
    group_order,
    select,
    signal_keys,
)
from forecast.fairness._metrics import group_status, judge, mase_table, signal_table
from forecast.policy import Policy, load_policy

__all__ = ["fairness_report", "FairnessReport"]

KEYS = ["trigger", "lead", ROUTE, "group_column"]
BY_GROUP_COLUMNS = [*KEYS, "group", "n_areas", "n_rows", "n_events", "n_alarms", "n_unassessed",
                    "n_no_probability", "n_scored", "mase", "hit_rate", "false_alarm_ratio", "selection_rate",
                    "false_positive_rate", "status"]


@dataclass(frozen=True)
class FairnessReport:
    """Per-group metrics and between-group disparities of one model's forecasts and triggers.

    Attributes
    ----------
    by_group : DataFrame
        One row per trigger x lead x route x group column x group, every group of the groups
        table (too-small ones included): ``n_areas`` (areas with data), ``n_rows`` (signal
        rows with an observed event and a probability), ``n_events``, ``n_alarms``
        (activations), ``n_unassessed`` (window not observed), ``n_no_probability`` (window
        observed but the trigger had no probability: no threshold yet, stale data; such rows
        are in no metric, so a group with many of them is left behind in a way the metrics
        cannot show), ``n_scored`` (forecast rows scored for MASE), ``mase``, ``hit_rate``, ``false_alarm_ratio``, ``selection_rate``,
        ``false_positive_rate`` and ``status``: ``"ok"``, ``"too small: <why>"`` (not judged
        at all), or ``"too small for <metric> (<why>), ..."`` and/or ``"<metric> is NaN
        ..."`` naming the metrics it is left out of.
    disparities : DataFrame
        One row per trigger x lead x route x group column x metric: ``difference`` (best - worst),
        ``ratio`` (min / max), ``limit``, ``passed`` (True, False or <NA> when not judged),
        ``status`` (``passed``, ``failed``, ``cannot judge: ...``, ``not checked ...``),
        ``groups_compared``, ``n_groups_compared``, ``measured`` (what the values measure:
        the metric, or for equalized odds the true- or false-positive rate with the larger
        gap), ``worst_group`` / ``worst_value``, ``best_group`` / ``best_value``, and
        ``groups_left_out`` with the reason for each (too small, or the metric is NaN).
    overall : DataFrame
        The same metrics over all areas, one row per trigger x lead x route. ``route`` is
        None when the signals have no route column; ``trigger``, ``lead`` and ``route`` are
        None in a report on forecasts only.
    policy : Policy
    model : str or None
        The forecast model whose MASE was measured.
    """

    by_group: pd.DataFrame
    disparities: pd.DataFrame
    overall: pd.DataFrame
    policy: Policy
    model: str | None = None

    @property
    def passed(self) -> bool | None:
        """True when every judged check passed, False when one failed, None when none could be judged."""
        judged = self.disparities["passed"].dropna()
        return None if judged.empty else bool(judged.all())

    @property
    def failures(self) -> list[str]:
        """One readable line per failed check: group column, metric, worst group, value vs limit."""
        return [_failure_line(row, self.policy) for _, row in self.disparities.iterrows()
                if row["status"] == "failed"]

    @property
    def not_judged(self) -> list[str]:
        """One line per check the policy asks for that could not be judged, with the reason."""
        return [f"{row['metric']} by {row['group_column']}{_where(row)}: {row['status']}"
                for _, row in self.disparities.iterrows()
                if str(row["status"]).startswith("cannot judge")
                and self.policy.limit(row["metric"]).checked]

    def summary(self) -> str:
        """The verdict, then each failure and each check that could not be judged."""
        verdict = {True: "passed", False: "FAILED", None: "cannot judge (no check had two "
                   "groups large enough)"}[self.passed]
        lines = [f"fairness check {verdict} (policy {self.policy.label})"]
        lines += [f"  failed: {line}" for line in self.failures]
        lines += [f"  not judged: {line}" for line in self.not_judged]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def tables(self) -> dict[str, pd.DataFrame]:
        """The report's tables by name (``fairness_by_group``, ``fairness_disparities``,
        ``fairness_overall``), e.g. to log each as an MLflow table artifact."""
        return {"fairness_by_group": self.by_group, "fairness_disparities": self.disparities,
                "fairness_overall": self.overall}

    def to_frame(self) -> pd.DataFrame:
        """The verdict as one table: the disparities, one row per check, ``policy`` column added."""
        frame = self.disparities.copy()
        frame.insert(0, "policy", self.policy.label)
        return frame

    def plot(self, metric: str = "hit_rate", *, trigger: str | None = None, lead: int | None = None,
             route: str | None = None):
        """Bar chart of ``metric`` per group, one panel per group column, with the policy limit.

        Groups too small to judge are drawn hatched and grey. The limit line sits where the
        worst group may be given the best judged group (e.g. ``best - max_difference``).

        Parameters
        ----------
        metric : {"hit_rate", "false_alarm_ratio", "selection_rate", "mase"}
        trigger, lead, route : optional
            Which set of signals to draw; needed when the report has several.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from forecast.fairness._plots import disparity_chart

        return disparity_chart(self, metric, trigger=trigger, lead=lead, route=route)


def fairness_report(
    signals: pd.DataFrame | None,
    scored: pd.DataFrame | None,
    groups: pd.DataFrame,
    *,
    policy: Policy | str | Path | None = None,
    model: str | None = None,
    trigger: str | Sequence[str] | None = None,
    lead: int | Sequence[int] | None = None,
    route: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> FairnessReport:
    """Measure forecast skill and trigger performance per group of areas and judge the gaps.

    For every trigger x lead (x route) in ``signals`` and every group column, fairlearn's
    :class:`~fairlearn.metrics.MetricFrame` computes per group the MASE of ``model``'s
    forecasts (horizons 1 .. lead, the forecasts a lead-``lead`` trigger reads), the hit
    rate, false-alarm ratio and selection rate of the signals. Groups smaller than the
    policy's minimums are reported as too small and left out of the comparison; the
    remaining groups' largest difference and ratio are compared with the policy's limits,
    and fairlearn's ``equalized_odds_difference`` of signal vs event with its
    ``equalized_odds`` limit. Fewer than two groups large enough means "cannot judge".

    Parameters
    ----------
    signals : DataFrame or None
        The trigger layer's signals (:func:`forecast.triggers.trigger_signals`): ``trigger,
        lead, origin, area, probability, signal, event``, optionally ``route`` (one set of
        signals per route) and ``role`` (only ``scored`` origins are judged, as in
        :func:`forecast.triggers.trigger_metrics`). Event NaN = window not observed
        (``n_unassessed``); probability NaN = no probability (``n_no_probability``); neither
        counts in any metric. None to judge the forecasts only.
    scored : DataFrame or None
        The backtest's forecasts (``BacktestResult.scored``, or ``.forecasts``, whose
        calibration rows are then left out): ``model, horizon, area, actual, point, scale``.
        Rows with NaN ``actual`` are not scored. None to judge the signals only.
    groups : DataFrame
        Indexed by area P-code, one column of labels per grouping
        (:func:`forecast.fairness.area_groups`, plus any column you add). Missing or empty
        labels form the group ``"unknown"``.
    policy : Policy, path or None
        The limits; default :func:`forecast.fairness.load_policy` ().
    model : str, optional
        The model whose forecasts to score; needed when ``scored`` holds several.
    trigger, lead, route : optional
        Restrict the signals to these triggers / leads / routes. Without signals, ``lead``
        limits the MASE to horizons up to it.
    columns : sequence of str, optional
        Group columns to use; default all columns of ``groups``.

    Returns
    -------
    FairnessReport

    Raises
    ------
    ForecastError
        Missing columns, values outside the signals contract, an area of the data without
        a row in ``groups``, an ambiguous or absent model.

    Examples
    --------
    >>> report = fairness_report(signals, result.scored, area_groups(cube), model="lightgbm")  # doctest: +SKIP
    >>> report.passed, report.failures                                                        # doctest: +SKIP
    (False, ["hit_rate by region (trigger 'surge', lead 3): worst group 'Bay' hit rate 0.31 vs best group 'Banadir' 0.78; difference 0.47 > limit 0.2"])
    """
    if signals is None and scored is None:
        raise ForecastError("give signals, scored forecasts or both: there is nothing to judge")
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    sig = None
    if signals is not None:
        sig = select(select(check_signals(signals), "trigger", trigger), "lead", lead)
        if route is not None:
            if ROUTE not in sig.columns:
                raise ForecastError(f"route={route!r} was given but the signals have no 'route' column")
            sig = select(sig, ROUTE, route)
        if "role" in sig.columns:
            sig = sig[sig["role"] == "scored"]
        if model is not None and "model" in sig.columns:
            sig = select(sig, "model", model)
    forecasts, model = (None, model) if scored is None else _scored_rows(scored, model)

    areas = set() if sig is None else set(sig["area"])
    areas |= set() if forecasts is None else set(forecasts["area"])
    columns = check_groups(groups, sorted(areas), columns)
    metrics = (["mase"] if forecasts is not None else []) + (
        ["hit_rate", "false_alarm_ratio", "selection_rate", "equalized_odds"] if sig is not None else [])

    by_group, disparities, overall = [], [], []
    for key, rows in _combinations(sig, lead):
        lead_months = key["lead"]
        fc = forecasts if forecasts is None or lead_months is None else \
            forecasts[forecasts["horizon"] <= lead_months]
        for column in columns:
            table, whole = _group_table(rows, fc, group_labels(groups, column),
                                        group_order(groups, column))
            if column == columns[0]:
                overall.append({**key, "n_areas": _n_areas(rows, fc), **whole})
            outcomes = None if rows is None else _outcomes(rows, group_labels(groups, column))
            for metric in metrics:
                disparities.append({**key, "group_column": column,
                                    **judge(table, metric, policy, outcomes)})
            table["status"] = group_status(table, [m for m in metrics if m != "equalized_odds"], policy)
            table = table.reset_index(names="group")
            for name, value in reversed([*key.items(), ("group_column", column)]):
                table.insert(0, name, value)
            by_group.append(table)

    by_group_frame = pd.concat(by_group, ignore_index=True)[BY_GROUP_COLUMNS]
    disparity_frame = pd.DataFrame(disparities)
    disparity_frame["passed"] = disparity_frame["passed"].astype("boolean")
    overall_frame = pd.DataFrame(overall)
    overall_frame = overall_frame[[c for c in BY_GROUP_COLUMNS if c in overall_frame.columns]]
    return FairnessReport(by_group=by_group_frame, disparities=disparity_frame,
                          overall=overall_frame, policy=policy, model=model)


def _scored_rows(scored: pd.DataFrame, model: str | None) -> tuple[pd.DataFrame, str | None]:
    require_columns(scored, ["horizon", "area", "actual", "point", "scale"])
    rows = scored
    if "role" in rows.columns:
        rows = rows[rows["role"] == "scored"]
    if "model" in rows.columns:
        present = sorted(map(str, rows["model"].unique()))
        if model is None:
            if len(present) != 1:
                raise ForecastError(f"the scored forecasts hold models {present}; pass model= one "
                                    "of them to judge its forecasts")
            model = present[0]
        if model not in present:
            raise ForecastError(f"model {model!r} is not in the scored forecasts; models present: "
                                f"{present}")
        rows = rows[rows["model"] == model]
    actual = numeric_column(rows, "actual")
    observed = ~np.isnan(actual)
    check_scale(rows, numeric_column(rows, "scale"), observed)
    rows = rows.loc[observed, ["horizon", "area", "actual", "point", "scale"]].copy()
    rows["area"] = rows["area"].astype(str)
    rows["point"] = numeric_column(rows, "point")
    return rows, model


def _combinations(sig: pd.DataFrame | None, lead):
    """({trigger, lead, route}, rows) per set of signals; without signals, one per lead."""
    if sig is not None:
        keys = signal_keys(sig)
        for values, rows in sig.groupby(keys, sort=True):
            key = {"trigger": str(values[0]), "lead": int(values[1]), ROUTE: None}
            if len(keys) == 3:
                key[ROUTE] = str(values[2])
            yield key, rows
        return
    leads = [None] if lead is None else (list(lead) if isinstance(lead, (list, tuple)) else [lead])
    for lead_months in leads:
        yield {"trigger": None, "lead": None if lead_months is None else int(lead_months),
               ROUTE: None}, None


def _group_table(rows, forecasts, labels: pd.Series, order: list[str]):
    """Per-group metrics (index: group, in ``order``) and the same metrics over all rows."""
    empty_signals = pd.DataFrame(columns=["area", "event", "probability", "signal"])
    empty_scored = pd.DataFrame(columns=["area", "actual", "point", "scale"])
    signals, whole = signal_table(empty_signals if rows is None else rows, labels, order)
    mase, whole_mase = mase_table(empty_scored if forecasts is None else forecasts, labels, order)
    table = signals.join(mase)
    areas = pd.Series(sorted(_areas(rows, forecasts)), dtype=object).map(labels).value_counts()
    table.insert(0, "n_areas", areas.reindex(order, fill_value=0).to_numpy(dtype="int64"))
    if rows is None:
        whole = {}
    return table, {**whole, **(whole_mase if forecasts is not None else {})}


def _areas(rows, forecasts) -> set[str]:
    """Areas with data: an observed event, or a scored forecast."""
    areas = set() if rows is None else set(rows.loc[assessed(rows), "area"])
    return areas | (set() if forecasts is None else set(forecasts["area"]))


def _n_areas(rows, forecasts) -> int:
    return len(_areas(rows, forecasts))


def _outcomes(rows: pd.DataFrame, labels: pd.Series):
    judged = rows[assessed(rows)]
    return (judged["event"].to_numpy(), judged["signal"].to_numpy(),
            judged["area"].map(labels).to_numpy())


def _where(row: pd.Series) -> str:
    if pd.isna(row["trigger"]):
        return "" if pd.isna(row["lead"]) else f" (horizons 1-{int(row['lead'])})"
    route = "" if pd.isna(row[ROUTE]) else f", route {row[ROUTE]!r}"
    return f" (trigger {row['trigger']!r}, lead {int(row['lead'])}{route})"


def _failure_line(row: pd.Series, policy: Policy) -> str:
    limit = policy.limit(row["metric"])
    breaches = []
    if limit.max_difference is not None and row["difference"] > limit.max_difference + 1e-12:
        breaches.append(f"difference {row['difference']:.2f} > limit {limit.max_difference:g}")
    if limit.min_ratio is not None and not row["ratio"] >= limit.min_ratio - 1e-12:
        breaches.append(f"ratio {row['ratio']:.2f} < limit {limit.min_ratio:g}")
    what = str(row["measured"]).replace("_", " ")
    return (f"{row['metric']} by {row['group_column']}{_where(row)}: worst group "
            f"{row['worst_group']!r} {what} {row['worst_value']:.2f} vs best group "
            f"{row['best_group']!r} {row['best_value']:.2f}; " + ", ".join(breaches))
