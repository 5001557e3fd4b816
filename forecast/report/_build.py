"""Gather a forecast report from a ``forecast train`` run: the ranking, its track record, its caveats.

:func:`build_report` reads the train run and everything it stands on (the trained model, the
cube it forecasts from, the model card and the backtest the card cites, the release status)
and returns a :class:`ForecastReport`: plain tables and PNG figures, with the publication
rules of the policy already applied (small cells withheld, admin level checked, no microdata).
Rendering is :mod:`forecast.report._render`'s job.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._names import AREA, AREA_NAME, TIME
from forecast.errors import ForecastError

__all__ = ["ForecastReport", "build_report", "find_previous", "HEADLINE_COLUMNS"]

#: What a report keeps of each area, and what the next report compares against.
HEADLINE_COLUMNS = ["rank", AREA, AREA_NAME, "region", "probability", "signal", "expected", "lower", "upper",
                    "threshold", "last_data", "status"]
_PURPOSE = "a forecast report is about a run of `forecast train --triggers models/triggers.yaml`"
#: Probability changes smaller than this are not called a change.
MIN_CHANGE = 0.10


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
        Skill per horizon against naive and seasonal naive, coverage, the trigger's scores.
    fairness : dict
        Plain-words findings and the by-group table of the report's trigger and lead.
    data : dict
        Sources, sensitivity, last observation per area, the unassessed areas.
    card : dict
        The model card summary and the review / release status.
    figures : dict of str to bytes
        PNG images: ``map``, ``fans``, ``skill``, ``reliability`` (``map`` only with boundaries).
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

    @property
    def released(self) -> bool:
        return self.meta["watermark"] is None

    @property
    def headline(self) -> pd.DataFrame:
        """The areas expected to cross their trigger within the lead time, most urgent first."""
        ranked = self.ranking[self.ranking["rank"].notna() & self.ranking["signal"].astype(bool)]
        return ranked.reset_index(drop=True)

    @property
    def unassessed(self) -> pd.DataFrame:
        return self.ranking[~self.ranking["status"].astype(str).str.startswith("ok")].reset_index(drop=True)

    @property
    def k(self) -> int:
        return int(self.meta["small_cell_k"])


def build_report(run_id: str, *, cube=None, trigger: str | None = None, lead: int | None = None,
                 boundaries: str | Path | None = None, previous: str | Path | None = None,
                 card_inputs=None, policy=None, top: int = 6, tracking_uri: str | None = None,
                 progress=None) -> ForecastReport:
    """Build the forecast report of a ``forecast train --triggers ...`` run.

    Parameters
    ----------
    run_id : str
        The train run (its model forecasts from the cube's last month).
    cube : xarray.Dataset, str or Path, optional
        The data to forecast from; default: the cube the run was trained on (tag ``cube_path``).
    trigger, lead : optional
        Default: the model's first trigger, and lead 3 when it has one, else its first lead.
    boundaries : path, optional
        A COD GeoJSON of the areas, for the map; without it the report groups a table by admin1.
    previous : path, optional
        The headline CSV of the previous report; default: the latest earlier report logged
        for the same model and trigger in the run's experiment (none: the first report).
    card_inputs : CardInputs or path, optional
        As in :func:`forecast.ethics.build_card` (default ``models/cards/<model>.yaml``).
    policy : Policy, optional
        Default: :func:`forecast.fairness.load_policy`; its ``release`` section sets the
        small-cell threshold and the finest admin level the data's sensitivity allows.
    top : int
        Fan charts for this many areas (the most urgent first).
    tracking_uri : str, optional
    progress : callable, optional
        Called with a short description of each step.

    Raises
    ------
    ForecastError
        An unknown run or one of another kind, a model trained without triggers, a missing
        card input or backtest, a policy without a release section, or data finer than the
        sensitivity allows to publish.
    """
    import mlflow

    from forecast.cube import load_cube
    from forecast.ethics._card import build_card
    from forecast.ethics._gate import NOT_RELEASED, release_status
    from forecast.policy._policy import load_policy
    from forecast.report._figures import fan_charts, map_figure, reliability_figure, skill_figure
    from forecast.tracking import get_run, use_store as _store

    step = progress or (lambda _: None)
    step("reading the run and its data")
    client, train = get_run(run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri)
    given = None if previous is None else _read_previous(previous)  # a bad file fails before the slow steps
    tags = train.data.tags
    rules = load_policy() if policy is None else policy
    if rules.release is None:
        raise ForecastError(f"policy {rules.source} has no release section: without its small-cell threshold and "
                            "admin levels nothing can be published; add release: (see ethics/policy.yaml)")
    if cube is None:
        cube = tags.get("cube_path")
        if not cube:
            raise ForecastError(f"run {run_id} does not say which cube it was trained on; pass --cube")
    data = load_cube(cube) if isinstance(cube, (str, Path)) else cube
    sensitivity = tags.get("sensitivity") or data.attrs.get("sensitivity") or "unknown"
    _check_admin_level(data, sensitivity, rules)
    k = rules.release.small_cell.k

    step("forecasting from the last month")
    with _store(tracking_uri):
        try:
            trained = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").unwrap_python_model().trained
        except Exception as error:  # MLflow raises several types for a run without a model
            raise ForecastError(f"cannot load the model of run {run_id}: {error}") from None
    if not trained.triggers:
        raise ForecastError(f"run {run_id} was trained without triggers; a report ranks areas against one: "
                            "forecast train --triggers models/triggers.yaml")
    spec = trained.triggers[0] if trigger is None else next((t for t in trained.triggers if t.name == trigger), None)
    if spec is None:
        raise ForecastError(f"run {run_id} has no trigger {trigger!r}; it has "
                            f"{', '.join(t.name for t in trained.triggers)}")
    lead = (3 if 3 in spec.leads else spec.leads[0]) if lead is None else int(lead)
    forecasts = trained.predict(data)
    ranking = trained.prioritize(data, spec.name, lead)[HEADLINE_COLUMNS]
    month = f"{pd.Timestamp(data[TIME].values[-1]):%Y-%m}"

    step("reading the model card and its backtest")
    card = build_card(run_id, card_inputs, tracking_uri=tracking_uri)
    status = release_status(run_id, client=client)
    with tempfile.TemporaryDirectory() as tmp:
        backtest_id = card.details["backtest_run_id"]
        reliability = _table(client, backtest_id, "triggers/reliability.csv", tmp)
    model = tags.get("model", "")
    meta = {"run_id": run_id, "model": model, "experiment_id": train.info.experiment_id,
            "trigger": spec.name, "trigger_description": spec.describe(), "trigger_text": " ".join(
                str(spec.description or "").split()), "probability": spec.probability, "lead": lead,
            "data_month": month, "first_month": f"{pd.Timestamp(data[TIME].values[0]):%Y-%m}",
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "release": status.label, "watermark": None if status.released else NOT_RELEASED,
            "small_cell_k": k, "policy": str(rules.source), "sensitivity": sensitivity,
            "backtest_run_id": backtest_id, "target": trained.spec.target, "n_areas": int(data.sizes[AREA])}

    step("comparing with the previous report")
    prev_table, prev_meta = given if given is not None else _logged_previous(client, train, spec.name, lead, month)
    changes = None if prev_table is None else compare(ranking, prev_table)

    step("drawing the map and the charts")
    top_areas = _top_areas(ranking, top)
    figures = {"fans": fan_charts(data, forecasts, ranking, top_areas, trained.spec, k=k),
               "skill": skill_figure(_skill(card.metrics, model)),
               "reliability": reliability_figure(reliability, spec.name, lead, "forecast")}
    if boundaries is not None:
        figures["map"] = map_figure(boundaries, ranking, spec, lead, month)
    return ForecastReport(meta=meta, ranking=ranking, changes=changes, previous=prev_meta,
                          track=_track(card, model, spec.name, lead), fairness=_fairness(card, spec.name, lead),
                          data=_data(card, ranking, data, trained.spec.target, sensitivity),
                          card=_card_summary(card, tags), figures=figures)


def _check_admin_level(cube, sensitivity: str, rules) -> None:
    finest = rules.release.admin_level.finest
    level = cube.attrs.get("admin_level")
    if level is None and "admin_level" in cube.coords:
        level = int(np.max(cube["admin_level"].values))
    allowed = finest.get(sensitivity)
    if level is None or allowed is None:
        raise ForecastError(f"cannot tell whether admin level {level} may be published at sensitivity "
                            f"{sensitivity!r} (policy {rules.source} allows {finest}); ingest the data with "
                            "forecast ingest so its manifest records both")
    if int(level) > int(allowed):
        raise ForecastError(f"the data are admin{level} at sensitivity {sensitivity}; policy {rules.source} "
                            f"publishes nothing finer than admin{allowed} at that sensitivity: aggregate the cube "
                            f"(forecast.aggregate(cube, level={allowed})) and train on it")


def _table(client, run_id: str, path: str, folder: str) -> pd.DataFrame | None:
    from forecast.ethics._card import _Artifacts

    return _Artifacts(client, run_id, Path(folder)).table(path)


def _top_areas(ranking: pd.DataFrame, top: int) -> list[str]:
    ranked = ranking[ranking["rank"].notna()].sort_values(["rank", "probability"], ascending=[True, False])
    return ranked[AREA].head(top).tolist()


# --- the previous report ---------------------------------------------------------------------

def headline_artifact(trigger: str, lead: int, month: str) -> str:
    return f"report/headline_{month}_{trigger}_l{lead}.csv"


def find_previous(client, train, trigger: str, lead: int, month: str) -> tuple[str, str, str] | None:
    """The latest report before ``month`` of the same model and trigger in the run's experiment:
    ``(run_id, month, artifact path)``, or None."""
    runs = client.search_runs([train.info.experiment_id],
                              filter_string=f"tags.kind = 'train' and tags.model = '{train.data.tags.get('model')}' "
                                            "and tags.reported = 'true'")
    best = None
    suffix = f"_{trigger}_l{lead}.csv"
    for run in runs:
        for item in client.list_artifacts(run.info.run_id, "report"):
            name = Path(item.path).name
            if not (name.startswith("headline_") and name.endswith(suffix)):
                continue
            earlier = name.removeprefix("headline_").removesuffix(suffix)
            if earlier < month and (best is None or (earlier, run.info.start_time) > (best[1], best[3])):
                best = (run.info.run_id, earlier, item.path, run.info.start_time)
    return None if best is None else best[:3]


def _read_previous(explicit) -> tuple[pd.DataFrame, dict]:
    path = Path(explicit)
    if not path.is_file():
        raise ForecastError(f"previous report {path} not found: pass the headline CSV a report wrote "
                            "(report/headline_<month>_<trigger>_l<lead>.csv in its train run)")
    return _read_headline(path), {"source": str(path), "month": _month_of(path.name), "run_id": None}


def _logged_previous(client, train, trigger, lead, month):
    found = find_previous(client, train, trigger, lead, month)
    if found is None:
        return None, None
    run_id, earlier, artifact = found
    with tempfile.TemporaryDirectory() as tmp:
        table = _read_headline(Path(client.download_artifacts(run_id, artifact, tmp)))
    return table, {"source": f"runs:/{run_id}/{artifact}", "month": earlier, "run_id": run_id}


def _month_of(name: str) -> str | None:
    parts = name.removeprefix("headline_").split("_")
    return parts[0] if parts and len(parts[0]) == 7 else None


def _read_headline(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={AREA: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ForecastError(f"{path}: not a report headline CSV ({error})") from None
    missing = [c for c in (AREA, "probability", "signal") if c not in table.columns]
    if missing:
        raise ForecastError(f"{path}: not a report headline CSV: columns {missing} missing "
                            f"(it has {list(table.columns)})")
    return table


def compare(current: pd.DataFrame, previous: pd.DataFrame, *, min_change: float = MIN_CHANGE) -> pd.DataFrame:
    """Areas whose signal changed, or whose probability moved by at least ``min_change``.

    One row per such area: ``area, area_name, change`` (``new signal``, ``signal ended``,
    ``up``, ``down``, ``newly assessed``, ``no longer assessed``), ``probability_before``,
    ``probability``.
    """
    before = previous.set_index(AREA)
    rows = []
    for _, row in current.iterrows():
        area = row[AREA]
        p = row["probability"]
        if area not in before.index:
            continue
        old = before.loc[area]
        p0 = old["probability"]
        s, s0 = bool(row["signal"]) if pd.notna(p) else False, _truth(old["signal"]) if pd.notna(p0) else False
        change = None
        if pd.isna(p) and pd.notna(p0):
            change = "no longer assessed"
        elif pd.notna(p) and pd.isna(p0):
            change = "newly assessed"
        elif pd.notna(p) and s and not s0:
            change = "new signal"
        elif pd.notna(p) and s0 and not s:
            change = "signal ended"
        elif pd.notna(p) and abs(p - p0) >= min_change:
            change = "up" if p > p0 else "down"
        if change:
            rows.append({AREA: area, AREA_NAME: row[AREA_NAME], "region": row["region"], "change": change,
                         "probability_before": p0, "probability": p})
    order = {"new signal": 0, "signal ended": 1, "up": 2, "down": 3, "newly assessed": 4, "no longer assessed": 5}
    frame = pd.DataFrame(rows, columns=[AREA, AREA_NAME, "region", "change", "probability_before", "probability"])
    return frame.sort_values("change", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


def _truth(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


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
    return out


def _track(card, model: str, trigger: str, lead: int) -> dict:
    rows = [r for r in card.triggers["table"] if r["trigger"] == trigger and int(r["lead"]) == lead
            and r["route"] == "forecast"]
    ev = card.evaluation
    return {"skill": _skill(card.metrics, model), "trigger": rows[0] if rows else None,
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
