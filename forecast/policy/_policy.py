"""The fairness policy: per-metric disparity limits and the sizes below which a group is not judged.

The policy lives once, in ``ethics/policy.yaml`` at the root of the repository (shipped in the
wheel, found by :func:`forecast.policy.ethics_file`). :func:`load_policy` reads it, or a user's
own file, into a frozen :class:`Policy` that rejects unknown keys, naming the file and the
field at fault.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from forecast._names import ARRIVALS, SENSITIVITY_LEVELS, TARGET_KINDS, target_kind
from forecast.errors import ForecastError
from forecast.policy._files import ethics_file, published_name

__all__ = ["Policy", "MetricLimit", "Minimums", "ReleaseChecks", "ReviewRules", "Signatures", "SkillCheck",
           "SKILL_REFERENCES", "load_policy", "default_policy_path"]

#: Metrics compared between groups, in report order.
METRICS = ("mase", "hit_rate", "false_alarm_ratio", "selection_rate", "equalized_odds")


class MetricLimit(BaseModel):
    """Allowed disparity of one metric between groups.

    A metric is checked against at least one limit, or says it is not checked: ``checked:
    false`` with its ``rationale``. There is no silent "not checked": a limit left out or set
    to null once switched a fairness check off unseen, so :func:`load_policy` refuses a null
    limit and a metric without one.

    Attributes
    ----------
    max_difference : float or None
        Largest allowed ``max - min`` over the judged groups; None = not a criterion.
    min_ratio : float or None
        Smallest allowed ``min / max`` over the judged groups, in (0, 1]; None = not a criterion.
    checked : bool
        False only for a metric that is reported but not judged (then no limit is given).
    rationale : str or None
        Why a metric is not checked (required with ``checked: false``). Words, not a value: left
        out of :meth:`Policy.hash`, like the file's comments.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_difference: float | None = Field(default=None, ge=0.0)
    min_ratio: float | None = Field(default=None, gt=0.0, le=1.0)
    checked: bool = True
    rationale: str | None = Field(default=None, min_length=10, exclude=True)

    @model_validator(mode="after")
    def _explicit(self) -> MetricLimit:
        limited = self.max_difference is not None or self.min_ratio is not None
        if self.checked and not limited:
            raise ValueError("no limit: give max_difference and/or min_ratio, or write `checked: false` with a "
                             "rationale (why the metric is reported but not judged)")
        if not self.checked and limited:
            raise ValueError("checked: false with a limit: remove the limit, or the line `checked: false`")
        if not self.checked and not self.rationale:
            raise ValueError("checked: false needs a rationale: why the metric is reported but not judged")
        return self


class Minimums(BaseModel):
    """Sizes below which a group is reported as too small to judge.

    Attributes
    ----------
    min_areas : int
        Areas with data in the group (every metric).
    min_events : int
        Real exceedances (hit rate); also non-events (equalized odds).
    min_alarms : int
        Activations (false-alarm ratio).
    min_rows : int
        Scored forecast rows (MASE) and assessed signal rows (selection rate).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_areas: int = Field(default=3, ge=1)
    min_events: int = Field(default=5, ge=1)
    min_alarms: int = Field(default=5, ge=1)
    min_rows: int = Field(default=30, ge=1)


class Metrics(BaseModel):
    """One :class:`MetricLimit` per metric the report compares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mase: MetricLimit = MetricLimit(min_ratio=0.5)
    hit_rate: MetricLimit = MetricLimit(max_difference=0.20)
    false_alarm_ratio: MetricLimit = MetricLimit(max_difference=0.25)
    selection_rate: MetricLimit = MetricLimit(checked=False, rationale="groups differ in how often shocks happen: equal activation rates are not a goal")
    equalized_odds: MetricLimit = MetricLimit(max_difference=0.25)


_RATIONALE = Field(min_length=10, description="one line: why this threshold")


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rationale: str = _RATIONALE


#: The baselines the release gate may measure skill against.
SKILL_REFERENCES = ("seasonal_naive", "naive")


class SkillCheck(_Check):
    """Skill against a baseline per horizon: ``1 - metric / metric of the reference``.

    ``reference`` names the baseline per target kind (``{"flow": "seasonal_naive", "stock":
    "naive"}``: a flow has a season, a stock is judged against its last round); a single name,
    the older form, applies to every kind. A mapping must name every kind.
    """

    reference: dict[Literal[TARGET_KINDS], Literal[SKILL_REFERENCES]]
    metric: Literal["mase", "crps", "rmsle"] = "mase"
    min_skill: dict[int, float]

    @field_validator("reference", mode="before")
    @classmethod
    def _one_for_every_kind(cls, value):
        if isinstance(value, str):
            if value not in SKILL_REFERENCES:
                raise ValueError(f"Input should be {' or '.join(map(repr, SKILL_REFERENCES))} (one baseline for "
                                 f"every target kind), or a mapping of {', '.join(TARGET_KINDS)} to one of them")
            return dict.fromkeys(TARGET_KINDS, value)
        unknown = [str(k) for k in value if k not in TARGET_KINDS] if isinstance(value, dict) else []
        if unknown:
            raise ValueError(f"unknown target kind(s) {', '.join(unknown)}; the kinds are {', '.join(TARGET_KINDS)}")
        return value

    @field_validator("reference", mode="after")
    @classmethod
    def _every_kind(cls, value: dict) -> dict:
        missing = [kind for kind in TARGET_KINDS if kind not in value]
        if missing:
            raise ValueError(f"reference must name a baseline for every target kind ({', '.join(TARGET_KINDS)}); "
                             f"missing: {', '.join(missing)}")
        return {kind: value[kind] for kind in TARGET_KINDS}

    def reference_for(self, target: str | None) -> str:
        """The baseline that skill of a model of ``target`` is measured against; a run that does
        not say its target (None or empty) is taken to forecast arrivals, a flow."""
        return self.reference[target_kind(target or ARRIVALS)]

    @model_validator(mode="after")
    def _horizons(self) -> SkillCheck:
        if not self.min_skill or any(h < 1 for h in self.min_skill):
            raise ValueError("min_skill needs at least one horizon (whole months >= 1)")
        return self


class Band(_Check):
    """A value that must lie in ``[low, high]``."""

    low: float = Field(ge=0.0)
    high: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _order(self) -> Band:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class CoverageCheck(Band):
    """Empirical coverage of the central ``interval`` % prediction interval."""

    interval: int = Field(gt=0, lt=100)


class LevelRatioCheck(Band):
    """Totals: ``metric`` (``mean_level_ratio``: the sum of the ``mean`` forecasts, what totals
    read; ``level_ratio``: the sum of the point forecasts) over the sum of outcomes, per horizon."""

    metric: Literal["mean_level_ratio", "level_ratio"]


class SmallCellCheck(_Check):
    """Observed counts from 1 to ``k - 1`` are withheld from anything published."""

    k: int = Field(ge=2)


class AdminLevelCheck(_Check):
    """The finest admin level a published output may have, per sensitivity level."""

    finest: dict[Literal[SENSITIVITY_LEVELS], int]

    @model_validator(mode="after")
    def _all_levels(self) -> AdminLevelCheck:
        missing = set(SENSITIVITY_LEVELS) - set(self.finest)
        if missing:
            raise ValueError(f"finest needs every sensitivity level; missing {sorted(missing)}")
        return self


class FairnessGate(_Check):
    """Which fairness disparities are release conditions: the route the model ranks areas with
    and the groupings (area attribute columns) judged; the others are reported, not gated."""

    route: str = Field(min_length=1)
    groups: list[str] = Field(min_length=1)


class ReleaseChecks(BaseModel):
    """Thresholds of the automated release checks; every one states its rationale.

    There are no defaults: a policy without a ``release`` section cannot release a model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    skill: SkillCheck
    coverage: CoverageCheck
    level_ratio: LevelRatioCheck
    small_cell: SmallCellCheck
    admin_level: AdminLevelCheck
    fairness: FairnessGate


class Approvals(_Check):
    """Valid approvals needed per reviewer role before a model may be released."""

    technical: int = Field(ge=1)
    ethics: int = Field(ge=1)


class Expiry(_Check):
    """Days after which a sign-off no longer counts."""

    days: int = Field(ge=1)


class Signatures(_Check):
    """Which sign-offs must be signed, and the key the keyring of reviewers starts with.

    ``required_for``: sensitivity levels (the train run's ``sensitivity`` tag) whose sign-offs
    count only when signed by a key of the keyring (:mod:`forecast.ethics._keyring`) declared
    under the reviewer's name with the role signed. ``keyring_root``: the key id of the
    keyring's first entry. It must be written (null until the keyring exists: then no policy is
    in force), so that a log rewritten from scratch under another root is refused.
    """

    required_for: list[Literal[SENSITIVITY_LEVELS]]
    keyring_root: str | None

    @field_validator("keyring_root")
    @classmethod
    def _key_id(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 16 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError("a key id is 16 lowercase hex digits, as `forecast review keyring list` prints it")
        return value

    def required(self, sensitivity: str | None) -> bool:
        """Whether sign-offs on data of ``sensitivity`` must be signed. Unknown (None) data is
        not required here: the gate refuses a run whose sensitivity it cannot read anyway."""
        return sensitivity in self.required_for


class ReviewRules(BaseModel):
    """Rules of the human review (``forecast review``); every one states its rationale.

    There are no defaults: a policy without a ``review`` section approves no model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvals: Approvals
    expiry: Expiry
    signatures: Signatures

    def needed(self) -> dict[str, int]:
        """Approvals needed per role, ``{"technical": 1, "ethics": 1}``."""
        return {"technical": self.approvals.technical, "ethics": self.approvals.ethics}

    @property
    def expire_days(self) -> int:
        return self.expiry.days


class Policy(BaseModel):
    """The fairness policy: disparity limits per metric and minimum group sizes.

    Load it with :func:`load_policy`; ``Policy()`` gives the documented defaults.

    Attributes
    ----------
    version : int
        Format version of the policy file (1).
    metrics : Metrics
        ``metrics.hit_rate``, ``metrics.mase``, ... each a :class:`MetricLimit`.
    minimums : Minimums
    release : ReleaseChecks or None
        Thresholds of the release gate's automated checks; None when the file has none (the
        gate then refuses: release thresholds have no defaults).
    review : ReviewRules or None
        Approvals needed per reviewer role and how long a sign-off holds; None when the file
        has none (then no review is approved: review rules have no defaults).
    source : str
        The file the policy was read from (``"defaults"`` when built in code).

    Examples
    --------
    >>> policy = Policy()
    >>> policy.limit("hit_rate").max_difference, policy.minimums.min_areas
    (0.2, 3)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, ge=1, le=1)
    metrics: Metrics = Metrics()
    minimums: Minimums = Minimums()
    release: ReleaseChecks | None = None
    review: ReviewRules | None = None
    _source: str = PrivateAttr(default="defaults")

    @property
    def source(self) -> str:
        """Where the policy was read from (a path on this machine, or ``defaults``)."""
        return self._source

    @property
    def label(self) -> str:
        """The policy as published files name it: ``ethics/policy.yaml (sha256 0123456789ab)``,
        its repository-relative name and hash, no folder of the machine that read it."""
        return f"{published_name(self._source)} (sha256 {self.hash()[:12]})"

    def limit(self, metric: str) -> MetricLimit:
        """The :class:`MetricLimit` of ``metric`` (one of ``mase, hit_rate, false_alarm_ratio,
        selection_rate, equalized_odds``)."""
        if metric not in METRICS:
            raise ForecastError(f"the policy has no limit for {metric!r}; metrics: {list(METRICS)}")
        return getattr(self.metrics, metric)

    def hash(self) -> str:
        """SHA-256 of the policy's values (not its comments), for model cards and audit logs."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()


def load_policy(path: str | Path | None = None) -> Policy:
    """Read a fairness policy from YAML.

    Parameters
    ----------
    path : str or Path, optional
        The policy file. Default: the shipped ``ethics/policy.yaml``
        (:func:`default_policy_path`).

    Returns
    -------
    Policy
        Frozen; ``policy.source`` names the file read.

    Raises
    ------
    ForecastError
        The file cannot be read, is not YAML, has a key the policy does not know, or a value
        out of range; the message names the file and each field at fault.

    Examples
    --------
    >>> load_policy().limit("mase").min_ratio
    0.5
    """
    if path is None:
        path = default_policy_path()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ForecastError(f"{path}: cannot read the fairness policy ({err.strerror or err}); "
                            "pass the path of a policy file, or None for the default") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ForecastError(f"{path}: the fairness policy is not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ForecastError(f"{path}: a fairness policy is a mapping with 'metrics' and "
                            f"'minimums'; got {type(data).__name__}")
    lines = _limit_problems(data)
    try:
        policy = Policy(**data)
    except ValidationError as err:
        lines += [f"  {_location(e['loc'])}: {_message(e)}" for e in err.errors()]
    if lines:
        raise ForecastError(
            f"{path}: invalid fairness policy\n" + "\n".join(lines)
            + f"\n  (known metrics: {', '.join(METRICS)}; limits: max_difference, min_ratio, or checked: false with a "
            "rationale; "
            f"minimums: {', '.join(Minimums.model_fields)})"
        )
    policy._source = str(path)
    return policy


def default_policy_path() -> Path:
    """The shipped ``ethics/policy.yaml``: the repository's one copy, also inside the wheel."""
    return ethics_file("policy.yaml")


def _limit_problems(data: dict) -> list[str]:
    """Every metric the file leaves out and every limit it sets to null: in code they would
    mean "not checked", a fairness check switched off without a word."""
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        return [] if "metrics" in data else [f"  metrics: missing: every metric ({', '.join(METRICS)}) needs its limit"]
    lines = [f"  metrics.{m}: missing: give its limit, or `checked: false` with a rationale" for m in METRICS
             if m not in metrics]
    for metric, limit in metrics.items():
        for key, value in (limit.items() if isinstance(limit, dict) else ()):
            if value is None:
                lines.append(f"  metrics.{metric}.{key}: null is not a limit (it would skip the check): give a "
                             "number, remove the key, or write `checked: false` with a rationale")
    return lines


def _location(loc: tuple) -> str:
    return ".".join(map(str, loc)) or "policy"


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (a typo? it would otherwise be silently ignored)"
    return f"{error['msg'].removeprefix('Value error, ')}, got {error.get('input')!r}"
