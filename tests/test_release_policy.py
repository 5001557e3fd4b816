"""The release section of ethics/policy.yaml: thresholds with reasons, no defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from forecast.errors import ForecastError
from forecast.policy import load_policy

REPO_POLICY = Path(__file__).resolve().parents[1] / "ethics" / "policy.yaml"


@pytest.fixture
def release():
    return yaml.safe_load(REPO_POLICY.read_text(encoding="utf-8"))


def _write(tmp_path, data):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_shipped_policy_states_every_release_threshold_with_its_reason():
    checks = load_policy().release
    assert checks is not None
    assert checks.skill.reference == {"flow": "seasonal_naive", "stock": "naive"} and checks.skill.min_skill[1] == 0.0
    assert (checks.coverage.interval, checks.coverage.low, checks.coverage.high) == (80, 0.70, 0.90)
    assert checks.small_cell.k == 5
    # totals are judged on the mean forecast, the one planners add up (the median totals a quarter)
    assert (checks.level_ratio.metric, checks.level_ratio.low, checks.level_ratio.high) == ("mean_level_ratio", 0.75, 1.33)
    assert checks.admin_level.finest == {"low": 3, "moderate": 3, "high": 2, "severe": 1}
    assert checks.fairness.route == "forecast" and "region" not in checks.fairness.groups
    for check in (checks.skill, checks.coverage, checks.level_ratio, checks.small_cell, checks.admin_level,
                  checks.fairness):
        assert len(check.rationale) > 40


def test_policy_without_a_release_section_loads_with_release_none_so_the_gate_can_refuse(tmp_path, release):
    del release["release"]
    assert load_policy(_write(tmp_path, release)).release is None


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["coverage"].pop("rationale"), "release.coverage.rationale: Field required"),
    (lambda r: r["coverage"].update(rationale="short"), "release.coverage.rationale: String should have at least 10 characters"),
    (lambda r: r["level_ratio"].update(low=3.0), "release.level_ratio: low (3.0) must be below high (1.33)"),
    (lambda r: r["level_ratio"].pop("metric"), "release.level_ratio.metric: Field required"),
    (lambda r: r["level_ratio"].update(metric="mase"),
     "release.level_ratio.metric: Input should be 'mean_level_ratio' or 'level_ratio'"),
    (lambda r: r["admin_level"]["finest"].pop("severe"), "release.admin_level: finest needs every sensitivity level; missing ['severe']"),
    (lambda r: r["skill"].update(reference="mean"), "release.skill.reference: Input should be 'seasonal_naive' or 'naive'"),
    (lambda r: r.pop("small_cell"), "release.small_cell: Field required"),
    (lambda r: r["small_cell"].update(kk=5), "release.small_cell.kk: unknown key"),
    (lambda r: r.pop("fairness"), "release.fairness: Field required"),
    (lambda r: r["fairness"].update(groups=[]), "release.fairness.groups: List should have at least 1 item"),
])
def test_release_policy_errors_name_the_file_and_the_field(tmp_path, release, edit, message):
    edit(release["release"])
    path = _write(tmp_path, release)
    with pytest.raises(ForecastError, match=re.escape(message)) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}: invalid fairness policy")


def test_the_skill_reference_depends_on_the_kind_of_target(tmp_path, release):
    skill = load_policy().release.skill
    assert [skill.reference_for(t) for t in ("arrivals", "departures", "returns")] == ["seasonal_naive"] * 3
    assert skill.reference_for("idp_stock") == "naive"  # a stock: the last round again
    assert skill.reference_for(None) == skill.reference_for("") == "seasonal_naive"  # no target: arrivals
    release["release"]["skill"]["reference"] = {"stock": "seasonal_naive", "flow": "naive"}
    swapped = load_policy(_write(tmp_path, release)).release.skill
    assert (swapped.reference_for("arrivals"), swapped.reference_for("idp_stock")) == ("naive", "seasonal_naive")


@pytest.mark.parametrize("reference", ["seasonal_naive", "naive"])
def test_the_older_single_reference_still_loads_and_applies_to_every_kind(tmp_path, release, reference):
    release["release"]["skill"]["reference"] = reference
    skill = load_policy(_write(tmp_path, release)).release.skill
    assert skill.reference == {"flow": reference, "stock": reference}
    assert skill.reference_for("arrivals") == skill.reference_for("idp_stock") == reference


@pytest.mark.parametrize(("reference", "message"), [
    ({"flow": "seasonal_naive"}, "release.skill.reference: reference must name a baseline for every target kind "
                                 "(flow, stock); missing: stock"),
    ({"stock": "naive"}, "release.skill.reference: reference must name a baseline for every target kind "
                         "(flow, stock); missing: flow"),
    ({}, "missing: flow, stock"),
    ({"flow": "seasonal_naive", "stock": "naive", "river": "naive"},
     "release.skill.reference: unknown target kind(s) river; the kinds are flow, stock"),
    ({"flow": "seasonal_naive", "stock": "mean"}, "release.skill.reference.stock: Input should be 'seasonal_naive' or 'naive'"),
])
def test_a_skill_reference_mapping_must_name_every_kind_and_known_baselines(tmp_path, release, reference, message):
    release["release"]["skill"]["reference"] = reference
    with pytest.raises(ForecastError, match=re.escape(message)):
        load_policy(_write(tmp_path, release))


def test_release_thresholds_change_the_policy_hash(tmp_path, release):
    before = load_policy(_write(tmp_path, release)).hash()
    release["release"]["coverage"]["low"] = 0.75
    assert load_policy(_write(tmp_path, release)).hash() != before
