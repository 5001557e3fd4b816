"""``forecast report``: the forecast report of a trained model, as HTML or PDF."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


class ReportFormat(str, Enum):
    html = "html"
    pdf = "pdf"


@app.command("report")
def report_command(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train --triggers ...` (with a "
                                     "backtest of the same spec and cube, and models/cards/<model>.yaml).")],
    out_file: Annotated[Path, typer.Option("--out", help="The report file to write.")] = Path("out/report.html"),
    fmt: Annotated[ReportFormat | None, typer.Option("--format", help="html (one self-contained file) or pdf "
                                                    "(A4); default: from the --out suffix.")] = None,
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[int | None, typer.Option(help="Lead time in months (default: 3 when the trigger has it).")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast from (default: the cube the "
                                              "model was trained on).")] = None,
    boundaries: Annotated[Path | None, typer.Option("--boundaries", help="COD GeoJSON of the areas, for the map "
                                                    "(without it: a table by admin1).")] = None,
    previous: Annotated[Path | None, typer.Option("--previous", help="Headline CSV of the previous report "
                                                  "(default: the latest earlier report of this model in MLflow).")] = None,
    card_inputs: Annotated[Path | None, typer.Option("--card-inputs", help="Model card inputs (default: "
                                                     "models/cards/<model>.yaml).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy for small cells and admin levels "
                                                "(default: ethics/policy.yaml).")] = None,
    top: Annotated[int, typer.Option(help="Fan charts for this many districts.")] = 6,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Show this scenario of the run beside the "
                                                 "baseline (`forecast scenario --run RUN --name NAME`).")] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log the report and its headline to the train run "
                                      "(what the next report compares with).")] = True,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Write the forecast report of a trained model for anticipatory-action teams.

    In order: the districts expected to cross the trigger within the lead time (probability,
    expected arrivals and 80% interval) and what changed since the previous report; a map
    (with --boundaries) or a table by admin1; fan charts of the most urgent districts; the
    backtest track record; who the model serves less well; the data and what it cannot say;
    the model card summary and release status. With --scenario, a logged scenario beside the
    baseline: per district the probability and expected arrivals now and in the scenario. A
    model that is not released carries
    "NOT RELEASED — for review only" on every page.
    """
    from rich.status import Status

    from forecast.policy import load_policy
    from forecast.pipeline import build_report, log_report
    from forecast.report import write_report

    screen = console.out
    try:
        with Status("building the report...", console=console.err) as status:
            report = build_report(run, cube=cube, trigger=trigger, lead=lead, boundaries=boundaries,
                                  previous=previous, card_inputs=card_inputs,
                                  policy=None if policy is None else load_policy(policy), top=top,
                                  scenario=scenario,
                                  tracking_uri=tracking_uri, progress=lambda text: status.update(f"report: {text}..."))
            status.update("report: writing...")
            path = write_report(report, out_file, None if fmt is None else fmt.value)
            if log:
                log_report(report, path, tracking_uri=tracking_uri)
    except ForecastError as error:
        fail(error)
    m = report.meta
    if m["watermark"]:
        screen.print(f"[bold red]{m['watermark']}[/]: the report says so on every page", soft_wrap=True)
    else:
        screen.print(m["release"], soft_wrap=True, highlight=False, markup=False)
    names = ", ".join(f"{r.area_name} ({r.probability:.0%})" for r in report.headline.itertuples()) or "none"
    screen.print(f"{len(report.headline)} district(s) expected to cross '{m['trigger']}' within {m['lead']} months "
                  f"of {m['data_month']}: {names}", soft_wrap=True, highlight=False, markup=False)
    said = totals_line(report)
    if said:
        screen.print(said, soft_wrap=True, highlight=False, markup=False)
    if report.scenario is not None:
        s = report.scenario
        screen.print(f"beside scenario {s['name']}: {s['moved']['started']} district(s) would start signalling, "
                     f"{s['moved']['stopped']} would stop", soft_wrap=True, highlight=False, markup=False)
    screen.print(f"report: {path.resolve()}", soft_wrap=True, highlight=False, markup=False)


def totals_line(report, regions: int = 3) -> str | None:
    """The report's totals in one line: the country's expected total and interval, then the
    ``regions`` largest regions' (None when the report has no totals)."""
    from forecast.report import people

    totals = getattr(report, "totals", None)
    if totals is None or totals.empty:
        return None
    m, k = report.meta, report.k
    country = totals[totals["level"] == "national"].iloc[0]
    interval = ("no interval" if country["lower"] != country["lower"] else
                f"80% interval {people(country['lower'], k)} to {people(country['upper'], k)}"
                + (", from the regions' errors: wide" if country["calibrated_by"] == "finer" else ""))
    largest = totals[totals["level"] == "admin1"].nlargest(regions, "expected")
    named = ", ".join(f"{r.name} {people(r.expected, k)}" for r in largest.itertuples())
    return (f"totals, {m['window']}: {country['name']} {people(country['expected'], k)} {m['target']} expected "
            f"({interval}; the districts' means added up)" + (f"; largest regions: {named}" if named else ""))


@app.command("report-check")
def report_check_command(
    report: Annotated[Path, typer.Argument(help="An HTML report written by `forecast report`.", show_default=False)],
    png: Annotated[Path | None, typer.Option("--png", help="Where to keep the screenshot (default: beside the "
                                             "report, .png).")] = None,
    released: Annotated[bool, typer.Option("--released/--unreleased", help="Whether the report's model is released "
                                           "(then no watermark may show) or not (then it must, on every page).")] = False,
    headline: Annotated[list[str] | None, typer.Option("--headline", help="An area name the headline must show "
                                                       "(repeatable).")] = None,
    expect: Annotated[list[str] | None, typer.Option("--expect", help="Any other text the page must show, e.g. "
                                                     "the window's months or 'Compared with the report on data to "
                                                     "2023-11' (repeatable).")] = None,
) -> None:
    """Open a report in headless Chromium: keep a screenshot, check what the page shows.

    Checks the headline section and its areas, the map or admin1 table, the reading guide, the
    age of the data, that no folder of a machine shows, any --expect text, and the release
    status: an unreleased model's watermark on every printed page and its red banner in the
    screenshot, or no watermark at all for a released one. Exit 0 when all are there, 1 when
    something is missing (each named), 2 when the report or Chromium cannot be used.
    """
    from forecast.report import check_report

    if not report.is_file():
        fail(ForecastError(f"report {report} not found: write one with forecast report --run RUN --out {report}"))
    target = png or report.with_suffix(".png")
    try:
        result = check_report(report, target, expect_watermark=not released, headline=headline or [],
                              expect=expect or [])
    except ForecastError as error:
        fail(error)
    screen = console.out
    screen.print(f"screenshot: {result.screenshot.resolve()}  ({result.pages} printed page(s), {result.images} "
                  f"image(s); watermark on every page: {'yes' if result.watermark else 'no'})", soft_wrap=True,
                  highlight=False, markup=False)
    if result.ok:
        screen.print("report renders: headline, map or admin1 table, reading guide, data age, no machine path, "
                     "release status as expected" + (f", and the {len(expect)} expected text(s)" if expect else ""),
                     soft_wrap=True, highlight=False, markup=False)
        return
    for problem in result.problems:
        screen.print(f"  missing: {problem}", soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(code=1)
