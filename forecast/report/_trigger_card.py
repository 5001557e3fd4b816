"""The trigger card: what a trigger is, how it did in the backtest, and where each district stands.

It follows the trigger reports of OCHA's Centre for Humanitarian Data: the trigger's definition;
per lead, from the backtest behind the model, how often it would have activated (and its return
period), how often it was right (hit rate, false-alarm ratio, precision@k) and the share of
crossings it caught in time, each quantity defined on the card in plain words with the number of
scored origins and years it rests on; the expected yearly cost when a cost per activation is
given; "ready / set / go" per district (signals at leads 6, 3 and 1 from the cube's last month);
the geographic condition (act when N districts of one region cross) when the trigger has one;
and the release status, with "NOT RELEASED" across the top of an unreleased model's card.

Everything here is a function of plain inputs (the :class:`~forecast.ethics.Evidence`, the
trigger, the prioritized tables, the cube); :func:`forecast.pipeline.build_trigger_card` reads
them by run id. No path of the machine that made the card is printed: the data and the policy
are named by file name and hash, runs by id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from forecast._names import AREA, AREA_NAME, TIME
from forecast.cube import cube_hash
from forecast.errors import ForecastError
from forecast.ethics import NOT_RELEASED, Evidence, ReleaseStatus
from forecast.triggers import TriggerSpec, area_regions, caught_table, region_rule

__all__ = ["TriggerCard", "assemble_trigger_card", "STAGES", "CARD_ROUTE"]

#: "Ready / set / go": the stage and the lead (months) whose signal it shows.
STAGES = (("ready", 6), ("set", 3), ("go", 1))
#: The route the card reports: probabilities read off the model's calibrated quantiles.
CARD_ROUTE = "forecast"
TEMPLATES = Path(__file__).resolve().parent / "templates"
_KIND_WORDS = {
    "absolute": "the same number of {target} in a month in every district",
    "percentile": ("each district's own {value:g}th percentile of monthly {target}, computed from the months up "
                   "to the forecast origin only (a district needs {min_history} months of history)"),
    "population": "{value:g} {target} per {per:,} residents in a month (population from the cube's '{population}')",
}


@dataclass(frozen=True)
class TriggerCard:
    """Everything a trigger card shows, as data; :meth:`to_html` and :meth:`to_markdown` render it.

    Attributes
    ----------
    meta : dict
        Runs, model, data and policy (by file name and hash), the data's last month, when the
        card was made, the release label and watermark (None when released).
    definition : dict
        The trigger: name, rule in words, description, kind, leads, activation probability,
        geographic condition.
    backtest : list of dict
        Per lead the card shows: scored origins, years, districts, activations (per year and per
        district-year), return period, hit rate, false-alarm ratio, precision@k, crossings caught,
        and the expected yearly cost when a cost per activation was given.
    stages : list of dict
        Ready, set and go: the lead, whether the trigger has it, how many districts signal.
    districts : list of dict
        Per district: its signal (or status) at each stage, most urgent first.
    regional : dict or None
        The geographic condition: its backtest scores and, per region, the districts signalling
        now at each stage; None for a trigger without one.
    cost_per_activation : float or None
    k : int
        The ``k`` of precision@k in the backtest.
    """

    meta: dict
    definition: dict
    backtest: list
    stages: list
    districts: list
    regional: dict | None = None
    cost_per_activation: float | None = None
    k: int = 5

    @property
    def released(self) -> bool:
        return self.meta["watermark"] is None

    def to_html(self) -> str:
        """One self-contained HTML page (inline styles, every value escaped)."""
        return _environment().get_template("trigger_card.html.j2").render(c=self, m=self.meta, d=self.definition)

    def to_markdown(self) -> str:
        return _environment().get_template("trigger_card.md.j2").render(c=self, m=self.meta, d=self.definition)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``trigger_card.html`` and ``trigger_card.md`` into ``folder``; their paths by format."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"html": folder / "trigger_card.html", "markdown": folder / "trigger_card.md"}
        paths["html"].write_text(self.to_html(), encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        return paths


def assemble_trigger_card(evidence: Evidence, trigger: TriggerSpec, rankings: dict[int, pd.DataFrame], cube, *,
                          status: ReleaseStatus, policy, data_name: str = "", leads=None,
                          cost_per_activation: float | None = None) -> TriggerCard:
    """The trigger card of a train run, from plain inputs (no tracking store involved).

    Parameters
    ----------
    evidence : Evidence
        The train run and the backtest behind it, with the backtest's ``triggers/metrics.csv``,
        ``triggers/signals.parquet`` and (for a geographic condition) ``triggers/regional.csv``.
    trigger : TriggerSpec
        One of the model's triggers; the backtest must have evaluated the same definition.
    rankings : dict of int to DataFrame
        :func:`forecast.triggers.prioritize` output (``TrainedModel.prioritize``) from the
        cube's last month at each of the trigger's leads among 6, 3 and 1.
    cube : xarray.Dataset
        The data the rankings forecast from (its last month, hash and regions).
    status : ReleaseStatus
    policy : Policy
        Named on the card by file name and hash.
    data_name : str
        The cube's file name (no folder); empty: "the cube given".
    leads : sequence of int, optional
        The trigger's leads to show from the backtest (default: all of them).
    cost_per_activation : float, optional
        Adds the expected yearly cost: activations per year x this cost.

    Raises
    ------
    ForecastError
        A backtest without the trigger's evaluation or of another definition of it, a lead the
        trigger lacks, a cost that is not a positive number, or a missing ranking.
    """
    shown = _leads(trigger, leads)
    cost = _cost(cost_per_activation)
    backtest = evidence.backtest
    if backtest is None:
        raise ForecastError(evidence.source or f"no backtest behind train run {evidence.train.run_id}")
    metrics, signals = _evaluation(backtest, trigger)
    k = next((int(c.removeprefix("precision_at_")) for c in metrics.columns if c.startswith("precision_at_")), 5)
    rows = [_lead_row(metrics, signals, trigger, lead, k, cost) for lead in shown]
    stages, districts = _ready_set_go(trigger, rankings)
    regional = None if region_rule(trigger) is None else _regional(backtest, trigger, shown, rankings, cube, cost)
    meta = {"run_id": evidence.train.run_id, "backtest_run_id": backtest.run_id,
            "model": evidence.train.tags.get("model", ""), "data_name": data_name or "the cube given",
            "data_hash": cube_hash(cube)[:12], "data_month": f"{pd.Timestamp(cube[TIME].values[-1]):%Y-%m}",
            "policy": policy.label,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "route": CARD_ROUTE,
            "release": status.label, "watermark": None if status.released else NOT_RELEASED}
    return TriggerCard(meta=meta, definition=_definition(trigger), backtest=rows, stages=stages,
                       districts=districts, regional=regional, cost_per_activation=cost, k=k)


# --- inputs -------------------------------------------------------------------------------------

def _leads(trigger: TriggerSpec, leads) -> list[int]:
    if leads is None or len(leads) == 0:
        return list(trigger.leads)
    wanted = sorted({int(lead) for lead in leads})
    missing = [lead for lead in wanted if lead not in trigger.leads]
    if missing:
        raise ForecastError(f"trigger {trigger.name!r} has leads {', '.join(map(str, trigger.leads))}; "
                            f"lead {', '.join(map(str, missing))} is not one of them")
    return wanted


def _cost(cost) -> float | None:
    if cost is None:
        return None
    try:
        value = float(cost)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ForecastError(f"the cost per activation must be a positive number (what one activation costs, "
                            f"e.g. 250000), got {cost!r}")
    return value


def _evaluation(backtest, trigger: TriggerSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    fix = "run forecast backtest --triggers <the trigger file the model was trained with> on the same cube"
    metrics, signals = backtest.table("triggers/metrics.csv"), backtest.table("triggers/signals.parquet")
    if metrics is None or signals is None:
        raise ForecastError(f"backtest run {backtest.run_id} has no trigger evaluation (triggers/metrics.csv and "
                            f"triggers/signals.parquet): {fix}")
    evaluated = {k.removeprefix("trigger."): v for k, v in backtest.params.items() if k.startswith("trigger.")}
    if trigger.name not in evaluated:
        raise ForecastError(f"backtest run {backtest.run_id} did not evaluate trigger {trigger.name!r} (it evaluated "
                            f"{', '.join(sorted(evaluated)) or 'none'}): {fix}")
    if evaluated[trigger.name] != trigger.describe():
        raise ForecastError(f"backtest run {backtest.run_id} evaluated another trigger {trigger.name!r} "
                            f"({evaluated[trigger.name]}) than the model's ({trigger.describe()}): {fix}")
    signals = signals[(signals["trigger"] == trigger.name) & (signals["route"] == CARD_ROUTE)]
    judged = signals[signals["probability"].notna()]
    # the activation probability is not in the description: the signals themselves must follow it
    if (judged["signal"].astype(bool) != (judged["probability"] >= trigger.probability)).any():
        raise ForecastError(f"backtest run {backtest.run_id} evaluated another trigger {trigger.name!r} than the "
                            f"model's: its signals do not follow the activation probability {trigger.probability:g}: "
                            f"{fix}")
    mine = metrics[(metrics["trigger"] == trigger.name) & (metrics["route"] == CARD_ROUTE)]
    if mine.empty:
        raise ForecastError(f"backtest run {backtest.run_id} has no {CARD_ROUTE!r} route for trigger "
                            f"{trigger.name!r} (routes: {', '.join(sorted(metrics['route'].unique()))}): "
                            "run forecast backtest with --route forecast")
    return mine, signals.assign(origin=pd.to_datetime(signals["origin"]))


# --- the backtest -------------------------------------------------------------------------------

def _lead_row(metrics: pd.DataFrame, signals: pd.DataFrame, trigger: TriggerSpec, lead: int, k: int,
              cost: float | None) -> dict:
    found = metrics[metrics["lead"].astype(int) == lead]
    if found.empty:
        return {"lead": lead, "available": False,
                "note": f"the backtest scored no origin of trigger {trigger.name!r} at lead {lead}"}
    m = found.iloc[0]
    part = signals[(signals["lead"].astype(int) == lead)]
    origins = pd.DatetimeIndex(sorted(part.loc[part["role"] == "scored", "origin"].unique()))
    years, areas, activations = float(m["years"]), int(m["areas"]), int(m["activations"])
    per_year = activations / years if years else math.nan
    caught = caught_table(part)
    c = caught.iloc[0] if len(caught) else None
    return {
        "lead": lead, "available": True, "origins": len(origins),
        "first_origin": f"{origins[0]:%Y-%m}" if len(origins) else "-",
        "last_origin": f"{origins[-1]:%Y-%m}" if len(origins) else "-",
        "years": years, "areas": areas, "judged": int(m["n"]), "events": int(m["events"]),
        "signals": int(m["signals"]), "hits": int(m["hits"]), "false_alarms": int(m["false_alarms"]),
        "activations": activations, "activations_per_year": per_year,
        "activations_per_district_year": per_year / areas if areas else math.nan,
        "return_period": float(m["return_period"]), "hit_rate": float(m["hit_rate"]),
        "false_alarm_ratio": float(m["false_alarm_ratio"]), "precision_at_k": float(m[f"precision_at_{k}"]),
        "episodes": 0 if c is None else int(c["episodes"]),
        "caught_first": 0 if c is None else int(c["caught_first"]),
        "caught_any": 0 if c is None else int(c["caught_any"]),
        "share_caught_first": math.nan if c is None else float(c["share_caught_first"]),
        "share_caught_any": math.nan if c is None else float(c["share_caught_any"]),
        "yearly_cost": None if cost is None else per_year * cost,
    }


def _definition(trigger: TriggerSpec) -> dict:
    rule = region_rule(trigger)
    return {"name": trigger.name, "rule": trigger.describe(), "description": " ".join(str(trigger.description).split()),
            "kind": trigger.kind, "kind_words": _KIND_WORDS[trigger.kind].format(**trigger.model_dump()),
            "value": trigger.value, "floor": trigger.floor, "target": trigger.target, "leads": list(trigger.leads),
            "probability": trigger.probability, "hash": trigger.hash()[:12],
            "region": None if rule is None else {"min_areas": rule.min_areas, "by": rule.by, "words": rule.describe()}}


# --- ready / set / go ---------------------------------------------------------------------------

def _cell(row: dict | None) -> dict:
    if row is None:
        return {"available": False, "assessed": False, "signal": False, "probability": math.nan,
                "text": "not available"}
    status = str(row["status"])
    p = float(row["probability"]) if pd.notna(row["probability"]) else math.nan
    assessed = status.startswith("ok") and math.isfinite(p)
    signal = bool(assessed and row["signal"])
    text = (f"SIGNAL ({p:.0%})" if signal else f"no signal ({p:.0%})") if assessed else status
    return {"available": True, "assessed": assessed, "signal": signal, "probability": p, "text": text}


def _ready_set_go(trigger: TriggerSpec, rankings: dict[int, pd.DataFrame]) -> tuple[list, list]:
    stages = []
    for stage, lead in STAGES:
        has = lead in trigger.leads
        if has and lead not in rankings:
            raise ForecastError(f"no ranking at lead {lead} of trigger {trigger.name!r}: pass "
                                f"prioritize(..., lead={lead}) for every lead the trigger has among 6, 3 and 1")
        table = rankings.get(lead) if has else None
        cells = [] if table is None else [_cell(r) for r in table.to_dict("records")]
        stages.append({"stage": stage, "lead": lead, "available": has,
                       "signalling": sum(c["signal"] for c in cells),
                       "assessed": sum(c["assessed"] for c in cells), "districts": len(cells),
                       "note": "" if has else (f"not available: trigger {trigger.name!r} has no lead {lead} "
                                               f"(its leads: {', '.join(map(str, trigger.leads))})")})
    tables = {lead: rankings[lead].set_index(AREA) for _, lead in STAGES if lead in trigger.leads}
    if not tables:
        return stages, []
    first = next(iter(tables.values()))
    districts = []
    for area in first.index:
        cells = {stage: _cell(tables[lead].loc[area].to_dict() if lead in tables else None) for stage, lead in STAGES}
        signalled = [stage for stage, _ in reversed(STAGES) if cells[stage]["signal"]]
        assessed = any(c["assessed"] for c in cells.values())
        top = max((c["probability"] for c in cells.values() if c["assessed"]), default=-1.0)
        districts.append({"area": str(area), "name": str(first.loc[area, AREA_NAME] or area),
                          "region": str(first.loc[area, "region"] or ""), "cells": cells,
                          "stage": signalled[0] if signalled else ("none" if assessed else "unassessed"),
                          "_top": top})
    order = {"go": 0, "set": 1, "ready": 2, "none": 3, "unassessed": 4}
    districts.sort(key=lambda d: (order[d["stage"]], -d["_top"], d["name"]))
    for d in districts:
        del d["_top"]
    return stages, districts


# --- the geographic condition -------------------------------------------------------------------

def _regional(backtest, trigger: TriggerSpec, leads: list[int], rankings: dict[int, pd.DataFrame], cube,
              cost: float | None) -> dict:
    rule = region_rule(trigger)
    regions = area_regions(cube, trigger)
    table = backtest.table("triggers/regional.csv")
    rows, note = [], ""
    if table is None:
        note = (f"backtest run {backtest.run_id} did not score the condition (no triggers/regional.csv): run "
                "forecast backtest --triggers with this trigger file")
    else:
        mine = table[(table["trigger"] == trigger.name) & (table["route"] == CARD_ROUTE)]
        for lead in leads:
            found = mine[mine["lead"].astype(int) == lead]
            if found.empty:
                rows.append({"lead": lead, "available": False})
                continue
            r = found.iloc[0]
            per_year = int(r["activations"]) / float(r["years"]) if float(r["years"]) else math.nan
            rows.append({"lead": lead, "available": True, "regions": int(r["regions"]), "judged": int(r["n"]),
                         "events": int(r["events"]), "signals": int(r["signals"]), "hits": int(r["hits"]),
                         "hit_rate": float(r["hit_rate"]), "false_alarm_ratio": float(r["false_alarm_ratio"]),
                         "activations": int(r["activations"]), "years": float(r["years"]),
                         "activations_per_year": per_year, "return_period": float(r["return_period"]),
                         "yearly_cost": None if cost is None else per_year * cost})
    now = []
    for name, members in regions.dropna().groupby(regions.dropna()).groups.items():
        members = set(map(str, members))
        counts = {}
        for stage, lead in STAGES:
            table_now = rankings.get(lead) if lead in trigger.leads else None
            if table_now is None:
                counts[stage] = None
                continue
            inside = table_now[table_now[AREA].astype(str).isin(members)]
            counts[stage] = int(sum(_cell(r)["signal"] for r in inside.to_dict("records")))
        now.append({"region": str(name), "districts": len(members), "counts": counts,
                    "acts": {s: (n is not None and n >= rule.min_areas) for s, n in counts.items()}})
    now.sort(key=lambda r: (-sum(r["acts"].values()), r["region"]))
    unplaced = int(regions.isna().sum())
    return {"min_areas": rule.min_areas, "words": rule.describe(), "backtest": rows, "note": note, "now": now,
            "unplaced": unplaced}


# --- rendering ----------------------------------------------------------------------------------

def _pct(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else f"{v:.0%}"


def _num(value, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(v):
        return "-"
    return "never" if math.isinf(v) else f"{v:,.{digits}f}"


def _md(value) -> str:
    """A value in a Markdown table cell: pipes escaped, no line breaks."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                                 default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, md=_md)
    return env
