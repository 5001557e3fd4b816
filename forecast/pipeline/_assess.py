"""Trigger evaluation plus fairness: what ``forecast backtest --triggers`` and ``make demo`` add.

One function, used by the CLI and the demo alike: evaluate the triggers on a backtest, judge
every route's signals against the fairness policy, and optionally measure group-aware
thresholds.
"""

from __future__ import annotations

from pathlib import Path

from forecast.errors import ForecastError

__all__ = ["assess"]


def assess(result, cube, triggers, routes=None, k: int = 5, policy=None, progress=None, mitigate=None):
    """Trigger evaluation, fairness reports (one per route) and, with ``mitigate`` (a group
    column), the trade-off of group-aware thresholds: what ``backtest --triggers`` adds.

    ``triggers``: a trigger YAML path or a list of TriggerSpec; ``policy``: a Policy, a path
    or None (ethics/policy.yaml).
    """
    from forecast.fairness import (Policy, area_groups, fairness_report, group_thresholds, load_policy,
                                   mitigation_tradeoff)
    from forecast.triggers import DEFAULT_ROUTES, evaluate_triggers, load_triggers

    if isinstance(triggers, str | Path):
        triggers = load_triggers(triggers)
    evaluation = evaluate_triggers(result, cube, triggers, routes=routes or DEFAULT_ROUTES, k=k, progress=progress)
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    groups = area_groups(cube)
    signals = evaluation.signals
    judged = signals[signals["probability"].notna()]  # an area without a threshold has no signal to judge
    fairness = {route: fairness_report(judged[judged["route"] == route], result.scored, groups,
                                       policy=policy, model=evaluation.model)
                for route in signals["route"].unique()}
    tradeoff = None
    if mitigate:
        if mitigate not in groups.columns:
            raise ForecastError(f"--mitigate {mitigate!r}: no such group column; the cube gives "
                                f"{', '.join(groups.columns)}")
        mitigated = group_thresholds(judged, groups, mitigate)
        tradeoff = mitigation_tradeoff(mitigated, policy=policy)
        tradeoff.insert(0, "group_column", mitigate)
        scored = mitigated[mitigated["role"] == "scored"].drop_duplicates(["trigger", "lead", "route", "origin"])
        done = scored["mitigation"].str.startswith("group thresholds")
        reasons = scored.loc[~done, "mitigation"].value_counts()
        tradeoff.attrs["note"] = (f"group thresholds fitted at {int(done.sum())} of {len(scored)} scored "
                                  "origin x lead x route; " + (f"elsewhere {reasons.index[0]}" if len(reasons) else "everywhere"))
    return evaluation, fairness, tradeoff
