"""The trigger card of a train run by its id: read the run, its backtest and its data, then assemble.

tracking reads (the run, the evidence behind it, the trained model, the release status), the
trained model forecasts from the cube's last month at leads 6, 3 and 1, :mod:`forecast.report`
assembles and renders the card, and tracking logs the files back to the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from forecast.cube import load_cube
from forecast.errors import ForecastError
from forecast.policy import load_policy, manifest_sensitivity, release_checks
from forecast.report import STAGES, TriggerCard, assemble_trigger_card, check_admin_level
from forecast.pipeline._release import release_status
from forecast.tracking import load_trained, log_artifact, read_card_evidence, read_run

__all__ = ["build_trigger_card", "write_trigger_card", "TRIGGER_CARD_FOLDER"]

_PURPOSE = "a trigger card is about a run of `forecast train --triggers models/triggers.yaml`"
#: Where the card's files go in the train run: ``trigger_card/<trigger>/trigger_card.{html,md}``.
TRIGGER_CARD_FOLDER = "trigger_card"


def build_trigger_card(run_id: str, *, trigger: str | None = None, leads: Sequence[int] | None = None,
                       cost_per_activation: float | None = None, cube=None, policy=None,
                       backtest_run_id: str | None = None, tracking_uri: str | None = None) -> TriggerCard:
    """Build the trigger card of a ``forecast train --triggers ...`` run.

    Parameters
    ----------
    run_id : str
        The train run; its model forecasts "ready / set / go" from the cube's last month.
    trigger : str, optional
        One of the model's triggers (default: its first).
    leads : sequence of int, optional
        The trigger's leads to show from the backtest (default: all).
    cost_per_activation : float, optional
        Adds the expected yearly cost (activations per year x this cost).
    cube : xarray.Dataset, str or Path, optional
        The data to forecast from; default: the cube the run was trained on (tag ``cube_path``).
    policy : Policy, optional
        Default: :func:`forecast.policy.load_policy`; the data must be publishable under it at
        their sensitivity (as for the forecast report).
    backtest_run_id : str, optional
        The evidence; default: the latest backtest of the same spec on the same data.
    tracking_uri : str, optional

    Returns
    -------
    TriggerCard
        ``card.to_html()``, ``card.to_markdown()``; :func:`write_trigger_card` writes and logs it.

    Raises
    ------
    ForecastError
        An unknown run or one of another kind, a model trained without triggers or without this
        trigger, a backtest that did not evaluate the same trigger, data finer than the policy
        publishes at their sensitivity, a lead the trigger lacks, a cost that is not positive.

    Examples
    --------
    >>> card = build_trigger_card(run_id, cost_per_activation=250_000)  # doctest: +SKIP
    >>> write_trigger_card(card, "out/trigger_card")                    # doctest: +SKIP
    """
    train = read_run(run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri, artifacts=True)
    rules = load_policy() if policy is None else policy
    release_checks(rules)
    if cube is None:
        cube = train.tags.get("cube_path")
        if not cube:
            raise ForecastError(f"run {run_id} does not say which cube it was trained on; pass --cube")
    name = Path(cube).name if isinstance(cube, str | Path) else ""
    data = load_cube(cube) if isinstance(cube, str | Path) else cube
    check_admin_level(data, manifest_sensitivity(train.json("manifest.json")) or "unknown", rules)

    trained, _ = load_trained(run_id, tracking_uri=tracking_uri)
    if not trained.triggers:
        raise ForecastError(f"run {run_id} was trained without triggers; a trigger card is about one: "
                            "forecast train --triggers models/triggers.yaml")
    spec = trained.triggers[0] if trigger is None else next((t for t in trained.triggers if t.name == trigger), None)
    if spec is None:
        raise ForecastError(f"run {run_id} has no trigger {trigger!r}; it has "
                            f"{', '.join(t.name for t in trained.triggers)}")
    evidence = read_card_evidence(run_id, backtest_run_id=backtest_run_id, tracking_uri=tracking_uri, train=train)
    rankings = {lead: trained.prioritize(data, spec.name, lead) for _, lead in STAGES if lead in spec.leads}
    return assemble_trigger_card(evidence, spec, rankings, data, status=release_status(run_id, tracking_uri=tracking_uri),
                                 policy=rules, data_name=name, leads=leads, cost_per_activation=cost_per_activation)


def write_trigger_card(card: TriggerCard, out: str | Path = "out/trigger_card", *, log: bool = True,
                       tracking_uri: str | None = None) -> dict[str, Path]:
    """Write ``trigger_card.html`` and ``trigger_card.md`` into ``out`` and log both to the card's
    train run under ``trigger_card/<trigger>/``.

    Returns
    -------
    dict
        ``html`` and ``markdown``: the files written.
    """
    paths = card.write(out)
    if log:
        folder = f"{TRIGGER_CARD_FOLDER}/{card.definition['name']}"
        for path in paths.values():
            log_artifact(card.meta["run_id"], path, folder, tracking_uri=tracking_uri)
    return paths
