"""The trigger card (`forecast trigger-card`) on a real tiny pipeline in MLflow, and the trigger's
geographic condition (act when N districts of one region cross) scored per region."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.ethics import NOT_RELEASED, ReleaseStatus
from forecast.pipeline import build_trigger_card, write_trigger_card
from forecast.report import assemble_trigger_card
from forecast.tracking import read_card_evidence
from forecast.triggers import (
    RegionRule,
    TriggerSpec,
    area_regions,
    load_triggers,
    regional_metrics,
    regional_signals,
)

from _pipeline import ROOT, TRIGGERS, tiny_pipeline

REGIONAL = TRIGGERS + """\
  - name: spike_region
    kind: percentile
    value: 80
    floor: 50
    min_history: 6
    leads: [1, 3]
    probability: 0.4
    region: {min_areas: 2}
"""
COST = 250_000.0
STALE = "XY0206"


def _stale(cube):
    """Area XY0206 has had no record for its last 9 months: unassessed (stale) from the last month."""
    cube = cube.copy(deep=True)
    i = list(cube["area"].values).index(STALE)
    cube["arrivals"].values[i, -9:] = np.nan
    cube["arrivals_observed"].values[i, -9:] = False
    return cube


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("trigger_card")
    pipeline = tiny_pipeline(root, cube=_stale(make_panel(12, 48, seed=9, with_flows=True)), triggers_yaml=REGIONAL)
    save_cube(pipeline["cube"], root / "cube.nc")
    card = build_trigger_card(pipeline["train"], trigger="spike_region", cube=pipeline["cube"],
                              policy=pipeline["policy"], cost_per_activation=COST, tracking_uri=pipeline["uri"])
    paths = write_trigger_card(card, root / "out", tracking_uri=pipeline["uri"])
    return {**pipeline, "card": card, "paths": paths}


def _scored(env, trigger: str, lead: int) -> pd.DataFrame:
    s = env["evaluation"].signals
    return s[(s["trigger"] == trigger) & (s["lead"] == lead) & (s["route"] == "forecast") & (s["role"] == "scored")]


def _row(card, lead: int) -> dict:
    return next(r for r in card.backtest if r["lead"] == lead)


# --------------------------------------------------------------------------- the backtest on the card


@pytest.mark.parametrize("lead", [1, 3])
def test_trigger_card_backtest_numbers_equal_those_counted_from_the_signals(env, lead):
    part = _scored(env, "spike_region", lead)
    origins = sorted(part["origin"].unique())
    areas = sorted(part["area"].unique())
    years = len(origins) / 12  # monthly origins
    activations = 0
    for area in areas:  # an activation: signalled at an origin and not at the one before
        flags = part[part["area"] == area].sort_values("origin")["signal"].tolist()
        activations += sum(f and not (i and flags[i - 1]) for i, f in enumerate(flags))
    judged = part[part["event"].notna() & part["probability"].notna()]
    hits = int((judged["signal"] & (judged["event"] == 1)).sum())
    row = _row(env["card"], lead)
    assert (row["origins"], row["areas"], row["activations"]) == (len(origins), len(areas), activations)
    assert row["years"] == pytest.approx(years)
    assert row["activations_per_year"] == pytest.approx(activations / years)
    assert row["activations_per_district_year"] == pytest.approx(activations / years / len(areas))
    assert row["return_period"] == pytest.approx((years + 1) / (activations / len(areas)))
    assert row["hit_rate"] == pytest.approx(hits / (judged["event"] == 1).sum())
    assert row["false_alarm_ratio"] == pytest.approx(1 - hits / judged["signal"].sum())
    assert row["first_origin"] == f"{pd.Timestamp(origins[0]):%Y-%m}"


@pytest.mark.parametrize("lead", [1, 3])
def test_trigger_card_crossings_caught_count_episodes_signalled_at_their_first_origin(env, lead):
    part = _scored(env, "spike_region", lead)
    episodes = first = anywhere = 0
    for _, g in part.sort_values("origin").groupby("area"):
        crossed, signal = (g["event"] == 1).tolist(), g["signal"].tolist()
        i = 0
        while i < len(crossed):
            if not crossed[i]:
                i += 1
                continue
            j = i
            while j < len(crossed) and crossed[j]:
                j += 1
            episodes, first, anywhere = episodes + 1, first + signal[i], anywhere + any(signal[i:j])
            i = j
    row = _row(env["card"], lead)
    assert (row["episodes"], row["caught_first"], row["caught_any"]) == (episodes, first, anywhere)
    assert row["share_caught_first"] == pytest.approx(first / episodes)


def test_trigger_card_yearly_cost_is_activations_per_year_times_the_cost(env):
    markdown = env["paths"]["markdown"].read_text(encoding="utf-8")
    for lead in (1, 3):
        row = _row(env["card"], lead)
        assert row["yearly_cost"] == pytest.approx(row["activations_per_year"] * COST)
        assert (f"Lead {lead}: {row['activations_per_year']:,.2f} activations per year × {COST:,.0f} per activation "
                f"= **{row['yearly_cost']:,.0f} a year**") in markdown


def test_trigger_card_defines_each_quantity_and_says_what_it_rests_on(env):
    markdown = env["paths"]["markdown"].read_text(encoding="utf-8")
    for term in ("Activation", "Activations per year", "Return period", "Hit rate", "False-alarm ratio",
                 "Precision@5", "Crossings caught", "Expected yearly cost"):
        assert f"- **{term}**: " in markdown
    row = _row(env["card"], 3)
    assert (f"Lead 3 rests on {row['origins']} scored origins ({row['first_origin']} to {row['last_origin']}, "
            f"{row['years']:.2f} years) in 12 districts") in markdown


# --------------------------------------------------------------------------- ready / set / go


@pytest.mark.parametrize(("stage", "lead"), [("set", 3), ("go", 1)])
def test_trigger_card_ready_set_go_are_the_signals_of_prioritize_at_leads_3_and_1(env, stage, lead):
    expected = env["trained"].prioritize(env["cube"], "spike_region", lead).set_index("area")
    cells = {d["area"]: d["cells"][stage] for d in env["card"].districts}
    assert sorted(cells) == sorted(expected.index)
    for area, cell in cells.items():
        row = expected.loc[area]
        assessed = str(row["status"]).startswith("ok")
        assert cell["signal"] == bool(assessed and row["signal"])
        if assessed:
            assert cell["probability"] == pytest.approx(row["probability"])


def test_trigger_card_names_lead_6_not_available_when_the_trigger_lacks_it(env):
    card = env["card"]
    ready = next(s for s in card.stages if s["stage"] == "ready")
    assert not ready["available"]
    assert ready["note"] == "not available: trigger 'spike_region' has no lead 6 (its leads: 1, 3)"
    assert all(d["cells"]["ready"]["text"] == "not available" for d in card.districts)
    assert "| ready | 6 | not available: trigger 'spike_region' has no lead 6 (its leads: 1, 3) |" in \
        env["paths"]["markdown"].read_text(encoding="utf-8")


def test_trigger_card_shows_an_unassessed_districts_status_not_no_signal(env):
    stale = next(d for d in env["card"].districts if d["area"] == STALE)
    assert stale["stage"] == "unassessed"
    for stage in ("set", "go"):
        assert stale["cells"][stage]["text"].startswith("stale: no data since")
    assert env["card"].districts[-1]["area"] == STALE  # the unassessed come last


# --------------------------------------------------------------------------- the geographic condition


def test_regional_signals_and_metrics_give_the_known_answer_on_a_hand_made_table():
    trigger = TriggerSpec(name="t", kind="absolute", value=10, leads=[1], region={"min_areas": 2})
    regions = {"t": pd.Series({"a": "R1", "b": "R1", "c": "R1", "d": "R2", "e": "R2", "f": None})}
    # per origin: (event, signal) of each area; f has no region and is never counted
    table = {
        "a": [(1, 1), (1, 1), (0, 0), (0, 1)],
        "b": [(1, 0), (np.nan, 1), (0, 0), (0, 1)],
        "c": [(0, 1), (0, 0), (0, 0), (0, 0)],
        "d": [(1, 1), (0, 0), (1, 1), (1, 0)],
        "e": [(0, 1), (0, 0), (1, 1), (1, 0)],
        "f": [(1, 1)] * 4,
    }
    rows = [{"trigger": "t", "lead": 1, "route": "forecast", "origin": pd.Timestamp("2020-01-01") + pd.DateOffset(months=i),
             "area": area, "role": "scored", "event": float(e), "signal": bool(s)}
            for area, values in table.items() for i, (e, s) in enumerate(values)]
    regional = regional_signals(pd.DataFrame(rows), regions, [trigger]).set_index(["region", "origin"]).sort_index()
    # R1: origin 0: 2 crossed (a, b) -> crossing, 2 signalled (a, c) -> signal
    #     origin 1: 1 crossed, b unknown -> could be 2: unknown; 2 signalled (a, b)
    #     origin 2: none crossed, none signalled; origin 3: none crossed, 2 signalled (a, b): false alarm
    # R2: origin 0: 1 crossed -> no crossing, 2 signalled: false alarm; origin 1: nothing
    #     origin 2: 2 crossed, 2 signalled: hit; origin 3: 2 crossed, none signalled: miss
    np.testing.assert_array_equal(regional["event"].to_numpy(), [1.0, np.nan, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    assert regional["signal"].tolist() == [True, True, False, True, True, False, True, False]
    assert regional["districts"].tolist() == [3] * 4 + [2] * 4
    m = regional_metrics(regional.reset_index()).iloc[0]
    # judged: 7 region-origins; crossings 3 (R1 o0, R2 o2, R2 o3); signals judged 4 (R1 o0, o3; R2 o0, o2)
    assert (m["n"], m["events"], m["signals"], m["hits"], m["false_alarms"]) == (7, 3, 4, 2, 2)
    assert m["hit_rate"] == pytest.approx(2 / 3) and m["false_alarm_ratio"] == pytest.approx(2 / 4)
    # activations: R1 starts at o0 and again at o3; R2 at o0 and o2: 4 over 4/12 years and 2 regions
    assert m["activations"] == 4 and m["regions"] == 2
    assert m["return_period"] == pytest.approx((4 / 12 + 1) / (4 / 2))


@pytest.mark.parametrize(("region", "message"), [
    ("{min_areas: 0}", "region.min_areas: Value error, min_areas is a number of districts, at least 1, got 0"),
    ("{min_areas: 2, colour: red}", "region.colour: Extra inputs are not permitted"),
    ("{by: region}", "region.min_areas: Field required"),
    ("3", "region: Value error, region must be a mapping such as {min_areas: 3, by: region}, got 3"),
])
def test_load_triggers_names_the_region_field_when_the_geographic_condition_is_wrong(tmp_path, region, message):
    path = tmp_path / "triggers.yaml"
    path.write_text(f"triggers:\n  - {{name: a, kind: absolute, value: 5, region: {region}}}\n", encoding="utf-8")
    with pytest.raises(ForecastError) as err:
        load_triggers(path)
    assert str(err.value) == f"{path}: trigger 'a': {message}"


def test_area_regions_lists_the_cubes_area_coordinates_when_the_named_one_is_missing(env):
    trigger = TriggerSpec(name="t", kind="absolute", value=5, region=RegionRule(min_areas=2, by="zone"))
    with pytest.raises(ForecastError, match=re.escape(
            "trigger 't' acts per region, but the cube has no area coordinate 'zone' to read regions from (it has: "
            "area_name, admin_level")):
        area_regions(env["cube"], trigger)


def test_trigger_spec_hash_is_unchanged_for_a_trigger_without_a_geographic_condition():
    spec = TriggerSpec(name="a", kind="absolute", value=5)
    before = {k: v for k, v in spec.model_dump().items() if k != "region"}  # the fields it had
    assert spec.hash() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert TriggerSpec(name="a", kind="absolute", value=5, region={"min_areas": 2}).hash() != spec.hash()
    assert spec.describe() == ">= 5 arrivals in a month"


def test_regional_scores_are_logged_with_the_backtest_and_shown_on_the_card(env):
    expected = env["evaluation"].regional()
    assert set(expected["trigger"]) == {"spike_region"}  # the trigger without the condition has none
    logged = env["client"].download_artifacts(env["backtest"], "triggers/regional.csv", tempfile.mkdtemp())
    pd.testing.assert_frame_equal(pd.read_csv(logged), expected, check_dtype=False)
    shown = {r["lead"]: r for r in env["card"].regional["backtest"]}
    for r in expected[expected["route"] == "forecast"].itertuples():
        assert shown[r.lead]["hit_rate"] == pytest.approx(r.hit_rate, nan_ok=True)
        assert shown[r.lead]["false_alarm_ratio"] == pytest.approx(r.false_alarm_ratio, nan_ok=True)
        assert shown[r.lead]["activations"] == r.activations
    now = {r["region"]: r for r in env["card"].regional["now"]}
    go = env["trained"].prioritize(env["cube"], "spike_region", 3)
    for region, row in now.items():
        signalling = int((go["signal"] & go["status"].str.startswith("ok") & (go["region"] == region)).sum())
        assert row["counts"]["set"] == signalling and row["acts"]["set"] == (signalling >= 2)


# --------------------------------------------------------------------------- files, MLflow, release


def test_write_trigger_card_writes_html_and_markdown_and_logs_both_to_the_train_run(env):
    assert {p.name for p in env["paths"].values()} == {"trigger_card.html", "trigger_card.md"}
    assert env["paths"]["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    logged = {f.path for f in env["client"].list_artifacts(env["train"], "trigger_card/spike_region")}
    assert logged == {"trigger_card/spike_region/trigger_card.html", "trigger_card/spike_region/trigger_card.md"}
    local = env["client"].download_artifacts(env["train"], "trigger_card/spike_region/trigger_card.md",
                                             tempfile.mkdtemp())
    assert Path(local).read_text(encoding="utf-8") == env["paths"]["markdown"].read_text(encoding="utf-8")


def test_trigger_card_files_hold_no_path_of_the_machine(env):
    forbidden = [str(env["root"]), str(ROOT), str(Path.home()), tempfile.gettempdir() + "/"]
    for path in env["paths"].values():
        text = path.read_text(encoding="utf-8")
        assert not [f for f in forbidden if f in text], path.name
        assert f"policy.yaml (sha256 {env['policy'].hash()[:12]})" in text


def test_trigger_card_of_an_unreleased_model_says_not_released_at_the_top(env):
    assert not env["card"].released
    html = env["paths"]["html"].read_text(encoding="utf-8")
    markdown = env["paths"]["markdown"].read_text(encoding="utf-8")
    assert f'<div class="banner" id="release-banner">{NOT_RELEASED}' in html
    assert markdown.lstrip().startswith(f"> **{NOT_RELEASED}**")


@pytest.fixture(scope="module")
def evidence(env):
    return read_card_evidence(env["train"], tracking_uri=env["uri"])


def _assemble(env, evidence, spec=None, **kw):
    spec = spec or next(t for t in env["trained"].triggers if t.name == "spike")
    rankings = {lead: env["trained"].prioritize(env["cube"], spec.name, lead) for lead in (1, 3)}
    return assemble_trigger_card(evidence, spec, rankings, env["cube"], status=ReleaseStatus(env["train"], False),
                                 policy=env["policy"], **kw)


@pytest.mark.parametrize(("kw", "message"), [
    ({"leads": [6]}, "trigger 'spike' has leads 1, 3; lead 6 is not one of them"),
    ({"cost_per_activation": 0}, "the cost per activation must be a positive number"),
    ({"cost_per_activation": float("nan")}, "the cost per activation must be a positive number"),
])
def test_assemble_trigger_card_refuses_a_lead_the_trigger_lacks_and_a_cost_that_is_not_positive(env, evidence, kw,
                                                                                                 message):
    with pytest.raises(ForecastError, match=re.escape(message)):
        _assemble(env, evidence, **kw)


def test_assemble_trigger_card_refuses_a_backtest_of_another_definition_of_the_trigger(env, evidence):
    spec = next(t for t in env["trained"].triggers if t.name == "spike").model_copy(update={"probability": 0.7})
    with pytest.raises(ForecastError, match=re.escape(f"backtest run {env['backtest']} evaluated another trigger "
                                                      "'spike'")):
        _assemble(env, evidence, spec)


def test_assemble_trigger_card_shows_one_lead_and_no_regional_section_without_the_condition(env, evidence):
    card = _assemble(env, evidence, leads=[3])
    assert [r["lead"] for r in card.backtest] == [3] and card.regional is None
    assert "Geographic condition |" in card.to_markdown() and "## 5. Geographic condition" not in card.to_markdown()
    assert "Expected yearly cost" not in card.to_markdown()


# --------------------------------------------------------------------------- the command


def test_cli_trigger_card_writes_and_logs_the_card_and_prints_its_numbers(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "card"
    result = CliRunner().invoke(app, ["trigger-card", "--run", env["train"], "--trigger", "spike", "--cube",
                                      str(env["root"] / "cube.nc"), "--policy", str(env["root"] / "policy.yaml"),
                                      "--out", str(out), "--cost-per-activation", "1000",
                                      "--tracking-uri", env["uri"]])
    assert result.exit_code == 0, result.output
    assert NOT_RELEASED in result.output
    assert re.search(r"lead 3: [\d.]+ activations a year, hit rate \d+%", result.output)
    assert "ready (lead 6): not available: trigger 'spike' has no lead 6" in result.output
    markdown = (out / "trigger_card.md").read_text(encoding="utf-8")
    assert "Data: cube.nc (sha256 " in markdown and str(env["root"]) not in markdown
    logged = {f.path for f in env["client"].list_artifacts(env["train"], "trigger_card/spike")}
    assert logged == {"trigger_card/spike/trigger_card.html", "trigger_card/spike/trigger_card.md"}


def test_cli_trigger_card_exits_2_without_a_traceback_for_an_unknown_run(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["trigger-card", "--run", "0" * 32, "--tracking-uri", env["uri"],
                                      "--out", str(tmp_path / "card")])
    assert result.exit_code == 2
    assert "error:" in result.output and f"no MLflow train run '{'0' * 32}'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "card").exists()


def test_backtest_prints_the_regional_scores_of_a_trigger_with_a_geographic_condition(env, capsys):
    from forecast.cli import _console

    _console.print_triggers(env["evaluation"])
    printed = capsys.readouterr().out
    assert re.search(r"spike_region per region, lead 3, forecast: hit rate [\d.]+, false alarms [\d.]+, \d+ "
                     r"activations in 2 regions", printed)
    assert "spike per region" not in printed
