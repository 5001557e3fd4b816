"""Gather a forecast report: the ranking, its track record, its caveats, from plain inputs.

:func:`forecast.pipeline.build_report` reads a ``forecast train`` run and everything it stands
on (the trained model, the cube it forecasts from, the model card and the backtest the card
cites, the release status, the previous report); here, with no tracking store involved,
:func:`rank_areas` ranks the areas with the trained model and :func:`assemble_report` turns it
all into a :class:`ForecastReport`: plain tables and PNG figures, with the publication rules of
the policy applied (small cells withheld, admin level checked, no microdata). Rendering is
:mod:`forecast.report._render`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._names import AREA, AREA_NAME, ARRIVALS, TIME, target_kind
from forecast.errors import ForecastError
from forecast.backtest import level_groups
from forecast.ethics import NOT_RELEASED, Evidence, ModelCard, ReleaseStatus
from forecast.models import has_contributions
from forecast.policy import admin_level_allowed, finest_admin_level, release_checks, small_cell_k
from forecast.report._figures import fan_charts, map_figure, reliability_figure, skill_figure
from forecast.report._age import data_age, window_months
from forecast.report._changes import compare
from forecast.report._reasons import area_reasons
from forecast.triggers import monthly_outlook

__all__ = ["ForecastReport", "Ranking", "rank_areas", "assemble_report", "check_admin_level", "headline_rows", "one_ranking",
           "region_totals", "HEADLINE_COLUMNS", "TOTALS_COLUMNS", "NEXT_ON_RANKING"]

#: What a report keeps of each area, and what the next report compares against. ``reason``: for
#: each district in the headline, its largest drivers said with facts from the data (else empty).
#: The window's sums (``expected, lower, upper``) stay for the record; the page shows the
#: likeliest month's forecast (``month_*``), in the trigger's own unit: people a month.
HEADLINE_COLUMNS = ["rank", AREA, AREA_NAME, "region", "probability", "signal", "expected", "lower", "upper",
                    "threshold", "last_data", "status", "reason", "likeliest_month", "month_probability",
                    "month_expected", "month_lower", "month_upper"]
#: A report's totals, one row per region then the country: ``expected`` adds up the districts'
#: ``mean`` forecasts over the window; ``observed`` the target over as many months up to the
#: data month, of the ``recorded`` district-months of ``cells`` (NaN when none was recorded).
TOTALS_COLUMNS = ["level", "group", "name", "n_areas", "of_areas", "signals", "expected", "lower", "upper", "observed",
                  "recorded", "cells", "calibrated_by", "n_calibration"]
#: The headline table goes on this many districts past the last one expected to cross.
NEXT_ON_RANKING = 5


@dataclass(frozen=True)
class ForecastReport:
    """Everything a forecast report shows, as data; render with :func:`forecast.report.to_html`.

    Attributes
    ----------
    meta : dict
        Run, model, trigger, lead, data month, created, release label, watermark, policy.
    ranking : DataFrame
        Every area (:data:`HEADLINE_COLUMNS`): ranked areas first, then the unassessed.
    changes : DataFrame or None
        Per area whose signal or probability moved since the previous report; None when there
        is no previous report.
    previous : dict or None
        Which report the changes are against (month, run, source).
    track : dict
        Skill per horizon against naive and seasonal naive, the one the release gate judges
        (``skill_reference``, per the target's kind), coverage, the trigger's scores.
    fairness : dict
        Plain-words findings and the by-group table of the report's trigger and lead.
    data : dict
        Sources, sensitivity, last observation per area, the unassessed areas.
    card : dict
        The model card summary and the review / release status.
    figures : dict of str to bytes
        PNG images: ``map``, ``fans``, ``skill``, ``reliability`` (``map`` only with boundaries).
    scenario : dict or None
        A scenario shown beside the baseline (:func:`scenario_section`); None without one.
    totals : DataFrame or None
        Per region, then the country (:data:`TOTALS_COLUMNS`): the window's expected total (the
        districts' ``mean`` forecasts added up) and its 80% interval, the districts signalling,
        and the total observed over the same number of months up to the data month.
    """

    meta: dict
    ranking: pd.DataFrame
    changes: pd.DataFrame | None
    previous: dict | None
    track: dict
    fairness: dict
    data: dict
    card: dict
    figures: dict = field(default_factory=dict)
    scenario: dict | None = None
    totals: pd.DataFrame | None = None

    @property
    def released(self) -> bool:
        return self.meta["watermark"] is None

    @property
    def headline(self) -> pd.DataFrame:
        """The areas expected to cross their trigger within the lead time, most urgent first."""
        ranked = self.ranking[self.ranking["rank"].notna() & self.ranking["signal"].astype(bool)]
        return ranked.reset_index(drop=True)

    @property
    def table(self) -> pd.DataFrame:
        """The headline table: the districts expected to cross, then the next
        :data:`NEXT_ON_RANKING` on the same ranking (numbered on, below the activation probability)."""
        return headline_rows(self.ranking)

    @property
    def unassessed(self) -> pd.DataFrame:
        return self.ranking[~self.ranking["status"].astype(str).str.startswith("ok")].reset_index(drop=True)

    @property
    def k(self) -> int:
        return int(self.meta["small_cell_k"])


@dataclass(frozen=True)
class Ranking:
    """The areas ranked against one trigger at one lead, from the cube's last month.

    Attributes
    ----------
    trigger : TriggerSpec
    lead : int
    forecasts : DataFrame
        The model's forecasts from the last month (for the fan charts).
    table : DataFrame
        Every area (:data:`HEADLINE_COLUMNS`).
    month : str
        The last month of data, ``YYYY-MM``.
    outlook : DataFrame
        Month by month through the window (:func:`forecast.triggers.monthly_outlook`): each
        month's probability of reaching the threshold and its forecast.
    totals : DataFrame or None
        What the districts add up to over the window, per region and for the country
        (``TrainedModel.totals``); None for a model that cannot total the window.
    """

    trigger: object
    lead: int
    forecasts: pd.DataFrame
    table: pd.DataFrame
    month: str
    outlook: pd.DataFrame | None = None
    totals: pd.DataFrame | None = None


def rank_areas(trained, data, run_id: str, *, trigger: str | None = None, lead: int | None = None,
               explanation: pd.DataFrame | None = None) -> Ranking:
    """Forecast from the last month of ``data`` and rank the areas against a trigger.

    Parameters
    ----------
    trained : TrainedModel
        The model of train run ``run_id`` (:func:`forecast.tracking.load_trained`).
    data : xarray.Dataset
        The cube to forecast from.
    run_id : str
        Named in the errors.
    trigger, lead : optional
        Default: the model's first trigger, and lead 3 when it has one, else its first lead.
    explanation : DataFrame, optional
        ``trained.explain(data)``, for the reasons of the flagged districts (their drivers over
        the lead's horizons); default: computed here when the model has contributions, else
        the reasons rest on facts from the data alone.

    Raises
    ------
    ForecastError
        The model was trained without triggers, or has no trigger of that name.
    """
    if not trained.triggers:
        raise ForecastError(f"run {run_id} was trained without triggers; a report ranks areas against one: "
                            "forecast train --triggers models/triggers.yaml")
    spec = trained.triggers[0] if trigger is None else next((t for t in trained.triggers if t.name == trigger), None)
    if spec is None:
        raise ForecastError(f"run {run_id} has no trigger {trigger!r}; it has "
                            f"{', '.join(t.name for t in trained.triggers)}")
    lead = (3 if 3 in spec.leads else spec.leads[0]) if lead is None else int(lead)
    forecasts = trained.predict(data)
    table = trained.prioritize(data, spec.name, lead)
    outlook = monthly_outlook(forecasts, data, spec, lead, quantiles=trained.spec.quantiles,
                              missing_target=trained.spec.resolved_missing_target,
                              calibrator=trained.trigger_calibration.get((spec.name, lead)))
    table = one_ranking(_likeliest(table, outlook))
    if explanation is None and has_contributions(trained.fitted):
        explanation = trained.explain(data)
    flagged = table.loc[table["rank"].notna() & table["signal"].astype(bool), AREA]
    reasons = area_reasons(explanation, data, list(flagged), target=trained.spec.target,
                           horizons=range(1, lead + 1))
    table["reason"] = [reasons.get(str(a), "") for a in table[AREA]]
    try:
        totals = trained.totals(data, lead, forecasts)
    except ForecastError:  # horizons that do not cover the window: no totals, the rest stands
        totals = None
    return Ranking(trigger=spec, lead=lead, forecasts=forecasts, table=table[HEADLINE_COLUMNS],
                   month=f"{pd.Timestamp(data[TIME].values[-1]):%Y-%m}", outlook=outlook, totals=totals)


def _likeliest(table: pd.DataFrame, outlook: pd.DataFrame) -> pd.DataFrame:
    """Per area, the window's month most likely to reach the threshold, and its forecast."""
    known = outlook[outlook["probability"].notna()]
    best = known.loc[known.groupby(AREA, sort=False)["probability"].idxmax()] if len(known) else known
    best = best.set_index(AREA)
    out = table.copy()
    for column, source in (("likeliest_month", "month"), ("month_probability", "probability"),
                           ("month_expected", "median"), ("month_lower", "lower"), ("month_upper", "upper")):
        out[column] = out[AREA].map(best[source]) if len(best) else np.nan
    assessed = out["rank"].notna()
    out.loc[~assessed, ["likeliest_month", "month_probability", "month_expected", "month_lower", "month_upper"]] = np.nan
    return out


def one_ranking(table: pd.DataFrame) -> pd.DataFrame:
    """The ranking of :func:`forecast.triggers.prioritize` (the districts expected to cross first,
    then the others, each by probability x expected arrivals) numbered 1, 2, 3... without gaps:
    districts of equal score, which share a rank there, are ordered by probability, then P-code.
    The unassessed come last, unranked. The report and the export number the same way."""
    out = table.copy()
    ranked = out[out["rank"].notna()].sort_values(["signal", "rank", "probability", AREA],
                                                    ascending=[False, True, False, True], kind="stable")
    out.loc[ranked.index, "rank"] = np.arange(1, len(ranked) + 1, dtype=float)
    return out.sort_values(["rank", AREA], na_position="last", kind="stable").reset_index(drop=True)


def assemble_report(evidence: Evidence, card: ModelCard, ranking: Ranking, trained, data, *, status: ReleaseStatus,
                    policy, sensitivity: str, previous: tuple[pd.DataFrame | None, dict | None] = (None, None),
                    boundaries: str | Path | None = None, top: int = 6,
                    scenario: dict | None = None, manifest: dict | None = None,
                    today: pd.Timestamp | None = None) -> ForecastReport:
    """The forecast report of a train run, from plain inputs (no tracking store involved).

    Parameters
    ----------
    evidence : Evidence
        The train run and the backtest behind its card (its ``triggers/reliability.csv``).
    card : ModelCard
        The model card built from ``evidence``.
    ranking : Ranking
        :func:`rank_areas` of the trained model on ``data``.
    trained : TrainedModel
    data : xarray.Dataset
        The cube the ranking forecast from.
    status : ReleaseStatus
        Whether the model is released; an unreleased one carries the watermark on every page.
    policy : Policy
        Its ``release`` section sets the small-cell threshold.
    sensitivity : str
        The data's sensitivity (from the manifest).
    previous : (DataFrame, dict) or (None, None)
        The previous report's headline and where it came from; ``(None, None)`` for a first report.
    boundaries : path, optional
        A COD GeoJSON of the areas, for the map.
    top : int
        Fan charts for this many areas (the most urgent first).
    scenario : dict, optional
        A scenario to show beside the baseline: :func:`forecast.report.scenario_section` of a
        logged scenario's table.
    manifest : dict, optional
        The cube's manifest (``manifest.json`` of the run), for the last month of data of each
        source; without it the cube's variables stand in.
    today : Timestamp, optional
        The report's date, for the data-age banner (default: now).
    """
    k = small_cell_k(policy)
    spec, lead, ranked, month = ranking.trigger, ranking.lead, ranking.table, ranking.month
    train, backtest = evidence.train, evidence.backtest
    tags = train.tags
    model = tags.get("model", "")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if today is None else pd.Timestamp(today)
    meta = {"run_id": train.run_id, "model": model, "experiment_id": train.experiment_id,
            "trigger": spec.name, "trigger_description": spec.describe(), "trigger_text": " ".join(
                str(spec.description or "").split()), "probability": spec.probability, "lead": lead,
            "data_month": month, "first_month": f"{pd.Timestamp(data[TIME].values[0]):%Y-%m}",
            "created": now.strftime("%Y-%m-%d %H:%M UTC"), "window": window_months(month, lead),
            "release": status.label, "watermark": None if status.released else NOT_RELEASED,
            "small_cell_k": k, "policy": policy.label, "sensitivity": sensitivity,
            "backtest_run_id": card.details["backtest_run_id"], "target": trained.spec.target,
            "n_areas": int(data.sizes[AREA])}
    prev_table, prev_meta = previous
    changes = None if prev_table is None else compare(ranked, prev_table)
    reliability = None if backtest is None else backtest.table("triggers/reliability.csv")
    figures = {"fans": fan_charts(data, ranking.forecasts, ranked, _top_areas(ranked, top), trained.spec, k=k,
                                  outlook=ranking.outlook, lead=lead),
               "skill": skill_figure(_skill(card.metrics, model)),
               "reliability": reliability_figure(reliability, spec.name, lead, "forecast")}
    if boundaries is not None:
        figures["map"] = map_figure(boundaries, ranked, spec, lead, month, labels=_map_keys(ranked))
    return ForecastReport(meta=meta, ranking=ranked, changes=changes, previous=prev_meta,
                          track=_track(card, model, spec.name, lead, policy, trained.spec.target),
                          fairness=_fairness(card, spec.name, lead),
                          data={**_data(card, ranked, data, trained.spec.target, sensitivity),
                                "age": data_age(data, manifest, trained.spec.target, now, lead)},
                          card=_card_summary(card, tags), figures=figures,
                          scenario=scenario, totals=region_totals(ranking.totals, ranked, data, trained.spec.target))


def region_totals(totals: pd.DataFrame | None, ranked: pd.DataFrame, data, target: str) -> pd.DataFrame | None:
    """The report's totals (:data:`TOTALS_COLUMNS`) from ``TrainedModel.totals``: the districts
    signalling in each group (from the ranking) and what was observed over the last ``lead``
    months, beside what is expected over the next."""
    if totals is None or totals.empty:
        return None
    lead = int(totals["lead"].iloc[0])
    signalling = set(ranked.loc[ranked["rank"].notna() & ranked["signal"].astype(bool), AREA].astype(str))
    recent = data[target].transpose(AREA, TIME).values[:, -lead:].astype(float)
    areas = data[AREA].values.astype(str)
    rows = []
    for level, (groups, _) in level_groups(data).items():
        members = groups.groupby(groups.to_numpy()).groups
        for group, index in members.items():
            inside = recent[np.isin(areas, list(index))]
            seen = np.isfinite(inside)
            rows.append({"level": level, "group": group, "signals": len(signalling & set(index)),
                         "observed": float(inside[seen].sum()) if seen.any() else np.nan,
                         "recorded": int(seen.sum()), "cells": int(inside.size)})
    extra = pd.DataFrame(rows)
    out = totals.rename(columns={"mean": "expected"}).merge(extra, on=["level", "group"], how="left")
    out["order"] = out["level"].map({"admin1": 0, "national": 1})
    return out.sort_values(["order", "name"], kind="stable")[TOTALS_COLUMNS].reset_index(drop=True)


def check_admin_level(cube, sensitivity: str, policy) -> None:
    """Refuse data finer than the policy publishes at ``sensitivity`` (or when it cannot be told).

    The admin level is the cube's attribute ``admin_level``, else the finest of its
    ``admin_level`` coordinate.
    """
    level = cube.attrs.get("admin_level")
    if level is None and "admin_level" in cube.coords:
        level = int(np.max(cube["admin_level"].values))
    allowed = admin_level_allowed(level, sensitivity, policy)
    if allowed is None:
        raise ForecastError(f"cannot tell whether admin level {level} may be published at sensitivity "
                            f"{sensitivity!r} (policy {policy.source} allows {policy.release.admin_level.finest}); "
                            "ingest the data with forecast ingest so its manifest records both")
    if not allowed:
        finest = finest_admin_level(sensitivity, policy)
        raise ForecastError(f"the data are admin{level} at sensitivity {sensitivity}; policy {policy.source} "
                            f"publishes nothing finer than admin{finest} at that sensitivity: aggregate the cube "
                            f"(forecast.aggregate(cube, level={finest})) and train on it")


def headline_rows(ranking: pd.DataFrame) -> pd.DataFrame:
    """The ranked rows down to :data:`NEXT_ON_RANKING` past the last district that signals."""
    ranked = ranking[ranking["rank"].notna()].sort_values("rank")
    n = int(ranked["signal"].astype(bool).sum()) + NEXT_ON_RANKING
    return ranked.head(n).reset_index(drop=True)


def _map_keys(ranking: pd.DataFrame) -> dict[str, str]:
    """The numbers the map writes on districts: the headline table's ranks."""
    return {str(r[AREA]): f"{int(r['rank'])}" for _, r in headline_rows(ranking).iterrows()}


def _top_areas(ranking: pd.DataFrame, top: int) -> list[str]:
    ranked = ranking[ranking["rank"].notna()].sort_values(["rank", "probability"], ascending=[True, False])
    return ranked[AREA].head(top).tolist()


# --- track record, fairness, data, card -----------------------------------------------------

def _skill(metrics: list[dict], model: str) -> pd.DataFrame:
    """Per horizon: MASE of the model, naive and seasonal naive, and the skill against each."""
    table = pd.DataFrame(metrics)
    wide = table.pivot_table(index="horizon", columns="model", values="mase")
    out = pd.DataFrame({"horizon": wide.index.astype(int), "mase": wide[model].to_numpy()})
    for base in ("naive", "seasonal_naive"):
        if base in wide:
            out[f"mase_{base}"] = wide[base].to_numpy()
            out[f"skill_vs_{base}"] = 1.0 - out["mase"] / out[f"mase_{base}"]
    cov = table[table["model"] == model].set_index("horizon")
    out["coverage80"] = out["horizon"].map(cov["coverage80"]) if "coverage80" in cov else np.nan
    out["n"] = out["horizon"].map(cov["n"]) if "n" in cov else np.nan
    # the totals' track record: the means' total over the outcomes' (NaN: a backtest before means)
    out["mean_level_ratio"] = (out["horizon"].map(cov["mean_level_ratio"]) if "mean_level_ratio" in cov
                               else np.nan)
    return out


def _track(card, model: str, trigger: str, lead: int, policy, target: str | None) -> dict:
    rows = [r for r in card.triggers["table"] if r["trigger"] == trigger and int(r["lead"]) == lead
            and r["route"] == "forecast"]
    ev = card.evaluation
    return {"skill": _skill(card.metrics, model), "trigger": rows[0] if rows else None,
            "skill_reference": release_checks(policy).skill.reference_for(target),
            "target_kind": target_kind(target or ARRIVALS),
            "k": card.triggers.get("k"), "n_origins": ev.get("n_origins"), "horizons": ev.get("horizons"),
            "baselines": ev.get("baselines"),
            "reliability": [r for r in card.calibration.get("reliability", [])
                            if r["trigger"] == trigger and int(r["lead"]) == lead and r["route"] == "forecast"]}


_GROUP_WORDS = {"idp_share_2014": "2014 IDP share", "population": "population", "zone": "zone",
                "livelihood": "livelihood zone", "region": "region", "settlement": "settlement",
                "access": "access"}


_VERDICT = {"yes": "passed", "no": "failed"}


def _fairness(card, trigger: str, lead: int) -> dict:
    """The by-group hit rates in plain words: per grouping, who was served least and best."""
    fair = card.fairness
    table = pd.DataFrame(fair["by_group"])
    if table.empty:
        return {"route": fair["route"], "verdict": _VERDICT.get(fair["verdicts"].get(fair["route"]), "cannot judge"), "findings": [], "too_small": [],
                "table": table, "failures": []}
    table = table[(table["trigger"] == trigger) & (table["lead"].astype(int) == lead)]
    findings, too_small = [], []
    for column, part in table.groupby("group_column", sort=True):
        status = part["status"].astype(str)
        # a group too small for the false-alarm ratio can still be judged on its hit rate
        judged = part[(status.eq("ok") | (status.str.startswith("too small for") & ~status.str.contains("hit_rate")))
                      & part["hit_rate"].notna()]
        words = _GROUP_WORDS.get(column, column)
        too_small += [f"{words} {_place(column, words, g)}" for g in part.loc[~part.index.isin(judged.index), "group"]]
        if len(judged) < 2:
            continue
        worst, best = judged.loc[judged["hit_rate"].idxmin()], judged.loc[judged["hit_rate"].idxmax()]
        low, high = _place(column, words, str(worst["group"])), _place(column, words, str(best["group"]))
        findings.append({
            "grouping": words, "worst": low, "best": high,
            "worst_rate": float(worst["hit_rate"]), "best_rate": float(best["hit_rate"]),
            "worst_events": int(worst["n_events"]), "best_events": int(best["n_events"]),
            "gap": float(best["hit_rate"] - worst["hit_rate"]),
            "sentence": (f"By {words}: the model signalled {worst['hit_rate']:.0%} of the {int(worst['n_events'])} "
                         f"crossings in {low}, against {best['hit_rate']:.0%} of {int(best['n_events'])} in {high}.")})
    findings.sort(key=lambda f: -f["gap"])
    failures = [f.replace(f"(trigger '{trigger}', lead {lead}, route '{fair['route']}')", "").replace("  ", " ")
                for f in fair["failures"].get(fair["route"], []) if f"lead {lead}," in f]
    return {"route": fair["route"], "verdict": _VERDICT.get(fair["verdicts"].get(fair["route"]), "cannot judge"), "findings": findings,
            "too_small": too_small, "table": table, "failures": failures}


def _place(column: str, words: str, group) -> str:
    """``Galgaduud`` for a named group; ``districts with 2014 IDP share 0-0.013`` for a binned one."""
    group = str(group)
    prefix = f"{column}: "
    return f"districts with {words} {group.removeprefix(prefix)}" if group.startswith(prefix) else group


def _data(card, ranking: pd.DataFrame, cube, target: str, sensitivity: str) -> dict:
    last = ranking[[AREA, AREA_NAME, "region", "last_data", "status"]].copy()
    values = cube[target].transpose(AREA, TIME).values.astype(float)
    mask = f"{target}_observed"
    seen = (cube[mask].transpose(AREA, TIME).values.astype(bool) if mask in cube
            else np.isfinite(values))
    index = {a: i for i, a in enumerate(cube[AREA].values.astype(str))}
    latest = []
    for area in last[AREA]:
        i = index[area]
        cols = np.flatnonzero(seen[i])
        latest.append(values[i, cols[-1]] if len(cols) else np.nan)
    last["last_value"] = latest
    last["assessed"] = last["status"].astype(str).str.startswith("ok")
    last = last.sort_values(["region", AREA_NAME]).reset_index(drop=True)
    return {"sources": card.data["sources"], "months": card.data["months"], "sensitivity": sensitivity,
            "sensitivity_reasons": card.data["sensitivity_reasons"], "n_areas": card.data["n_areas"],
            "admin_level": card.data["admin_level"], "cube_hash": card.data["cube_hash"], "last": last}


def _card_summary(card, tags: dict) -> dict:
    i = card.inputs
    return {"name": card.details["name"], "version": card.details["version"], "estimator": card.details["estimator"],
            "owner": i.owner, "contact": i.contact, "intended_use": i.intended_use,
            "out_of_scope_uses": list(i.out_of_scope_uses), "limitations": list(i.limitations),
            "caveats": list(i.caveats), "readers": i.implementation_plan.readers,
            "action": i.implementation_plan.action, "when_wrong": i.implementation_plan.when_wrong,
            "card_sha256": tags.get("card_sha256"), "trained": card.details["date"]}
