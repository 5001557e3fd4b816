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

SECTIONS = ["headline", "changes", "map", "fans", "track-record", "fairness", "data", "model-card"]


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
    before = pd.DataFrame({"area": list("ABCDE"), "probability": [0.2, 0.7, 0.30, 0.5, np.nan],
                           "signal": [False, True, False, True, False]})
    now = pd.DataFrame({"area": list("ABCDE"), "area_name": list("abcde"), "region": "r",
                        "probability": [0.6, 0.3, 0.35, 0.55, 0.2], "signal": [True, False, False, True, False]})
    changes = compare(now, before).set_index("area")["change"].to_dict()
    assert changes == {"A": "new signal", "B": "signal ended", "E": "newly assessed"}


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


def test_chromium_shows_the_headline_the_map_and_the_watermark_on_every_page(report, tmp_path):
    _chromium()
    from forecast.report import check_report

    html = write_report(report, tmp_path / "report.html")
    names = report.headline["area_name"].head(3).tolist()
    result = check_report(html, _artifacts(tmp_path) / "report_unreleased.png", expect_watermark=True, headline=names)
    assert result.ok, result.problems
    assert result.watermark and result.pages >= 2 and result.images >= 3  # map, fan charts, skill
    # and the checker is not blind: the same page judged as a released model's fails
    assert not check_report(html, tmp_path / "again.png", expect_watermark=False).ok


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
    result = CliRunner().invoke(app, ["report-check", str(html), "--released"])
    assert result.exit_code == 1 and "a released model's report shows the NOT RELEASED watermark" in result.output
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
    assert meta == {"source": str(path), "month": "2019-11", "run_id": None} and len(table) == 1
