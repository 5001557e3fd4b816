"""The release policy: one file (``ethics/policy.yaml``), one reader, one publication rule.

The policy holds the fairness limits and minimum group sizes, the thresholds of the release
gate's automated checks, the review rules, and the publication rule (small cells, finest admin
level per sensitivity). Tracking, the report, the model card and the gate all read it here::

    from forecast.policy import load_policy, suppress_small_cells, admin_level_allowed
    policy = load_policy()                      # ethics/policy.yaml, or a path
    policy.limit("hit_rate").max_difference
    admin_level_allowed(2, "high", policy)      # False: the policy publishes admin1 at high
"""

from forecast.policy._files import ethics_file, ethics_folder, models_folder, published_name, shipped_file, shipped_names
from forecast.policy._policy import (
    METRICS,
    MetricLimit,
    Minimums,
    Policy,
    ReleaseChecks,
    ReviewRules,
    Signatures,
    load_policy,
)
from forecast.policy._publication import (
    COUNT_COLUMNS,
    admin_level_allowed,
    count_small_cells,
    finest_admin_level,
    manifest_sensitivity,
    people_columns,
    publishable,
    release_checks,
    small_cell_k,
    suppress_small_cells,
)

__all__ = [
    # the policy file
    "load_policy", "Policy", "MetricLimit", "Minimums", "ReleaseChecks", "ReviewRules", "Signatures", "METRICS",
    # the publication rule
    "release_checks", "small_cell_k", "suppress_small_cells", "count_small_cells",
    "people_columns", "publishable", "COUNT_COLUMNS", "manifest_sensitivity", "admin_level_allowed",
    "finest_admin_level",
    # where the shipped configuration lives
    "ethics_folder", "ethics_file", "published_name", "models_folder", "shipped_file", "shipped_names",
]
