"""Value rules for area-month tables: implausible values are withheld, each with its reason.

A covariate table carries many variables per row (rainfall, vegetation, prices, ...). One
implausible price should not cost the row its rainfall, so a rule withholds the *value*
(the cell becomes missing) and keeps the row; every withheld value is recorded with its file,
row, field and reason (``withheld.csv``, and counts in the manifest), as quarantined rows are.

Rules are declared per variable (the cube's name for it) in YAML::

    rules:
      ndvi: {min: 0, why: "a district's mean vegetation index is not negative"}
      sorghum_price: {positive: true, jump: 10}

``min`` / ``max`` bound the value; ``positive`` refuses 0 and below; ``jump: k`` withholds a
value more than k times above, or k times below, the median of the same area's previous
``window`` recorded values (at least 3). The jump rule looks only at earlier months of the
same area, so cleaning never reads the future of the series it cleans.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forecast._names import AREA, TIME
from forecast.errors import UnusableFileError

__all__ = ["ValueRule", "load_rules"]


class ValueRule(BaseModel):
    """What a plausible value of one variable is.

    Attributes
    ----------
    min, max : float, optional
        Values below ``min`` or above ``max`` are withheld.
    positive : bool
        Withhold 0 and negative values (a price of 0 is a missing price, not a free market).
    jump : float, optional
        Withhold a value more than ``jump`` times above or below the median of the same area's
        previous ``window`` recorded values (needs at least 3 of them).
    window : int
        Earlier values the jump rule compares with (default 12).
    why : str, optional
        The reason written beside each withheld value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    positive: bool = False
    jump: float | None = Field(default=None, gt=1)
    window: int = Field(default=12, ge=3)
    why: str | None = None

    @model_validator(mode="after")
    def _something(self) -> ValueRule:
        if self.min is None and self.max is None and not self.positive and self.jump is None:
            raise ValueError("a rule needs at least one of min, max, positive, jump")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def check(self, frame: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Series]:
        """Which values of ``frame[column]`` break the rule, and why (one reason per row).

        ``frame`` has the area and month of each row (``area``, ``time``).
        """
        x = frame[column].to_numpy(dtype=float)
        seen = ~np.isnan(x)
        reasons = pd.Series("", index=frame.index, dtype=object)
        suffix = f" ({self.why})" if self.why else ""
        checks = []
        if self.positive:
            checks.append((seen & (x <= 0), "value withheld: not positive"))
        if self.min is not None:
            checks.append((seen & (x < self.min), f"value withheld: below the plausible minimum {self.min:g}"))
        if self.max is not None:
            checks.append((seen & (x > self.max), f"value withheld: above the plausible maximum {self.max:g}"))
        if self.jump is not None:
            ratio = x / _earlier_median(frame, column, self.window)
            jumped = seen & ((ratio > self.jump) | (ratio < 1 / self.jump))
            checks.append((jumped, f"value withheld: more than {self.jump:g} times off the median of the "
                                   f"area's previous {self.window} values"))
        bad = np.zeros(len(frame), dtype=bool)
        for mask, reason in checks:
            new = mask & ~bad
            reasons[new] = reason + suffix
            bad |= mask
        return bad, reasons


def _earlier_median(frame: pd.DataFrame, column: str, window: int) -> np.ndarray:
    """Per row, the median of the same area's previous ``window`` recorded values (NaN with fewer than 3)."""
    order = frame.sort_values([AREA, TIME], kind="stable")
    values = order[column].where(order[column] > 0)  # a zero price is no reference
    # per area: at each recorded value, the median of the recorded values before it (never itself)
    earlier = values.groupby(order[AREA], sort=False).transform(
        lambda s: s.dropna().shift(1).rolling(window, min_periods=3).median().reindex(s.index))
    return earlier.reindex(frame.index).to_numpy(dtype=float)


def load_rules(rules: str | Path | Mapping | None) -> dict[str, ValueRule]:
    """Read value rules from YAML (``rules: {variable: {...}}``) or a mapping; None: no rules."""
    if rules is None:
        return {}
    source = rules
    if isinstance(rules, (str, Path)):
        path = Path(rules)
        if not path.is_file():
            raise UnusableFileError(path, "no such rules file")
        try:
            rules = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, RecursionError) as error:
            raise UnusableFileError(path, f"not valid YAML: {error}") from None
        if not isinstance(rules, Mapping) or not isinstance(rules.get("rules"), Mapping):
            raise UnusableFileError(path, "expected a mapping 'rules:' of variable -> rule")
        rules = rules["rules"]
    out = {}
    for name, rule in rules.items():
        if isinstance(rule, ValueRule):
            out[str(name)] = rule
            continue
        try:
            out[str(name)] = ValueRule.model_validate(rule)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg']}" for e in error.errors())
            raise UnusableFileError(Path(str(source)) if not isinstance(source, Mapping) else Path("<rules>"),
                                    f"rule for {name!r}: {problems}") from error
    return out
