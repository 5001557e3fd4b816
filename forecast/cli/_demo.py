"""``forecast demo`` (``make demo``): run the pipeline on the shipped Somalia sample and say where everything is.

The whole pipeline: ingest the real sample (PRMN flows, FAO FSNAU district-month covariates:
rainfall, NDVI, prices, insecurity; IPC rounds; district attributes) into a cube with its
manifest, quarantine and withheld values; backtest LightGBM and per-area ETS (statsmodels)
against the baselines on rolling origins, evaluate the anticipatory-action trigger
(models/triggers.yaml; the model's own probabilities beside a logistic classifier's) and its
fairness across groups of districts, and log every run to MLflow; train the model and log it as
an MLflow model; rank districts for action from the last month; ask what a failed last season
would change (a drought scenario: each district's rain at its driest year in ten, logged under
the train run); write the model card from those runs; answer the review as clearly marked DEMO
reviewers and put the model through the release gate (ethics/policy.yaml), which registers it
only when every condition passes; write the forecast report (HTML and PDF) that an
anticipatory-action team reads, with the scenario beside the baseline, its trigger card and the exports an
HDX page would carry (HXL and GeoJSON with their metadata). The model is the one a team would
have in use: backtested and trained a month ago, on the data to the month before the last; its
report of that month comes first, then the month's new data arrive and the second report says
what changed. Runs go to MLFLOW_TRACKING_URI when it is set, else to a sqlite store in the
output folder.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app
from forecast.cli._report import totals_line

#: The shipped specs and triggers, by name: the demo runs the same from a checkout and from an
#: installed toolkit (forecast.policy.models_folder).
SPEC, ETS, TRIGGERS = "lightgbm_median", "ets", "default"
#: The demo's scenario: the last season failed in every district (each month's rain at the
#: district's 10th percentile of the same month in earlier years: a one-year-in-ten dry season).
DROUGHT = ("rainfall=p10",)
#: The trigger's probability routes in the demo: the model's own (the one that ranks) and the
#: logistic classifier to compare it with. The LightGBM classifier route (``forecast backtest
#: --triggers``'s default adds it) would be 72 more fits: 14 of the demo's seconds on two cores.
ROUTES = ("forecast", "logistic")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's outputs.")] = Path("out"),
    quick: Annotated[bool, typer.Option("--quick", help="The same pipeline on fewer origins (3 scored, 6 calibrating; "
                                        "no ETS): a check that an install works, in about 1 minute instead of 1.5-2. "
                                        "Its numbers rest on too few origins to read.")] = False,
) -> None:
    """Run the whole pipeline on the shipped Somalia sample and say where everything is.

    Ingest, backtest (LightGBM, per-area ETS and five baselines), trigger and fairness
    evaluation, training, prioritization, a drought scenario, model card, a DEMO review and the release gate,
    the forecast report (HTML and PDF) with what changed since the month before, the trigger
    card and the HXL and GeoJSON exports. MLflow runs go to MLFLOW_TRACKING_URI when it is
    set, else to OUT/mlflow.db with artifacts in OUT/mlartifacts. The sample is high-sensitivity:
    every file and folder the demo makes is its owner's alone.
    """
    with ExitStack() as scope:
        _demo(out_dir, quick, scope)


def _demo(out_dir: Path, quick: bool, scope: ExitStack) -> None:
    from forecast.datasets import ingest_sample, sample_files
    from forecast.ethics import NOT_RELEASED
    from forecast.io import make_folder, owner_only_process
    from forecast.policy import publishable

    out = out_dir.resolve()
    files = sample_files()
    console.out.rule("[bold]displacement-forecast demo: Somalia (UNHCR PRMN, FAO FSNAU, IPC)")
    console.out.print("1/8 ingest: " + ", ".join(p.name for k, p in files.items() if k not in ("areas", "aliases"))
                  + f" with gazetteer {files['areas'].name}")
    clock = _Clock()
    clock.start("ingest")
    with console.out.status("ingesting the Somalia sample..."):
        result = ingest_sample()
        level = result.manifest.sensitivity.level  # the sample is high: OUT, if the demo makes it, is 0700
        make_folder(out, level)  # before the MLflow store and every output go into it
        scope.enter_context(owner_only_process(level))  # MLflow's files too: no umask lets others read them
        paths = result.write(out / "ingest")
    console.print_cube(result.cube, result.manifest)
    # the model in use was made a month ago, on the data to the month before the last: its report
    # of that month comes first, then this month's data arrive and the next report compares
    then, then_path, manifest_then = _month_before(result, out / "ingest")
    clock.done()

    import pandas as pd

    from forecast.backtest import RollingOrigin, backtest
    from forecast.io import write_csv
    from forecast.models import load_spec
    from forecast.pipeline import assess, train
    from forecast.tracking import log_artifact, log_backtest, log_trained, prepare_store
    from forecast.triggers import load_triggers

    given = os.environ.get("MLFLOW_TRACKING_URI")
    store = given or f"sqlite:///{out / 'mlflow.db'}"
    # artifacts beside the store, not in ./mlruns of whatever folder the demo runs from
    prepare_store(store, "demo", artifacts=None if given else out / "mlartifacts")
    spec, ets = load_spec(SPEC), load_spec(ETS)
    folds = RollingOrigin(n_origins=3, calibration_origins=6) if quick else RollingOrigin(n_origins=12,
                                                                                          calibration_origins=12)
    if quick:
        console.out.print("--quick: 3 scored origins and 6 calibrating, no ETS: a check of the install, not "
                          "numbers to read", soft_wrap=True)
    month_then, month_now = (f"{pd.Timestamp(c['time'].values[-1]):%Y-%m}" for c in (then, result.cube))
    triggers = load_triggers(TRIGGERS)
    console.out.print(f"2/8 backtest on the data to {month_then} (the model in use was made a month ago; "
                      f"{month_now}'s data arrive at step 4): {spec.name}"
                      f"{'' if quick else f', per-area {ets.name} (statsmodels)'} and five baselines, {folds.n_origins} scored origins (+{folds.calibration_origins} calibrating "
                      f"intervals), horizons 1-6, target {spec.target}; "
                      f"trigger '{triggers[0].name}' ({triggers[0].describe()}), routes {' and '.join(ROUTES)}, "
                      "and its fairness across groups of districts",
                      soft_wrap=True)
    clock.start("backtest")
    with console.bar() as bar:
        bt = backtest(then, [spec] if quick else [ets, spec], folds=folds, progress=console.tracker(bar))
    with console.out.status("evaluating the trigger and its fairness..."):
        evaluation, fairness, _ = assess(bt, then, triggers, routes=ROUTES)
        run_id = log_backtest(bt, manifest=manifest_then, experiment="demo", triggers=evaluation, fairness=fairness)
    console.print_backtest(bt)
    console.print_triggers(evaluation)
    console.print_fairness(fairness)
    clock.done()
    console.out.print(f"3/8 train {spec.name} on every month to {month_then} (with the trigger), its intervals "
                      f"calibrated on step 2's {folds.n_origins} scored origins, and log it as an MLflow model",
                      soft_wrap=True)
    clock.start("train")
    with console.bar() as bar:  # step 2 forecast those origins already: nothing is fitted twice
        trained = train(then, spec, triggers=triggers, progress=console.tracker(bar), calibration=bt)
    with console.out.status("logging the model..."):
        train_run, model_uri = log_trained(trained, then, manifest=manifest_then, experiment="demo",
                                           cube_path=then_path)
    clock.done()
    lead = 3 if 3 in triggers[0].leads else triggers[0].leads[0]
    console.out.print(f"4/8 {month_now}'s data arrive; prioritize: districts ranked for action within {lead} months "
                      f"of {month_now}, by the same model", soft_wrap=True)
    clock.start("prioritize")
    ranking = trained.prioritize(result.cube, triggers[0].name, lead)
    ranking_path = out / "prioritize" / f"prioritize_{train_run[:8]}_{triggers[0].name}_lead{lead}.csv"
    make_folder(ranking_path.parent, level)
    write_csv(publishable(ranking), ranking_path, index=False, sensitivity=level)  # 1 to k-1 people withheld
    log_artifact(train_run, ranking_path, "prioritize")
    console.print_ranking(ranking, triggers[0], str(result.cube["time"].values[-1])[:7], 10)
    clock.done()

    from forecast.pipeline import run_scenario
    from forecast.tracking import log_scenario

    last = pd.Timestamp(result.cube["time"].values[-1])
    season = f"{last - pd.DateOffset(months=2):%Y-%m}..{last:%Y-%m}"
    console.out.print(f"5/8 scenario: what if the last season ({season}) had failed everywhere, each district's rain "
                      "as low as in its driest year in ten? The same model forecasts again from the same month",
                      soft_wrap=True)
    clock.start("scenario")
    with console.out.status("forecasting the drought scenario..."):
        drought = run_scenario(trained, result.cube, DROUGHT, months=season, trigger=triggers[0].name, lead=lead,
                               name="drought")
        scenario_run = log_scenario(train_run, drought)
    console.print_scenario(drought, 8)
    for note in drought.notes:
        console.out.print(f"note: {note}", soft_wrap=True, highlight=False, markup=False)
    clock.done()

    from forecast.pipeline import build_card, write_card
    from forecast.policy import shipped_file

    console.out.print(f"6/8 model card of the trained model, from its MLflow runs and models/cards/{spec.name}.yaml")
    clock.start("model card")
    card = build_card(train_run, shipped_file(spec.name, subfolder="cards", kind="model card input"))
    card_sha, card_uris = write_card(card, train_run)
    card_dir = out / "model_card"
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / "model_card.md").write_text(card.to_markdown(), encoding="utf-8")
    (card_dir / "model_card.html").write_text(card.to_html(), encoding="utf-8")
    console.out.print(f"card SHA-256 {card_sha} (what reviewers will sign); status: not reviewed", soft_wrap=True)
    clock.done()

    console.out.print("7/8 review and release gate: DEMO reviewers answer the checklists and sign with DEMO keys; the "
                  "gate judges every condition under ethics/policy.yaml (its keyring root the DEMO keys', approved "
                  "in the audit log)")
    reviews, log = out / "ethics" / "reviews", out / "ethics" / "audit.log.jsonl"
    clock.start("review and gate")
    outcome = _demo_review_and_release(train_run, reviews, log)
    console.print_gate(outcome.report)
    unmet = outcome.report.unmet
    if outcome.released:
        console.out.print(f"RELEASED as {outcome.name} version {outcome.version}: {outcome.model_uri}", soft_wrap=True)
    else:
        console.out.print(f"REFUSED: {len(unmet)} condition(s) unmet, nothing registered; every prediction and ranking "
                      f"from this model says '{NOT_RELEASED}'", soft_wrap=True)
    clock.done()

    console.out.print(f"8/8 forecast report for anticipatory-action teams (trigger '{triggers[0].name}', lead {lead}), "
                      "its trigger card and the exports to publish (HXL, GeoJSON)", soft_wrap=True)
    clock.start("report")
    report_paths = _demo_report(train_run, out / "report", lead, drought.name, then_path, paths["cube"])
    published = _demo_publish(train_run, out, paths["cube"], lead)
    clock.done()
    console.out.print(clock.summary() + "\n", soft_wrap=True)

    console.out.print("[bold]where things are[/]", soft_wrap=True)
    console.out.print(f"  forecast report:   {report_paths['html']}  (open it in a browser; A4 PDF: {report_paths['pdf']})",
                  soft_wrap=True)
    console.out.print(f"                     a month earlier: {report_paths['before']}  (what the latest report "
                      "compares with)", soft_wrap=True)
    console.out.print(f"  trigger card:      {published['card']}  (and .md; forecast trigger-card --run {train_run} "
                      f"--cube {paths['cube']} --tracking-uri {store})", soft_wrap=True)
    console.out.print(f"  exports (HDX):     {published['hxl']}  (HXL; GeoJSON: {published['geojson']})", soft_wrap=True)
    console.out.print(f"                     forecast export --run {train_run} --format hxl --cube {paths['cube']} "
                      f"--out {published['hxl']} --tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  cube (NetCDF):     {paths['cube']}  (the model was trained on {then_path.name})", soft_wrap=True)
    console.out.print(f"  manifest (JSON):   {paths['manifest']}", soft_wrap=True)
    console.out.print(f"  quarantine (CSV):  {paths['quarantine']}  ({len(result.quarantine):,} rows, each with its reason)", soft_wrap=True)
    console.out.print(f"  MLflow runs:       {store}  (backtest run {run_id}; experiment 'demo')", soft_wrap=True)
    console.out.print(f"                     browse: .venv/bin/mlflow ui --backend-store-uri {store}", soft_wrap=True)
    console.out.print(f"  trigger evaluation: MLflow backtest run {run_id}: triggers/ and fairness/ artifacts, "
                  "metrics hit_rate_l3_forecast_surge, ...", soft_wrap=True)
    console.out.print(f"  ranked districts:  {ranking_path}", soft_wrap=True)
    console.out.print(f"                     forecast prioritize --run {train_run} --tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  drought scenario:  MLflow run {scenario_run}, under the train run, and in the report", soft_wrap=True)
    console.out.print(f"                     forecast scenario --run {train_run} {' '.join('--set ' + s for s in DROUGHT)} "
                      f"--months {season} --tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  trained model:     {model_uri}", soft_wrap=True)
    console.out.print(f"                     forecast predict --model {model_uri} --cube {paths['cube']} "
                  f"--tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  model card:        {card_dir / 'model_card.html'} (and .md; logged to train run "
                  f"{train_run}, tag card_sha256)", soft_wrap=True)
    console.out.print(f"  review (DEMO):     {reviews / (train_run + '.yaml')}  (answered by demo reviewers)", soft_wrap=True)
    console.out.print(f"  audit log:         {log}  (forecast audit verify --log {log} --policy {log.parent / 'policy.yaml'};"
                  f" forecast review keyring list --log {log} --policy {log.parent / 'policy.yaml'})", soft_wrap=True)
    console.out.print(f"  release gate:      forecast release {train_run} --name {DEMO_NAME} --check --tracking-uri "
                  f"{store} --reviews {reviews} --log {log} --policy {log.parent / 'policy.yaml'}", soft_wrap=True)
    console.out.print(f"\nlook at it: forecast info {paths['cube']}; make report-check (a Chromium screenshot of the "
                  "report)", soft_wrap=True)


class _Clock:
    """Each step's wall time, said as it ends and added up at the end: what a user waited on."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.times: dict[str, float] = {}
        self._step, self._start = "", self.began

    def start(self, step: str) -> None:
        self._step, self._start = step, time.perf_counter()

    def done(self) -> None:
        self.times[self._step] = time.perf_counter() - self._start
        console.out.print(f"done in {self.times[self._step]:.1f} s\n")

    def summary(self) -> str:
        """``'time: 212 s in all; ingest 2 s, backtest 131 s, ...'``."""
        steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in self.times.items())
        return f"[bold]time[/]: {time.perf_counter() - self.began:.0f} s in all; {steps}"


def _month_before(result, folder: Path):
    """The cube to the month before the last, saved beside the full one, with its manifest."""
    import pandas as pd

    from forecast.cube import cube_hash, save_cube

    then = result.cube.isel(time=slice(0, -1))
    month = f"{pd.Timestamp(then['time'].values[-1]):%Y-%m}"
    path = folder / f"cube_{month}.nc"
    save_cube(then, path)
    manifest = result.manifest.model_dump(mode="json")
    manifest.update(cube_hash=cube_hash(then), time_range=[manifest["time_range"][0], month],
                    dims={**manifest["dims"], "time": int(then.sizes["time"])})
    return then, path, manifest


def _demo_report(train_run: str, folder: Path, lead: int, scenario: str, cube_then: Path,
                 cube_now: Path) -> dict[str, Path]:
    """The model's report on the data to the month before the last (HTML), then on the newest
    data, with the scenario beside it and what changed since the first (HTML with the map, and
    PDF); both logged to the run, so the second finds the first."""
    from forecast.datasets import sample_files
    from forecast.pipeline import build_report, log_report
    from forecast.policy import shipped_file
    from forecast.report import to_pdf, write_report

    areas = sample_files()["areas"]
    inputs = shipped_file(SPEC, subfolder="cards", kind="model card input")
    with console.out.status("building the report...") as status:
        before = build_report(train_run, cube=cube_then, lead=lead, boundaries=areas, card_inputs=inputs,
                              progress=lambda text: status.update(f"report on the data to the month before: {text}..."))
        before_html = write_report(before, folder / f"report_{before.meta['data_month']}.html")
        log_report(before, before_html)
        report = build_report(train_run, cube=cube_now, lead=lead, boundaries=areas, card_inputs=inputs,
                              scenario=scenario, progress=lambda text: status.update(f"report: {text}..."))
        html = write_report(report, folder / "report.html")
        pdf = to_pdf(report, folder / "report.pdf")
        log_report(report, html)
    for r in (before, report):
        names = ", ".join(f"{a.area_name} ({a.probability:.0%}, likeliest {a.likeliest_month})"
                          for a in r.headline.head(6).itertuples())
        more = f" and {len(r.headline) - 6} more" if len(r.headline) > 6 else ""
        console.out.print(f"data to {r.meta['data_month']}, window {r.meta['window']}: {len(r.headline)} district(s) "
                          f"expected to cross the trigger: {names or 'none'}{more}; {len(r.unassessed)} unassessed",
                          soft_wrap=True)
    said = totals_line(report)
    if said:
        console.out.print(said, soft_wrap=True, highlight=False, markup=False)
    changes = report.changes
    if changes is not None:
        counts = changes["change"].value_counts()
        said = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no district started or stopped signalling"
        console.out.print(f"what changed since the report on data to {report.previous['month']}: {said}", soft_wrap=True)
    console.out.print(f"{report.meta['watermark'] or report.meta['release']} on every page", soft_wrap=True)
    return {"html": html, "pdf": pdf, "before": before_html}


#: An illustrative cost of one district's activation (USD), for the trigger card's yearly cost.
DEMO_COST = 100_000


def _demo_publish(train_run: str, out: Path, cube: Path, lead: int) -> dict[str, Path]:
    """The trigger card (HTML and Markdown, logged to the run) and the exports an HDX page
    would carry: HXL tables and a GeoJSON ranking, each folder with its metadata."""
    from forecast.datasets import sample_files
    from forecast.pipeline import build_trigger_card, export_run, write_trigger_card

    with console.out.status("writing the trigger card and the exports...") as status:
        card = build_trigger_card(train_run, cube=cube, cost_per_activation=DEMO_COST)
        card_paths = write_trigger_card(card, out / "trigger_card")
        status.update("exporting the forecasts (HXL, GeoJSON)...")
        hxl = export_run(train_run, "hxl", out / "export" / "hxl", cube=cube, lead=lead)
        geo = export_run(train_run, "geojson", out / "export" / "geojson", cube=cube, lead=lead,
                         boundaries=sample_files()["areas"])
    for row in card.backtest:
        if not row["available"]:
            continue
        if not row["activations"]:
            said = (f"no activation in the backtest ({row['events']} crossings over {row['years']:.1f} years, none "
                    f"signalled {row['lead']} month(s) ahead)")
        else:
            said = (f"{row['activations_per_year']:.1f} activations a year in the backtest (return period "
                    f"{row['return_period']:.1f} years a district), hit rate {row['hit_rate']:.0%}, false alarms "
                    f"{row['false_alarm_ratio']:.0%}; at an illustrative USD {DEMO_COST:,} an activation, about "
                    f"USD {row['yearly_cost']:,.0f} a year")
        console.out.print(f"trigger card, lead {row['lead']}: {said}", soft_wrap=True, highlight=False)
    stages = ", ".join(f"{s['stage']} (lead {s['lead']}): {s['signalling']}" for s in card.stages if s["available"])
    console.out.print(f"districts signalling now, {stages}; exports: {len(hxl) + len(geo)} files", soft_wrap=True,
                      highlight=False)
    return {"card": card_paths["html"], "hxl": hxl[0].parent, "geojson": geo[0].parent}


DEMO_NAME = "somalia-arrivals-demo"
DEMO_REVIEWERS = (("DEMO technical reviewer", "technical"), ("DEMO ethics reviewer", "ethics"))


def _demo_keyring(folder: Path, log: Path):
    """DEMO keys for the DEMO reviewers (``folder/demo_keys``, made once), declared in the log's
    keyring (the ethics reviewer's key first: the root), and the real policy with that root
    pinned (``folder/policy.yaml``: the shipped file, its ``keyring_root`` line changed), approved
    by the DEMO ethics reviewer. Returns each reviewer's key and the policy."""
    import re

    from forecast.ethics import PublicKey, add_member, approve_policy, generate_key, keyring, load_private_key
    from forecast.policy import ethics_file, load_policy

    keys: dict[str, Path] = {}
    ethics = next(name for name, role in DEMO_REVIEWERS if role == "ethics")
    for name, role in sorted(DEMO_REVIEWERS, key=lambda reviewer: reviewer[1] != "ethics"):
        keys[name] = folder / "demo_keys" / f"{role}.pem"
        public = (PublicKey.of(load_private_key(keys[name]).public_key()) if keys[name].exists()
                  else generate_key(keys[name]))
        if public.key_id not in keyring(log).members:
            add_member(log, name, [role], keys[name].parent / f"{public.key_id}.pub", key=keys[ethics])
    text = ethics_file("policy.yaml").read_text(encoding="utf-8")
    path = folder / "policy.yaml"
    path.write_text(re.sub(r"(?m)^(\s*keyring_root:).*$", rf"\g<1> {keyring(log).root}", text, count=1),
                    encoding="utf-8")
    policy = load_policy(path)
    approved = keyring(log).approved
    if approved is None or approved.sha256 != policy.hash():
        approve_policy(log, policy, by=ethics, key=keys[ethics])
    return keys, policy


def _demo_review_and_release(train_run: str, reviews: Path, log: Path):
    """Answer every checklist item as DEMO reviewers would (marked as such in every answer),
    sign as both roles with DEMO keys, and put the model through the real gate under the real
    policy (its keyring root pinned to the DEMO keys', approved in the log)."""
    import yaml

    from forecast.pipeline import release, sign, start_review

    keys, policy = _demo_keyring(log.parent, log)

    path = start_review(train_run, reviews_dir=reviews, restart=(reviews / f"{train_run}.yaml").exists())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in data["items"]:
        who = next(name for name, role in DEMO_REVIEWERS if role == item["answered_by"])
        item.update(answer="yes", answered_by_name=who,
                    evidence="DEMO ANSWER, not a real review: the demo shows the mechanics of the gate")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for name, role in DEMO_REVIEWERS:
        sign(train_run, name, role, "approve", "DEMO sign-off, not a real review", log=log, reviews_dir=reviews,
             key=keys[name])
    return release(train_run, DEMO_NAME, by="make demo", reviews_dir=reviews, log=log, policy=policy)
