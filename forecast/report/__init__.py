"""What anticipatory-action teams read and publish: the forecast report (one self-contained
HTML page or an A4 PDF), the trigger card, and the exports for HDX (HXL, CSV, GeoJSON).

A report is about one ``forecast train --triggers ...`` run: which districts are expected to
cross their trigger in the window's months (probability, the likeliest month and its expected
arrivals a month, like the threshold, and why), one ranking numbered without gaps, what changed
since the previous report, how old each source's data are, a map keyed to the ranking, fan
charts of the most urgent districts with the trigger window and each month's probability, the model's
track record, who it serves less well, what the data cannot say, and the model card summary
with the release status. A model the gate has not released carries "NOT RELEASED — for review
only" on every page.

The run-id based calls are :mod:`forecast.pipeline`'s (they read MLflow through
:mod:`forecast.tracking`)::

    from forecast.pipeline import build_report, log_report
    report = build_report(train_run_id, boundaries="som_adm2.geojson")
    report.headline                                # the areas expected to cross, most urgent first
    write_report(report, "out/report.html")        # or .pdf
    log_report(report, "out/report.html")          # to the train run; the next report compares with it

Here, with no tracking store involved, a report is ranked, assembled and rendered from plain
inputs (a trained model, a cube, the :class:`~forecast.ethics.Evidence` and the model card)::

    from forecast.report import assemble_report, rank_areas, to_html
    ranking = rank_areas(trained, cube, run_id)
    report = assemble_report(evidence, card, ranking, trained, cube, status=status, policy=policy,
                             sensitivity="high")
    to_html(report)

:func:`check_report` opens a written report in headless Chromium as a reader would.
:func:`assemble_trigger_card` and :func:`build_export` do the same from plain inputs for the
trigger card and the exports (by run id: ``forecast.pipeline.build_trigger_card``,
``forecast.pipeline.export_run``).
"""

from forecast.report._browser import RenderCheck, check_report, find_chromium
from forecast.report._age import data_age, months_between, window_months
from forecast.report._build import (
    HEADLINE_COLUMNS,
    NEXT_ON_RANKING,
    ForecastReport,
    Ranking,
    assemble_report,
    check_admin_level,
    headline_rows,
    one_ranking,
    rank_areas,
)
from forecast.report._export import (
    EXPORT_FORMATS,
    NOT_RELEASED_MARK,
    Export,
    build_export,
    check_export_format,
    write_export,
)
from forecast.report._changes import MIN_CHANGE, compare, headline_artifact, headline_month, read_headline, read_previous
from forecast.report._reasons import NO_BREAKDOWN, area_reasons, reason_for
from forecast.report._render import people, to_html, to_pdf, write_report
from forecast.report._scenario import scenario_section
from forecast.report._trigger_card import CARD_ROUTE, STAGES, TriggerCard, assemble_trigger_card

__all__ = [
    # build
    "rank_areas", "Ranking", "assemble_report", "ForecastReport", "check_admin_level", "HEADLINE_COLUMNS",
    "headline_rows", "one_ranking", "NEXT_ON_RANKING",
    # when: the window's months, and how old the data are
    "window_months", "data_age", "months_between",
    # the reason of each flagged district: its largest drivers, said with facts from the data
    "area_reasons", "reason_for", "NO_BREAKDOWN",
    # the previous report
    "compare", "headline_artifact", "headline_month", "read_headline", "read_previous", "MIN_CHANGE",
    # a scenario beside the baseline
    "scenario_section",
    # render
    "to_html", "to_pdf", "write_report", "people",
    # check in a browser
    "check_report", "find_chromium", "RenderCheck",
    # exports people can publish: HXL, CSV, GeoJSON with HDX metadata
    "build_export", "write_export", "Export", "check_export_format", "EXPORT_FORMATS", "NOT_RELEASED_MARK",
    # the trigger card: the trigger, its backtest, ready / set / go per district
    "assemble_trigger_card", "TriggerCard", "STAGES", "CARD_ROUTE",
]
