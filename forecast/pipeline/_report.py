"""The forecast report of a train run by its id: read the run, its model, card and history, then assemble."""

from __future__ import annotations

from pathlib import Path

from forecast.cube import load_cube
from forecast.errors import ForecastError
from forecast.ethics import card_from_evidence, resolve_card_inputs
from forecast.models import has_contributions
from forecast.policy import load_policy, manifest_sensitivity, publishable, release_checks
from forecast.report import (
    HEADLINE_COLUMNS,
    ForecastReport,
    assemble_report,
    check_admin_level,
    headline_artifact,
    rank_areas,
    read_previous,
    scenario_section,
)
from forecast.tracking import (
    load_trained,
    log_headline,
    previous_report,
    read_card_evidence,
    read_run,
    read_scenario,
)

from forecast.pipeline._release import release_status

__all__ = ["build_report", "log_report"]

_PURPOSE = "a forecast report is about a run of `forecast train --triggers models/triggers.yaml`"


def build_report(run_id: str, *, cube=None, trigger: str | None = None, lead: int | None = None,
                 boundaries: str | Path | None = None, previous: str | Path | None = None,
                 card_inputs=None, policy=None, top: int = 6, scenario: str | None = None,
                 tracking_uri: str | None = None, progress=None) -> ForecastReport:
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
        The headline CSV of the previous report; default: the report logged for the same model,
        trigger and lead in the run's experiment with the latest data month before this one,
        and among those of that month the one of this run's lineage (tag ``previous_run``, set
        by :func:`forecast.tracking.log_trained`); none: the first report.
    card_inputs : CardInputs or path, optional
        As in :func:`build_card` (default ``models/cards/<model>.yaml``).
    policy : Policy, optional
        Default: :func:`forecast.policy.load_policy`; its ``release`` section sets the
        small-cell threshold and the finest admin level the data's sensitivity allows.
    top : int
        Fan charts for this many areas (the most urgent first).
    scenario : str, optional
        The name of a scenario logged under the run (``forecast scenario --run RUN --name NAME``),
        shown beside the baseline.
    tracking_uri : str, optional
    progress : callable, optional
        Called with a short description of each step.

    Returns
    -------
    ForecastReport

    Raises
    ------
    ForecastError
        An unknown run or one of another kind, a model trained without triggers, an unknown
        scenario (the message lists the run's scenarios), a missing card input or backtest, a
        policy without a release section, or data finer than the sensitivity allows to publish.
    """
    step = progress or (lambda _: None)
    step("reading the run and its data")
    train = read_run(run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri, artifacts=True)
    given = None if previous is None else read_previous(previous)  # a bad file fails before the slow steps
    what_if = None if scenario is None else read_scenario(run_id, scenario, tracking_uri=tracking_uri)
    rules = load_policy() if policy is None else policy
    release_checks(rules)
    if cube is None:
        cube = train.tags.get("cube_path")
        if not cube:
            raise ForecastError(f"run {run_id} does not say which cube it was trained on; pass --cube")
    data = load_cube(cube) if isinstance(cube, (str, Path)) else cube
    manifest = train.json("manifest.json")
    sensitivity = manifest_sensitivity(manifest) or "unknown"
    check_admin_level(data, sensitivity, rules)

    step("forecasting from the last month")
    trained, _ = load_trained(run_id, tracking_uri=tracking_uri)
    # what drives each forecast (LightGBM, SARIMAX with covariates): the headline's reasons
    explanation = trained.explain(data) if has_contributions(trained.fitted) else None
    ranking = rank_areas(trained, data, run_id, trigger=trigger, lead=lead, explanation=explanation)

    step("reading the model card and its backtest")
    inputs = resolve_card_inputs(card_inputs, train.tags.get("model", ""), run_id)
    evidence = read_card_evidence(run_id, tracking_uri=tracking_uri, train=train)
    card = card_from_evidence(evidence, inputs, policy=rules)
    status = release_status(run_id, tracking_uri=tracking_uri)

    step("comparing with the previous report")
    earlier = given if given is not None else previous_report(run_id, ranking.trigger.name, ranking.lead,
                                                              ranking.month, tracking_uri=tracking_uri)

    step("drawing the map and the charts")
    return assemble_report(evidence, card, ranking, trained, data, status=status, policy=rules,
                           sensitivity=sensitivity, previous=earlier, boundaries=boundaries, top=top, manifest=manifest,
                           scenario=None if what_if is None else scenario_section(what_if, ranking.trigger.name,
                                                                                  ranking.lead))


def log_report(report: ForecastReport, path: str | Path | None = None, *, tracking_uri: str | None = None) -> str:
    """Log the headline table (and the rendered file at ``path``) to the report's train run.

    Sets the run's tag ``reported`` so that the next :func:`build_report` finds it. The headline
    holds probabilities, forecasts and thresholds, no observed counts; forecasts of 1 to k-1
    people are withheld like counts (:func:`forecast.policy.publishable`), and the gate's
    published-output check reads it like any other artifact.

    Returns
    -------
    str
        The headline's artifact path.
    """
    m = report.meta
    artifact = headline_artifact(m["trigger"], m["lead"], m["data_month"])
    headline = publishable(report.ranking[HEADLINE_COLUMNS])  # forecasts of 1 to k-1 people withheld
    return log_headline(m["run_id"], headline, artifact, path, tracking_uri=tracking_uri)
