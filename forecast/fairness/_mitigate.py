"""Group-aware trigger thresholds (fairlearn's ThresholdOptimizer), fitted on past outcomes only.

At each origin ``o`` the optimizer sees only rows whose outcome was known at ``o``: rows with
``origin + lead <= o`` (their whole window, months ``origin + 1 .. origin + lead``, lies at or
before ``o``) and an observed event. It then sets the activations of the rows issued at ``o``.
Nothing after ``o`` — no later event, probability or activation — can change them.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from forecast.errors import ForecastError
from forecast.fairness._inputs import (
    ROUTE,
    assessed,
    check_groups,
    check_signals,
    group_labels,
    month_index,
    signal_keys,
)
from forecast.fairness._metrics import (
    false_alarm_ratio,
    false_positive_rate,
    hit_rate,
    judge,
    selection_rate,
    signal_table,
)
from forecast.policy import Policy, load_policy

__all__ = ["group_thresholds", "mitigation_tradeoff"]

CONSTRAINTS = ("true_positive_rate_parity", "false_negative_rate_parity", "false_positive_rate_parity",
               "true_negative_rate_parity", "selection_rate_parity", "demographic_parity",
               "equalized_odds")
MITIGATED = "signal_mitigated"
NOTE = "mitigation"
GROUP = "group"


class _Probability(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose positive-class probability is the first column of X, unchanged.

    Lets ThresholdOptimizer (``prefit=True``) choose thresholds on the trigger layer's
    calibrated probabilities without refitting anything.
    """

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(X, dtype=float)[:, 0]
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def __sklearn_is_fitted__(self) -> bool:
        return True


def group_thresholds(
    signals: pd.DataFrame,
    groups: pd.DataFrame,
    column: str,
    *,
    constraint: str = "true_positive_rate_parity",
    objective: str = "balanced_accuracy_score",
    min_history: int = 100,
    random_state: int = 0,
    grid_size: int = 1000,
) -> pd.DataFrame:
    """Signals with group-aware activations, each origin's thresholds fitted on its past only.

    For every trigger x lead (x route) and every origin ``o``, fairlearn's
    :class:`~fairlearn.postprocessing.ThresholdOptimizer` (``prefit=True`` over the
    calibrated probability) chooses one threshold per group of ``groups[column]`` that
    maximises ``objective`` subject to ``constraint``, on the rows whose outcome was known at
    ``o`` (``origin + lead <= o``, event observed); it then decides the rows issued at ``o``.
    Where that history holds fewer than ``min_history`` rows, or a group without both events
    and non-events, the origin keeps the unmitigated signal and ``mitigation`` says why.

    The optimizer may randomise between two thresholds for a group; the draw is seeded from
    ``random_state``, the set of signals (trigger, lead, route) and the origin, so results
    are reproducible and an origin's draw does not depend on any other origin. Rows without
    a probability keep their signal.

    Parameters
    ----------
    signals : DataFrame
        The trigger layer's signals (``trigger, lead, origin, area, probability, signal,
        event``, optionally ``route``). Every origin is mitigated, calibration origins too:
        they are the history later origins learn from.
    groups : DataFrame
        Indexed by area P-code (:func:`forecast.fairness.area_groups`).
    column : str
        The group column whose groups get their own thresholds.
    constraint : str, default "true_positive_rate_parity"
        A ThresholdOptimizer constraint; equal hit rates across groups by default.
    objective : str, default "balanced_accuracy_score"
        Balanced accuracy rather than accuracy: with rare events, accuracy is maximised by
        never activating.
    min_history : int, default 100
        Known outcomes needed at an origin before thresholds are fitted.
    random_state : int, default 0
    grid_size : int, default 1000
        Passed to ThresholdOptimizer.

    Returns
    -------
    DataFrame
        A copy of the (validated) signals with ``group`` (the row's label in ``column``),
        ``signal_mitigated`` (bool) and ``mitigation`` (what was done at the row's origin).

    Raises
    ------
    ForecastError
        Bad signals or groups, an unknown constraint, or ``min_history`` below 1.
    """
    if constraint not in CONSTRAINTS:
        raise ForecastError(f"constraint must be one of {list(CONSTRAINTS)}, got {constraint!r}")
    if isinstance(min_history, bool) or not isinstance(min_history, (int, np.integer)) or min_history < 1:
        raise ForecastError(f"min_history must be a positive number of known outcomes, got {min_history!r}")
    frame = check_signals(signals)
    check_groups(groups, sorted(set(frame["area"])), [column])
    frame[GROUP] = frame["area"].map(group_labels(groups, column)).to_numpy()
    frame[MITIGATED] = frame["signal"].to_numpy()
    frame[NOTE] = ""
    month = month_index(frame["origin"])
    optimizer = ThresholdOptimizer(estimator=_Probability(), constraints=constraint,
                                   objective=objective, grid_size=grid_size, prefit=True,
                                   predict_method="predict_proba")
    has_probability = frame["probability"].notna().to_numpy()
    for key, rows in frame.groupby(signal_keys(frame), sort=True):
        lead = int(key[1])
        position = frame.index.get_indexer(rows.index)
        rows_month = month[position]
        for origin_month in np.unique(rows_month):
            now = position[(rows_month == origin_month) & has_probability[position]]
            if not len(now):
                continue
            history = position[assessed(rows) & (rows_month + lead <= origin_month)]
            decided, note = _decide(frame, now, history, optimizer, min_history,
                                    _seed(random_state, "/".join(map(str, key)), int(origin_month)))
            if decided is not None:
                frame.iloc[now, frame.columns.get_loc(MITIGATED)] = decided
            frame.iloc[now, frame.columns.get_loc(NOTE)] = note
    frame.loc[~has_probability, NOTE] = "unmitigated: no probability for this row"
    frame[MITIGATED] = frame[MITIGATED].astype(bool)
    return frame


def _decide(frame, now, history, optimizer, min_history, seed):
    """Mitigated activations for rows ``now`` from rows ``history``, or (None, why not)."""
    if len(history) < min_history:
        return None, (f"unmitigated: {len(history)} outcome(s) known at this origin < "
                      f"min_history {min_history}")
    past = frame.iloc[history].sort_values(["origin", "area"])
    classes = past.groupby(GROUP)["event"].agg(["min", "max"])
    one_class = classes.index[classes["min"] == classes["max"]].tolist()
    unseen = sorted(set(frame[GROUP].iloc[now]) - set(classes.index))
    if one_class or unseen:
        problems = ([f"group(s) {one_class} have only events or only non-events in the known "
                     "history"] if one_class else []) + (
            [f"group(s) {unseen} have no known outcome yet"] if unseen else [])
        return None, "unmitigated: " + "; ".join(problems)
    optimizer.fit(past[["probability"]], past["event"].astype(int), sensitive_features=past[GROUP])
    current = frame.iloc[now]
    order = np.argsort(current["area"].to_numpy(), kind="stable")  # the draw follows area order
    decided = np.empty(len(now), dtype=bool)
    decided[order] = optimizer.predict(current[["probability"]].iloc[order],
                                       sensitive_features=current[GROUP].iloc[order],
                                       random_state=np.random.RandomState(seed)).astype(bool)
    return decided, f"group thresholds fitted on {len(past)} outcome(s) known at this origin"


def _seed(random_state: int, signals: str, origin_month: int) -> int:
    """A seed of its own for every set of signals and origin (crc32: str hashes vary by process)."""
    sequence = np.random.SeedSequence([int(random_state), zlib.crc32(signals.encode()), origin_month])
    return int(sequence.generate_state(1)[0])


def mitigation_tradeoff(signals: pd.DataFrame, *, policy: Policy | None = None) -> pd.DataFrame:
    """Overall skill and between-group disparity before and after :func:`group_thresholds`.

    Over rows with an observed event and a probability, on the scored origins when the
    signals have a ``role`` column, per trigger x lead (x route): hit rate, false-alarm ratio,
    precision, F1, selection rate and the Peirce skill score (hit rate minus false-positive
    rate: a skill score of yes/no decisions, where the Brier score would need
    probabilities), then the between-group difference of hit rate, false-alarm ratio,
    selection rate and equalized odds over the groups the policy finds large enough (NaN
    when fewer than two are).

    Parameters
    ----------
    signals : DataFrame
        The output of :func:`group_thresholds` (``signal``, ``signal_mitigated``, ``group``).
    policy : Policy, optional
        Minimum group sizes for the disparities; default :func:`forecast.fairness.load_policy` ().

    Returns
    -------
    DataFrame
        ``trigger, lead, [route,] kind ("skill" or "disparity"), metric, before, after, change``, plus
        ``n_rows`` assessed and ``n_changed`` activations changed by the mitigation.
    """
    missing = [c for c in (MITIGATED, GROUP) if c not in signals.columns]
    if missing:
        raise ForecastError(f"the signals lack {missing}; pass the output of "
                            "forecast.fairness.group_thresholds")
    policy = policy or load_policy()
    frame = check_signals(signals)
    if frame[MITIGATED].isna().any() or not frame[MITIGATED].isin([True, False]).all():
        raise ForecastError(f"column {MITIGATED!r} must hold True or False in every row; pass the "
                            "output of forecast.fairness.group_thresholds unchanged")
    frame[MITIGATED] = frame[MITIGATED].astype(bool)
    frame[GROUP] = frame[GROUP].astype(str)
    if "role" in frame.columns:
        frame = frame[frame["role"] == "scored"]
    keys = signal_keys(frame)
    records = []
    for key, rows in frame.groupby(keys, sort=True):
        judged = rows[assessed(rows)]
        before = _skill(judged, "signal") | _disparity(rows, "signal", policy)
        after = _skill(judged, MITIGATED) | _disparity(rows, MITIGATED, policy)
        changed = int((judged["signal"] != judged[MITIGATED]).sum())
        names = {"trigger": key[0], "lead": int(key[1]), **({ROUTE: key[2]} if ROUTE in keys else {})}
        for metric in before:
            kind = "disparity" if metric.endswith("_difference") else "skill"
            records.append({**names, "kind": kind, "metric": metric,
                            "before": before[metric], "after": after[metric],
                            "change": after[metric] - before[metric],
                            "n_rows": len(judged), "n_changed": changed})
    return pd.DataFrame(records)


def _skill(rows: pd.DataFrame, signal: str) -> dict[str, float]:
    y, s = rows["event"].to_numpy().astype(int), rows[signal].to_numpy().astype(int)
    hits, far = hit_rate(y, s), false_alarm_ratio(y, s)
    precision = 1.0 - far
    f1 = (2 * precision * hits / (precision + hits)
          if np.isfinite(precision) and np.isfinite(hits) and precision + hits > 0 else np.nan)
    return {"hit_rate": hits, "false_alarm_ratio": far, "precision": precision, "f1": f1,
            "selection_rate": selection_rate(y, s),
            "peirce_skill": hits - false_positive_rate(y, s)}


def _disparity(rows: pd.DataFrame, signal: str, policy: Policy) -> dict[str, float]:
    labels = rows.groupby("area")[GROUP].first()
    order = sorted(set(labels))
    table, _ = signal_table(rows, labels, order, signal=signal)
    judged = rows[assessed(rows)]
    areas = judged.groupby(GROUP)["area"].nunique()
    table.insert(0, "n_areas", areas.reindex(order, fill_value=0).to_numpy(dtype="int64"))
    table["n_scored"] = 0
    outcomes = (judged["event"].to_numpy(), judged[signal].to_numpy(), judged[GROUP].to_numpy())
    return {f"{metric}_difference": judge(table, metric, policy, outcomes)["difference"]
            for metric in ("hit_rate", "false_alarm_ratio", "selection_rate", "equalized_odds")}
