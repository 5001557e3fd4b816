"""The forecast report: assembled and rendered from plain inputs with no tracking store (forecast.report),
and by run id on a real tiny pipeline in MLflow (forecast.pipeline.build_report and `forecast report`)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.backtest import quantile_column
from forecast.cli import _console as cli
from forecast.cli import app
from forecast.errors import ForecastError
from forecast.ethics import NOT_RELEASED, ReleaseStatus, card_from_evidence
from forecast.pipeline import build_report, log_report, release
from forecast.policy import load_policy
from forecast.report import (
    assemble_report,
    check_admin_level,
    compare,
    people,
    rank_areas,
    read_previous,
    to_html,
    write_report,
)

from _pipeline import card_inputs, copy_run, hand_made_evidence, policy_file, review_and_sign, tiny_pipeline

SECTIONS = ["headline", "changes", "totals", "map", "fans", "track-record", "fairness", "data", "model-card"]


def _small_cells(cube):
    """Area XY0101 recorded 3 people in its last observed month and 2 the month before: small cells.
    Area XY0206 has had no record for the last 9 months: unassessed (stale)."""
    cube = cube.copy(deep=True)
    arrivals = cube["arrivals"].values
    areas = list(cube["area"].values)
    small, stale = areas.index("XY0101"), areas.index("XY0206")
    arrivals[small, -1], arrivals[small, -2] = 3.0, 2.0
    arrivals[stale, -9:] = np.nan
    cube["arrivals_observed"].values[stale, -9:] = False
    return cube


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from forecast.datasets import make_panel

    return tiny_pipeline(tmp_path_factory.mktemp("report"), cube=_small_cells(make_panel(12, 48, seed=9,
                                                                                         with_flows=True)))


@pytest.fixture(scope="module")
def boundaries(pipeline):
    """Square districts on a grid, as a COD-style GeoJSON."""
    features = []
    for i, pcode in enumerate(pipeline["cube"]["area"].values.astype(str)):
        x, y = i % 4, i // 4
        ring = [[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"admin2Pcode": pcode, "admin2Name_en": f"District {pcode[2:]}",
                                        "admin1Pcode": pcode[:4], "admin1Name_en": f"Region {pcode[2:4]}"}})
    path = pipeline["root"] / "districts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report(pipeline, boundaries):
    return build_report(pipeline["train"], cube=pipeline["cube"], card_inputs=card_inputs(), boundaries=boundaries,
                        policy=pipeline["policy"], tracking_uri=pipeline["uri"])


def _build(pipeline, run=None, **kw):
    kw.setdefault("cube", pipeline["cube"])
    kw.setdefault("policy", pipeline["policy"])
    return build_report(run or pipeline["train"], card_inputs=card_inputs(), tracking_uri=pipeline["uri"], **kw)


def _row(html: str, table_id: str, text: str) -> str:
    """The HTML of the row of table ``table_id`` that contains ``text``."""
    table = html[html.index(f'id="{table_id}"'):]
    table = table[:table.index("</table>")]
    rows = [r for r in table.split("<tr") if text in r]
    assert rows, f"no row with {text!r} in {table_id}"
    return rows[0]


# --- what an AA team reads ------------------------------------------------------------------

def test_report_has_every_section_in_the_order_an_aa_team_reads_them(report):
    html = to_html(report)
    positions = [html.index(f'id="{s}"') for s in SECTIONS]
    assert positions == sorted(positions)
    assert 'id="map-image"' in html and "data:image/png;base64," in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained


def test_the_report_shows_region_totals_beside_the_districts_and_they_add_up_to_the_country(pipeline, report):
    totals, lead, k = report.totals, report.meta["lead"], report.k
    regions, country = totals[totals["level"] == "admin1"].set_index("group"), totals[totals["level"] == "national"].iloc[0]
    assert list(totals["level"]) == ["admin1", "admin1", "national"]  # regions first, the country last
    assert country["expected"] == pytest.approx(regions["expected"].sum())
    assert country["n_areas"] == 12 and regions["n_areas"].tolist() == [6, 6]
    assert regions["signals"].sum() == country["signals"] == len(report.headline)
    forecasts = rank_areas(pipeline["trained"], pipeline["cube"], pipeline["train"]).forecasts
    assert country["expected"] == pytest.approx(forecasts.loc[forecasts["horizon"] <= lead, "mean"].sum())
    # what was observed over as many months: XY02 has a district without them, and says so
    cube = pipeline["cube"]
    recent = cube["arrivals"].values[:, -lead:]
    xy02 = [i for i, a in enumerate(cube["area"].values) if a.startswith("XY02")]
    assert regions.loc["XY02", "observed"] == pytest.approx(np.nansum(recent[xy02]))
    seen = int(np.isfinite(recent[xy02]).sum())
    assert (regions.loc["XY02", "recorded"], regions.loc["XY02", "cells"]) == (seen, 6 * lead) and seen <= 5 * lead
    assert country["observed"] == pytest.approx(np.nansum(recent))
    html = to_html(report)
    row = _row(html, "totals-table", str(country["name"]))
    assert people(country["expected"], k) in row and people(country["lower"], k) in row
    assert f"({seen} of {6 * lead} district-months recorded)" in _row(html, "totals-table", "XY02")
    assert "the districts' mean forecasts added up" in html


def test_report_headline_lists_exactly_the_areas_whose_probability_reaches_the_trigger(report):
    ranked = report.ranking[report.ranking["rank"].notna()]
    expected = set(ranked.loc[ranked["probability"] >= report.meta["probability"], "area"])
    assert set(report.headline["area"]) == expected
    assert report.headline["rank"].is_monotonic_increasing
    html = to_html(report)
    for row in report.headline.itertuples():
        cells = _row(html, "headline-table", row.area)
        assert f"{row.probability:.0%}" in cells and people(row.expected, report.k) in cells


def test_report_of_an_unreleased_run_carries_the_watermark(report):
    assert not report.released
    html = to_html(report)
    assert html.count(NOT_RELEASED) >= 4  # title, fixed overlay, banner, status, page header (print)
    assert 'data-watermark="true"' in html and 'id="release-banner"' in html
    assert f'@top-center {{ content: "{NOT_RELEASED}"' in html  # repeated on every printed page


def test_report_of_a_released_run_has_no_watermark(pipeline, tmp_path):
    env = copy_run(pipeline, tmp_path)
    review_and_sign(env)
    outcome = release(env["run"], env["name"], by="releaser", tracking_uri=env["uri"], reviews_dir=env["reviews"],
                      log=env["log"], policy=env["policy"])
    assert outcome.released, [c.check for c in outcome.report.unmet]
    report = _build(pipeline, env["run"])
    html = to_html(report)
    assert report.released and NOT_RELEASED not in html and "watermark" not in html.split("<body>")[1]
    assert f"released: {env['name']} version {outcome.version}" in html


def test_pdf_repeats_the_watermark_on_every_a4_page(report, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    path = write_report(report, tmp_path / "report.pdf")
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    assert len(reader.pages) >= 2
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - 595.3) < 1 and abs(height - 841.9) < 1  # A4 in points
        assert "NOT RELEASED" in page.extract_text()


# --- publication rules ----------------------------------------------------------------------

def test_people_shows_small_counts_as_below_k_and_missing_as_a_dash():
    assert [people(v, 5) for v in (0, 1, 4.4, 5, 12345.6, np.nan, None)] == ["0", "<5", "<5", "5", "12,346", "-", "-"]


def test_small_counts_are_suppressed_in_the_report(report):
    html = to_html(report)
    cells = _row(html, "last-table", "District 0101")
    assert "&lt;5" in cells and ">3<" not in cells
    assert report.data["last"].set_index("area").loc["XY0101", "last_value"] == 3  # the data keep it
    # nothing the report prints as a number of people lies in 1..4
    shown = re.findall(r'<td class="n p[^"]*">([0-9][0-9,]*)', html)
    assert len(shown) > 10
    assert not [s for s in shown if 0 < int(s.replace(",", "")) < 5]


def test_unassessed_areas_are_shown_as_unassessed_never_as_zero_or_ranked(report):
    row = report.ranking.set_index("area").loc["XY0206"]
    assert pd.isna(row["rank"]) and row["status"].startswith("stale")
    assert "XY0206" not in set(report.headline["area"])
    cells = _row(to_html(report), "last-table", "District 0206")
    assert "unassessed: stale" in cells


def test_without_boundaries_the_areas_are_a_table_grouped_by_admin1(pipeline):
    report = _build(pipeline)
    html = to_html(report)
    assert "map" not in report.figures and 'id="region-table"' in html
    assert "unassessed" in _row(html, "region-table", "District 0206")


def test_data_finer_than_the_sensitivity_allows_is_refused(pipeline, tmp_path):
    strict = load_policy(policy_file(tmp_path / "strict.yaml",
                                     **{"release.admin_level.finest": {"low": 3, "moderate": 3, "high": 1, "severe": 1}}))
    with pytest.raises(ForecastError, match=r"admin2 at sensitivity high.*nothing finer than admin1"):
        _build(pipeline, policy=strict)


# --- what changed -------------------------------------------------------------------------

def test_compare_names_new_and_ended_signals_and_large_moves_only():
    before = pd.DataFrame({"area": list("ABCDEFG"), "probability": [0.2, 0.7, 0.30, 0.5, np.nan, 0.20, 0.45],
                           "signal": [False, True, False, True, False, False, False]})
    now = pd.DataFrame({"area": list("ABCDEFG"), "area_name": list("abcdefg"), "region": "r",
                        "probability": [0.6, 0.3, 0.35, 0.55, 0.2, 0.30, 0.36],
                        "signal": [True, False, False, True, False, False, False]})
    changes = compare(now, before).set_index("area")["change"].to_dict()
    # C and D moved 5 points, G 9: not a change; F moved 10 points up
    assert changes == {"A": "new signal", "B": "signal ended", "F": "up", "E": "newly assessed"}
    assert compare(now.assign(probability=[0.6, 0.3, 0.35, 0.55, 0.2, 0.30, 0.30]), before).set_index("area").loc[
        "G", "change"] == "down"


def test_the_next_report_says_what_changed_since_the_logged_one(pipeline, tmp_path):
    earlier = _build(pipeline, cube=pipeline["cube"].isel(time=slice(0, -1)))
    log_report(earlier, tracking_uri=pipeline["uri"])
    later = _build(pipeline)
    assert later.previous["month"] == earlier.meta["data_month"] < later.meta["data_month"]
    assert later.changes is not None
    html = to_html(later)
    assert f"data to {earlier.meta['data_month']}" in html
    first = _build(pipeline, cube=pipeline["cube"].isel(time=slice(0, -5)))
    assert first.previous is None and "first report" in to_html(first)


def test_what_changed_is_against_the_run_s_own_line_by_data_month_never_the_latest_made(pipeline, tmp_path):
    from forecast.report import HEADLINE_COLUMNS, headline_artifact
    from forecast.tracking import log_headline

    uri, client = pipeline["uri"], pipeline["client"]
    own = _build(pipeline, cube=pipeline["cube"].isel(time=slice(0, -1)))
    log_report(own, tracking_uri=uri)
    month, trigger, lead = own.meta["data_month"], own.meta["trigger"], own.meta["lead"]
    # a run of the same model outside this line reports the same month, later by the clock, with other numbers
    decoy = copy_run(pipeline, tmp_path, "-decoy")
    log_headline(decoy["run"], own.ranking[HEADLINE_COLUMNS].assign(probability=0.0, signal=False),
                 headline_artifact(trigger, lead, month), tracking_uri=uri)
    later = _build(pipeline)
    assert later.previous["run_id"] == pipeline["train"] and later.previous["month"] == month
    assert "this run's own earlier report" in later.previous["chosen"]
    expected = compare(later.ranking, own.ranking)
    pd.testing.assert_frame_equal(later.changes, expected)
    html = to_html(later)
    assert f"data to {month}" in html and "this run&#39;s own earlier report" in html
    for row in expected.itertuples():
        assert row.change in _row(html, "changes-table", row.area_name)
    # a model retrained on newer data names the run it succeeds: its report compares with that line
    successor = copy_run(pipeline, tmp_path, "-next")
    client.set_tag(successor["run"], "previous_run", pipeline["train"])
    following = _build(pipeline, successor["run"])
    assert following.previous["run_id"] == pipeline["train"] and "the run it succeeds" in following.previous["chosen"]


def test_a_train_run_records_its_data_month_and_the_run_it_succeeds(pipeline, tmp_path):
    from forecast.tracking import log_trained

    client = pipeline["client"]
    first = client.get_run(pipeline["train"]).data.tags
    assert first["data_month"] == "2019-12"
    earlier_cube = pipeline["cube"].isel(time=slice(0, -3))
    experiment = client.get_experiment(client.get_run(pipeline["train"]).info.experiment_id).name
    older, _ = log_trained(pipeline["trained"], earlier_cube, experiment=experiment, tracking_uri=pipeline["uri"])
    assert client.get_run(older).data.tags["data_month"] == "2019-09"
    newer, _ = log_trained(pipeline["trained"], pipeline["cube"].isel(time=slice(0, -1)), experiment=experiment,
                           tracking_uri=pipeline["uri"])
    # the latest data month before its own, whichever run was made last
    assert client.get_run(newer).data.tags["previous_run"] == older
    named, _ = log_trained(pipeline["trained"], pipeline["cube"], experiment=experiment, tracking_uri=pipeline["uri"],
                           previous_run=pipeline["train"])
    assert client.get_run(named).data.tags["previous_run"] == pipeline["train"]


# --- when, how many, how sure, how old ---------------------------------------------------------

def test_the_headline_names_the_window_s_months_and_each_district_s_likeliest_month(report):
    from forecast.report import window_months

    m = report.meta
    assert m["data_month"] == "2019-12" and m["window"] == window_months("2019-12", m["lead"])
    assert window_months("2023-12", 3) == "January to March 2024"
    assert window_months("2023-11", 3) == "December 2023 to February 2024"
    window = {f"{pd.Period('2019-12', 'M') + h}" for h in range(1, m["lead"] + 1)}
    table = report.table
    assert len(table) and table["likeliest_month"].isin(window).all()
    # the window's probability is its likeliest month's (the months' probabilities are recalibrated alike)
    np.testing.assert_allclose(table["probability"], table["month_probability"], atol=1e-9)
    html = to_html(report)
    assert m["window"] in html
    for row in table.itertuples():
        cells = _row(html, "headline-table", row.area)
        month_words = pd.Period(row.likeliest_month, "M").strftime("%B %Y")
        assert month_words in cells and people(row.month_expected, report.k) in cells
        assert people(row.threshold, report.k) in cells


def test_the_likeliest_month_s_forecast_is_per_month_like_the_threshold(pipeline, report):
    trained = pipeline["trained"]
    forecasts = trained.predict(pipeline["cube"]).set_index(["area", "horizon"])
    for row in report.table.itertuples():
        h = (pd.Period(row.likeliest_month, "M") - pd.Period("2019-12", "M")).n
        one_month = forecasts.loc[(row.area, h)]
        lo, mid, hi = (quantile_column(q) for q in (0.1, 0.5, 0.9))
        assert row.month_expected == pytest.approx(one_month[mid])
        assert row.month_lower == pytest.approx(one_month[lo]) and row.month_upper == pytest.approx(one_month[hi])
        # the window's sum is kept for the record, and is not what the page shows beside the threshold
        assert row.expected >= row.month_expected - 1e-9


def test_one_ranking_numbered_without_gaps_districts_expected_to_cross_first(report):
    ranked = report.ranking[report.ranking["rank"].notna()]
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    signals = ranked["signal"].astype(bool).to_numpy()
    assert not (np.diff(signals.astype(int)) > 0).any()  # every signal before every non-signal
    table = report.table
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    html = to_html(report)
    assert html.count('id="headline-table"') == 1 and "Also high on the ranking" not in html
    # and the map writes the same numbers on the same districts
    from forecast.report._build import _map_keys

    assert _map_keys(report.ranking) == {r.area: str(int(r.rank)) for r in table.itertuples()}


def test_the_fan_charts_mark_the_trigger_window_and_each_month_s_probability(pipeline):
    from forecast.report._figures import draw_fans

    trained, cube = pipeline["trained"], pipeline["cube"]
    ranking = rank_areas(trained, cube, pipeline["train"], lead=3)
    areas = ranking.table["area"].head(4).tolist()
    fig = draw_fans(cube, ranking.forecasts, ranking.table, areas, trained.spec, k=5, outlook=ranking.outlook,
                    lead=ranking.lead)
    for ax, area in zip(fig.axes, areas):
        months = ranking.outlook[ranking.outlook["area"] == area].sort_values("horizon")
        assert [t.get_text() for t in ax.texts] == [f"{pd.Period(m, 'M').strftime('%b %Y')}: {p:.0%}"
                                                    for m, p in zip(months["month"], months["probability"])]
        assert "trigger window (3 months)" in ax.get_legend_handles_labels()[1]
        assert "trigger threshold (a month)" in ax.get_legend_handles_labels()[1]
    rank = int(ranking.table.set_index("area").loc[areas[0], "rank"])
    assert fig.axes[0].get_title().startswith(f"{rank}. ")


def test_the_map_writes_each_headline_district_s_rank_on_it(pipeline, report, boundaries):
    from forecast.report._build import _map_keys
    from forecast.report._figures import draw_map

    keys = _map_keys(report.ranking)
    fig = draw_map(boundaries, report.ranking, pipeline["trained"].triggers[0], report.meta["lead"],
                   report.meta["data_month"], labels=keys)
    written = sorted(t.get_text() for t in fig.axes[0].texts)
    assert written == sorted(keys.values()) and len(written) == len(report.table)


def test_a_banner_says_when_the_newest_data_are_older_than_the_lead_time(pipeline):
    from forecast.report import data_age

    cube = pipeline["cube"]
    manifest = {"files": [{"path": "/secret/folder/prmn.csv", "format": "flows", "columns_kept": {"date": "d"}},
                          {"path": "/secret/attributes.csv", "format": "attributes", "columns_kept": {"pcode": "p"}}]}
    fresh = data_age(cube, manifest, "arrivals", pd.Timestamp("2020-02-10"), 3)
    assert fresh["newest"] == "2019-12" and fresh["months_old"] == 2 and not fresh["stale"]
    flows = [v for v in ("arrivals", "departures", "returns") if v in cube]
    assert fresh["sources"][0] == {"file": "prmn.csv", "format": "flows", "variables": flows, "last_month": "2019-12"}
    assert fresh["sources"][1]["last_month"] is None  # attributes have no months
    old = data_age(cube, manifest, "arrivals", pd.Timestamp("2021-06-01"), 3)
    assert old["months_old"] == 18 and old["stale"]


def test_the_report_shows_the_data_age_banner_the_reading_guide_and_plain_fairness(pipeline, report):
    html = to_html(report)
    assert 'id="reading-guide"' in html and "80% interval" in html and "Return period" in html
    assert 'id="data-age-table"' in html
    stale = 'id="data-age-banner"' in html
    assert stale == report.data["age"]["stale"]  # made years after 2019-12: the banner shows
    assert stale
    # fairness for this reader: plain sentences; the policy's raw limits stay in the model card
    fairness = html[html.index('id="fairness"'):html.index('id="data"')]
    assert "Policy limits exceeded" not in fairness and "max_difference" not in fairness and "min_ratio" not in fairness


def test_no_published_file_names_a_folder_of_the_machine(pipeline, report, tmp_path):
    from forecast.pipeline import build_card

    html = to_html(report)
    card = build_card(pipeline["train"], card_inputs(), tracking_uri=pipeline["uri"])
    forbidden = [str(Path.home()), str(Path.cwd()), str(pipeline["root"]), str(Path(__file__).resolve().parents[1])]
    for text in (html, card.to_markdown(), card.to_html()):
        assert not [f for f in forbidden if f in text]
        assert not re.search(r"(?<![\w.])/(tmp|home|root|work|Users)/", text)
    assert report.meta["policy"] == pipeline["policy"].label and "(sha256 " in report.meta["policy"]


def test_the_report_shows_a_logged_scenario_beside_the_baseline(pipeline, files, tmp_path):
    from forecast.pipeline import run_scenario
    from forecast.tracking import log_scenario

    result = run_scenario(pipeline["trained"], pipeline["cube"], ["rainfall=-90%", "conflict_events=x3"], lead=3,
                          name="dry")
    log_scenario(pipeline["train"], result, tracking_uri=pipeline["uri"], small_cell=1)
    report = _build(pipeline, scenario="dry")
    shown = report.scenario
    assert shown["name"] == "dry" and shown["shocks"] == [str(s) for s in result.shocks] and shown["rows"]
    # the numbers are the scenario's own, district by district
    table = result.table.set_index("area")
    for row in shown["rows"]:
        assert row["baseline_probability"] == pytest.approx(table.loc[row["area"], "baseline_probability"])
        assert row["scenario_probability"] == pytest.approx(table.loc[row["area"], "scenario_probability"])
    started = ((table["scenario_signal"].astype(bool)) & ~(table["baseline_signal"].astype(bool))).sum()
    assert shown["moved"]["started"] == started
    html = to_html(report)
    assert "What if: scenario dry" in html and _row(html, "scenario-table", shown["rows"][0]["area_name"])
    assert 'id="scenario"' not in to_html(_build(pipeline))  # only when asked for
    with pytest.raises(ForecastError, match="has no scenario 'wet'; its scenarios: dry"):
        _build(pipeline, scenario="wet")
    out = _cli(pipeline, "--run", pipeline["train"], *files, "--scenario", "dry", "--no-log", "--out",
               str(tmp_path / "r.html"))
    assert out.exit_code == 0, out.output
    assert "beside scenario dry:" in out.output and "What if: scenario dry" in (tmp_path / "r.html").read_text()


# --- the command line -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(pipeline):
    """The cube and the card inputs as files, as a user passes them to the command."""
    import yaml

    from forecast.cube import save_cube

    cube, inputs = pipeline["root"] / "cube.nc", pipeline["root"] / "card.yaml"
    save_cube(pipeline["cube"], cube)
    inputs.write_text(yaml.safe_dump(card_inputs().model_dump(mode="json")), encoding="utf-8")
    return ["--cube", str(cube), "--card-inputs", str(inputs)]


def _cli(pipeline, *args):
    cli.out.width = 250
    return CliRunner().invoke(app, ["report", "--tracking-uri", pipeline["uri"], "--policy",
                                    str(pipeline["policy_path"]), *args])


def test_cli_writes_html_and_pdf_and_logs_the_headline(pipeline, files, tmp_path):
    for suffix in ("html", "pdf"):
        result = _cli(pipeline, "--run", pipeline["train"], *files, "--out", str(tmp_path / f"r.{suffix}"))
        assert result.exit_code == 0, result.output
        assert NOT_RELEASED in result.output and f"r.{suffix}" in result.output
        text = " ".join(result.output.split())
        # 12 districts in 2 regions over 6 calibration origins: too few totals for an interval, said so
        assert re.search(r"totals, \w+ to \w+ \d{4}: Synthetic Country [\d,]+ arrivals expected \(no interval; "
                         r"the districts' means added up\); largest regions: Region 0\d [\d,]+, Region 0\d", text), text
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    logged = {a.path for a in pipeline["client"].list_artifacts(pipeline["train"], "report")}
    assert "report/r.html" in logged and any(p.startswith("report/headline_") for p in logged)


@pytest.mark.parametrize("args, message", [
    (["--run", "0123456789abcdef"], "no MLflow train run '0123456789abcdef'"),
    (["--run", "BACKTEST"], "is a backtest run; a forecast report is about a run of `forecast train"),
    (["--run", "TRAIN", "--cube", "none.nc"], "none.nc: no such cube file"),
    (["--run", "TRAIN", "FILES", "--previous", "missing.csv"], "previous report missing.csv not found"),
    (["--run", "TRAIN", "FILES", "--previous", "BAD"],
     "not a report headline CSV: columns ['area', 'probability', 'signal'] missing"),
    (["--run", "TRAIN", "--cube", "CUBE", "--card-inputs", "nowhere.yaml"], "model card inputs nowhere.yaml not found"),
    (["--run", "TRAIN", "FILES", "--trigger", "flood"], "has no trigger 'flood'; it has spike"),
    (["--run", "TRAIN", "FILES", "--format", "docx"], "Invalid value for '--format'"),
])
def test_cli_errors_are_clear_and_never_a_traceback(pipeline, files, tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    swap = {"TRAIN": [pipeline["train"]], "BACKTEST": [pipeline["backtest"]], "BAD": [str(bad)], "FILES": files,
            "CUBE": [files[1]]}
    result = _cli(pipeline, *[x for a in args for x in swap.get(a, [a])], "--no-log")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message in text and "Traceback" not in text


# --- seen as a person sees it: headless Chromium -------------------------------------------

def _report_at(pipeline, boundaries, cube, previous=(None, None)):
    """The report of the tiny model with its trigger activating at 30%, so that districts signal."""
    import dataclasses

    from forecast.tracking import read_card_evidence

    trained = pipeline["trained"]
    trained = dataclasses.replace(trained, triggers=[t.model_copy(update={"probability": 0.3}) for t in trained.triggers])
    evidence = read_card_evidence(pipeline["train"], tracking_uri=pipeline["uri"])
    card = card_from_evidence(evidence, card_inputs(), policy=pipeline["policy"])
    ranking = rank_areas(trained, cube, pipeline["train"], lead=3)
    return assemble_report(evidence, card, ranking, trained, cube, status=ReleaseStatus(pipeline["train"], False),
                           policy=pipeline["policy"], sensitivity="high", previous=previous, boundaries=boundaries)


def _chromium():
    from forecast.report import find_chromium

    if find_chromium() is None:
        if os.environ.get("FORECAST_REQUIRE_CHROMIUM"):
            pytest.fail("FORECAST_REQUIRE_CHROMIUM is set but no Chromium was found (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium); .ci/run installs it")


def _artifacts(tmp_path):
    """Where screenshots are kept: $FORECAST_ARTIFACTS (CI keeps them) or the test's folder."""
    folder = os.environ.get("FORECAST_ARTIFACTS")
    return Path(folder) if folder else tmp_path


def test_chromium_shows_the_headline_the_map_and_the_watermark_on_every_page(pipeline, boundaries, tmp_path):
    _chromium()
    from forecast.report import check_report

    # two reports of one model, a month apart: the second says what changed since the first
    earlier = _report_at(pipeline, boundaries, pipeline["cube"].isel(time=slice(0, -1)))
    report = _report_at(pipeline, boundaries, pipeline["cube"],
                        previous=(earlier.ranking, {"source": "by hand", "month": earlier.meta["data_month"]}))
    assert report.changes is not None and report.data["age"]["stale"]
    html = write_report(report, tmp_path / "report.html")
    table = report.table
    flagged = report.headline
    expect = [
        f"Headline: districts expected to cross the trigger in {report.meta['window']}",  # the window's months
        *[f"{int(r.rank)} {r.area_name}" for r in table.itertuples()],  # one ranking, 1, 2, 3... no gap
        *[pd.Period(r.likeliest_month, "M").strftime("%B %Y") for r in flagged.itertuples()],  # likeliest month
        *[" ".join(r.reason.split()[:2]) for r in flagged.itertuples()],  # and a reason per flagged district
        "the numbers are the ranks in the headline table",  # the labelled map's key
        f"the trigger window ({report.meta['window']}, shaded)",  # the fan charts' windows
        f"The newest data are from {report.data['age']['newest']}",  # the data-age banner
        f"Compared with the report on data to {earlier.meta['data_month']}",  # what changed
    ]
    names = report.headline["area_name"].head(3).tolist()
    result = check_report(html, _artifacts(tmp_path) / "report_unreleased.png", expect_watermark=True, headline=names,
                          expect=expect)
    assert result.ok, result.problems
    assert result.watermark and result.pages >= 2 and result.images >= 3  # map, fan charts, skill
    assert len(flagged) and flagged["reason"].str.len().gt(0).all()
    # and the checker is not blind: the same page judged as a released model's fails, a missing text
    # is named, and a machine's folder on the page is caught
    assert not check_report(html, tmp_path / "again.png", expect_watermark=False).ok
    leaky = tmp_path / "leaky.html"
    leaky.write_text(html.read_text(encoding="utf-8").replace("</footer>", f"<p>{tmp_path}</p></footer>"), encoding="utf-8")
    problems = check_report(leaky, tmp_path / "leaky.png", expect_watermark=True, expect=["no such words"]).problems
    assert "expected text not shown: 'no such words'" in problems
    assert any(p.startswith("a folder of a machine is shown") for p in problems)


def test_chromium_shows_no_watermark_for_a_released_model_and_the_region_table_without_a_map(pipeline, tmp_path):
    _chromium()
    from forecast.report import check_report

    env = copy_run(pipeline, tmp_path)
    review_and_sign(env)
    assert release(env["run"], env["name"], by="releaser", tracking_uri=env["uri"], reviews_dir=env["reviews"],
                   log=env["log"], policy=env["policy"]).released
    html = write_report(_build(pipeline, env["run"]), tmp_path / "released.html")
    result = check_report(html, _artifacts(tmp_path) / "report_released.png", expect_watermark=False)
    assert result.ok, result.problems
    assert not result.watermark and result.banner_pixels < 2000


def test_report_check_command_exits_1_naming_what_is_missing(report, tmp_path):
    _chromium()
    html = write_report(report, tmp_path / "report.html")
    result = CliRunner().invoke(app, ["report-check", str(html), "--released", "--expect", "no such words"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "a released model's report shows the NOT RELEASED watermark" in text
    assert "expected text not shown: 'no such words'" in text
    assert (tmp_path / "report.png").is_file()
    result = CliRunner().invoke(app, ["report-check", str(html)])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(app, ["report-check", str(tmp_path / "nope.html")]).exit_code == 2


def test_fairness_findings_quote_the_worst_and_best_judged_groups_of_the_report_lead(report):
    table = report.fairness["table"]
    assert set(table["lead"].astype(int)) == {report.meta["lead"]}
    assert report.fairness["findings"], "the synthetic panel has judgeable groups (access, region, settlement)"
    for finding in report.fairness["findings"]:
        column = {"access": "access", "region": "region", "settlement": "settlement"}[finding["grouping"]]
        status = table.loc[table["group_column"] == column, "status"].astype(str)
        judged = table.loc[status[status.eq("ok") | (status.str.startswith("too small for")
                                                     & ~status.str.contains("hit_rate"))].index]
        assert finding["worst_rate"] == pytest.approx(judged["hit_rate"].min())
        assert finding["best_rate"] == pytest.approx(judged["hit_rate"].max())
        assert f"{finding['worst_rate']:.0%} of the {finding['worst_events']} crossings" in finding["sentence"]
    gaps = [f["gap"] for f in report.fairness["findings"]]
    assert gaps == sorted(gaps, reverse=True)
    html = to_html(report)
    assert all(f["sentence"].replace("'", "&#39;") in html for f in report.fairness["findings"])


# --- from plain inputs: no tracking store ----------------------------------------------------

def test_a_report_is_assembled_from_a_hand_made_bundle_without_any_tracking_store(pipeline, tmp_path):
    """The trained model and the cube in memory, the evidence and the release status by hand."""
    evidence = hand_made_evidence()
    card = card_from_evidence(evidence, card_inputs())
    trained, cube = pipeline["trained"], pipeline["cube"]
    ranking = rank_areas(trained, cube, "t" * 32, lead=1)
    assert (ranking.trigger.name, ranking.lead, ranking.month) == ("spike", 1, "2019-12")
    before = ranking.table.assign(probability=0.0, signal=False)
    report = assemble_report(evidence, card, ranking, trained, cube, status=ReleaseStatus("t" * 32, False),
                             policy=pipeline["policy"], sensitivity="high", previous=(before, {"source": "by hand", "month": "2019-11", "run_id": None}))
    assert report.meta["watermark"] == NOT_RELEASED and report.meta["backtest_run_id"] == "b" * 32
    assert list(report.track["skill"]["horizon"]) == [1, 2, 3]
    assert report.track["trigger"]["hit_rate"] == pytest.approx(0.667)
    assert [f["grouping"] for f in report.fairness["findings"]] == ["access"]
    assert set(report.changes["change"]) <= {"new signal", "up", "newly assessed"}
    assert (report.track["skill_reference"], report.track["target_kind"]) == ("seasonal_naive", "flow")
    html = to_html(report)
    assert NOT_RELEASED in html and "2019-11" in html and 'id="region-table"' in html
    assert "The release gate judges skill against seasonal naive, its reference for arrivals (a flow)." in html
    released = assemble_report(evidence, card, ranking, trained, cube, status=ReleaseStatus("t" * 32, True, "m", "2"),
                               policy=pipeline["policy"], sensitivity="high")
    assert released.released and released.changes is None and "released: m version 2" in to_html(released)


def test_the_track_record_names_the_gate_s_skill_reference_for_the_target_s_kind():
    from forecast.report._build import _track

    card = card_from_evidence(hand_made_evidence(), card_inputs())
    policy = load_policy()
    for target, reference, kind in (("idp_stock", "naive", "stock"), ("arrivals", "seasonal_naive", "flow"),
                                    (None, "seasonal_naive", "flow")):
        track = _track(card, "tiny_lgbm", "spike", 1, policy, target)
        assert (track["skill_reference"], track["target_kind"]) == (reference, kind), target


def test_the_admin_level_rule_is_the_policy_s_and_a_previous_file_is_read_without_a_store(pipeline, tmp_path):
    policy = pipeline["policy"]  # high: admin2 or coarser
    cube = pipeline["cube"]
    check_admin_level(cube, "high", policy)
    with pytest.raises(ForecastError, match="cannot tell whether admin level"):
        check_admin_level(cube, "unknown", policy)
    with pytest.raises(ForecastError, match=r"admin3 at sensitivity high.*nothing finer than admin2"):
        check_admin_level(cube.assign_attrs(admin_level=3), "high", policy)
    path = tmp_path / "headline_2019-11_spike_l3.csv"
    pd.DataFrame({"area": ["XY0101"], "probability": [0.5], "signal": [True]}).to_csv(path, index=False)
    table, meta = read_previous(path)
    # named by its file name only: a published report names no folder of the machine
    assert meta == {"source": path.name, "month": "2019-11", "run_id": None,
                    "chosen": f"the headline file {path.name}, given by hand"} and len(table) == 1
