"""Who is left behind: forecast skill and trigger performance per group of areas.

Groups of areas come from the cube's area coordinates (region, access, settlement,
population bins ...); fairlearn's ``MetricFrame`` measures each group; the gaps between
groups large enough to judge are compared with the limits in ``ethics/policy.yaml``::

    from forecast.fairness import area_groups, fairness_report
    report = fairness_report(signals, result.scored, area_groups(cube), model="lightgbm")
    report.passed, report.failures, report.by_group
    report.plot("hit_rate", trigger="surge", lead=3)

An optional mitigation sets group-aware thresholds from past outcomes only::

    mitigated = group_thresholds(signals, area_groups(cube), "region")
    mitigation_tradeoff(mitigated)
"""

from forecast.fairness._groups import area_groups
from forecast.fairness._metrics import limit_text
from forecast.fairness._mitigate import group_thresholds, mitigation_tradeoff
from forecast.policy import MetricLimit, Minimums, Policy, load_policy
from forecast.fairness._report import FairnessReport, fairness_report

__all__ = [
    # groups of areas
    "area_groups",
    # the report
    "fairness_report", "FairnessReport", "limit_text",
    # the policy
    "load_policy", "Policy", "MetricLimit", "Minimums",
    # mitigation
    "group_thresholds", "mitigation_tradeoff",
]
