"""Trigger specifications: when does an area need anticipatory action?

Triggers are declared in YAML (``models/triggers.yaml``)::

    triggers:
      - name: surge
        kind: percentile        # absolute | percentile | population
        value: 95               # the area's own 95th percentile, history up to the origin
        floor: 1000             # ... but never below 1,000 arrivals in a month
        leads: [1, 3, 6]        # act if any month in the next 1 (3, 6) months crosses it
        probability: 0.5        # activate when P(crossing) >= 0.5
        region:                 # optional: also act per region when at least 3 of its
          min_areas: 3          # districts cross (signal) together
          by: region            # the cube's area coordinate naming each district's region

and loaded into frozen pydantic models that reject unknown keys with the file and field named.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from forecast.errors import ForecastError
from forecast.policy import shipped_file, shipped_names

__all__ = ["TriggerSpec", "RegionRule", "load_triggers", "region_rule", "REGION_COORDS"]

#: Where a district's region is read from when a :class:`RegionRule` names none: the first of
#: these area coordinates the cube has (as :func:`forecast.triggers.prioritize` reads it).
REGION_COORDS = ("region", "admin1_name", "admin1_pcode")


class RegionRule(BaseModel):
    """A geographic condition: a region crosses when at least ``min_areas`` of its districts do.

    Attributes
    ----------
    min_areas : int
        Districts of one region that must cross (for the outcome) or signal (for the
        activation) at the same origin; at least 1.
    by : str, optional
        The cube's area coordinate naming each district's region; default the first of
        ``region``, ``admin1_name``, ``admin1_pcode`` the cube has.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_areas: int
    by: str | None = None

    @field_validator("min_areas")
    @classmethod
    def _min_areas(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"min_areas is a number of districts, at least 1, got {v}")
        return v

    @field_validator("by")
    @classmethod
    def _by(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("by names an area coordinate of the cube (e.g. region, admin1_name); got an empty name")
        return v

    def describe(self) -> str:
        """The condition in words: ``act when at least 3 districts of one region signal together``."""
        districts = "district" if self.min_areas == 1 else "districts"
        where = f"one region ({self.by})" if self.by else "one region"
        return f"act when at least {self.min_areas} {districts} of {where} signal together"



class TriggerSpec(BaseModel):
    """One trigger: a threshold per area, a lead-time window and an activation probability.

    Attributes
    ----------
    name : str
    kind : {"absolute", "percentile", "population"}
        ``absolute``: ``value`` people in a month, in every area. ``percentile``: the area's
        own ``value``-th percentile of the target, from months up to the origin only.
        ``population``: ``value`` people per ``per`` residents, from the area coordinate
        named by ``population``.
    value : float
    floor : float
        The threshold is never below this (a percentile of a quiet area can be a handful of
        people, which is not a humanitarian trigger).
    per : int
        Residents per ``value`` for population triggers (default 1,000).
    population : str
        The cube's area coordinate holding population.
    min_history : int
        Percentile triggers: months observed up to the origin before an area has a threshold.
    target : str
    leads : list of int
        Lead-time windows in months: lead 3 means "any of the next 3 months".
    probability : float
        Activate when the probability of crossing within the lead time is at least this.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["absolute", "percentile", "population"]
    value: float
    floor: float = 0.0
    per: int = 1000
    population: str = "population"
    min_history: int = 12
    target: str = "arrivals"
    leads: list[int] = [1, 3]
    probability: float = 0.5
    description: str = ""
    region: RegionRule | None = None

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, v):
        if v is not None and not isinstance(v, dict | RegionRule):
            raise ValueError(f"region must be a mapping such as {{min_areas: 3, by: region}}, got {v!r}")
        return v

    @field_validator("leads")
    @classmethod
    def _leads(cls, v: list[int]) -> list[int]:
        if not v or any(h < 1 or h > 24 for h in v) or len(set(v)) != len(v):
            raise ValueError(f"leads must be distinct whole months between 1 and 24, got {v}")
        return sorted(v)

    @field_validator("probability")
    @classmethod
    def _probability(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"probability must be strictly between 0 and 1, got {v}")
        return v

    @model_validator(mode="after")
    def _value(self) -> TriggerSpec:
        if self.kind == "percentile" and not 0 < self.value < 100:
            raise ValueError(f"a percentile trigger needs 0 < value < 100, got {self.value}")
        if self.value <= 0 and self.kind != "percentile":
            raise ValueError(f"value must be positive, got {self.value}")
        if self.floor < 0 or self.min_history < 1 or self.per < 1:
            raise ValueError("floor must be >= 0, min_history and per >= 1")
        return self

    def describe(self) -> str:
        """The trigger in words, as a report prints it."""
        if self.kind == "absolute":
            rule = f">= {self.value:,.0f} {self.target} in a month"
        elif self.kind == "percentile":
            rule = f"at or above the area's own {self.value:g}th percentile of monthly {self.target}"
        else:
            rule = f">= {self.value:g} {self.target} per {self.per:,} residents in a month"
        if self.floor:
            rule += f" (at least {self.floor:,.0f})"
        regional = region_rule(self)
        if regional is not None:
            rule += f"; per region: {regional.describe()}"
        return rule

    def hash(self) -> str:
        data = self.model_dump()
        if data.get("region") is None:  # a trigger without the condition keeps the hash it always had
            data.pop("region", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def region_rule(trigger: TriggerSpec) -> RegionRule | None:
    """The trigger's geographic condition, or None (also for a trigger pickled in a trained model
    before the field existed, which has no ``region`` attribute)."""
    return getattr(trigger, "region", None)


def load_triggers(path: str | Path) -> list[TriggerSpec]:
    """Read triggers from YAML: a ``triggers:`` list (or one mapping for a single trigger).

    ``path`` is a user's own file, or ``"default"`` (also ``"triggers"``): the toolkit's shipped
    ``models/triggers.yaml``, found the same way in a checkout and in an installed toolkit.

    Raises
    ------
    ForecastError
        Naming the file, the trigger and the field when anything is wrong.
    """
    path = shipped_file(path, kind="trigger file", aliases={"default": "triggers"},
                        exclude=tuple(n for n in shipped_names() if n != "triggers"))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ForecastError(f"{path}: cannot read the trigger file ({err.strerror})") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ForecastError(f"{path}: not valid YAML ({err})") from None
    items = raw.get("triggers") if isinstance(raw, dict) and "triggers" in raw else raw
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise ForecastError(f"{path}: expected a 'triggers:' list of triggers (name, kind, value, ...)")
    triggers = []
    for i, item in enumerate(items):
        label = item.get("name", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
        if not isinstance(item, dict):
            raise ForecastError(f"{path}: trigger {label} must be a mapping, got {type(item).__name__}")
        try:
            triggers.append(TriggerSpec(**item))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'trigger'}: {e['msg']}" for e in err.errors())
            raise ForecastError(f"{path}: trigger {label!r}: {problems}") from None
    names = [t.name for t in triggers]
    if len(set(names)) != len(names):
        raise ForecastError(f"{path}: trigger names repeat: {names}")
    return triggers
