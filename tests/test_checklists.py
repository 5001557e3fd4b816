"""The review checklists: shipped content, the loader's errors, the hashes reviews record."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from forecast.errors import ForecastError
from forecast.ethics import (
    Checklist,
    ChecklistItem,
    checklist_items,
    checklists_hash,
    load_checklists,
)

REPO_CHECKLISTS = Path(__file__).resolve().parents[1] / "ethics" / "checklists"

FILES = ("data_responsibility", "dseg", "ethical_review", "implementation_plan", "technical_review")


@pytest.fixture(scope="module")
def shipped():
    return load_checklists()


@pytest.fixture(scope="module")
def ids(shipped):
    return {item.id for c in shipped for item in c.items}


def _item(id_: str, **fields) -> dict:
    return {"id": id_, "question": "Is it so?", "evidence": "The run's metrics.csv.",
            "answered_by": "ethics", "blocking": True, **fields}


def _write(folder: Path, name: str, data) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False),
                    encoding="utf-8")
    return path


def _checklist(id_: str = "demo", items=None) -> dict:
    return {"id": id_, "title": "Demo", "source": "our own", "items": items or [_item(f"{id_}.one")]}


def _error(folder) -> str:
    with pytest.raises(ForecastError) as err:
        load_checklists(folder)
    return str(err.value)


# --------------------------------------------------------------------------- shipped content


def test_load_checklists_reads_the_five_shipped_files_when_no_folder_is_given(shipped):
    assert [c.id for c in shipped] == list(FILES)
    assert [Path(c.path).name for c in shipped] == [f"{name}.yaml" for name in FILES]
    assert all(Path(c.path).parent.resolve() == REPO_CHECKLISTS.resolve() for c in shipped)
    assert 40 <= sum(len(c.items) for c in shipped) <= 70


def test_shipped_item_ids_are_unique_and_dotted_under_their_checklist_when_loaded(shipped):
    all_ids = [item.id for c in shipped for item in c.items]
    assert len(all_ids) == len(set(all_ids))
    for checklist in shipped:
        for item in checklist.items:
            assert re.fullmatch(rf"{checklist.id}(\.[a-z][a-z0-9_]*)+", item.id), item.id


def test_shipped_items_say_what_is_asked_and_what_answers_it_when_loaded(shipped):
    table = checklist_items(shipped)
    for column in ("question", "evidence"):
        assert table[column].str.strip().str.len().min() > 20, column
    assert table["question"].str.rstrip().str.endswith("?").all()
    assert set(table["answered_by"]) == {"technical", "ethics"}
    for checklist in shipped:
        assert checklist.title.strip() and checklist.source.strip()


def test_shipped_checklists_have_blocking_items_for_both_reviewers_when_loaded(shipped):
    table = checklist_items(shipped)
    blocking = table[table["blocking"]]
    assert set(blocking["answered_by"]) == {"technical", "ethics"}
    assert (~table["blocking"]).any()  # not everything blocks: the flag carries information


@pytest.mark.parametrize("topic, required", [
    ("DSEG phases", ["dseg.problem.needs_based", "dseg.problem.simpler_approach",
                     "dseg.suitability.enough_history", "dseg.suitability.skill_at_needed_lead",
                     "dseg.data.provenance", "dseg.data.coverage", "dseg.algorithm.choice_justified",
                     "dseg.outputs.unassessed_visible", "dseg.outputs.limitations_stated"]),
    ("data responsibility", ["data_responsibility.purpose.defined",
                             "data_responsibility.minimization.columns_kept",
                             "data_responsibility.minimization.features_justified",
                             "data_responsibility.sensitivity.level_agreed",
                             "data_responsibility.impact_assessment.done",
                             "data_responsibility.impact_assessment.current",
                             "data_responsibility.retention.schedule",
                             "data_responsibility.access.audience",
                             "data_responsibility.accountability.owner",
                             "data_responsibility.accountability.feedback_channel"]),
    ("technical matrix", ["technical_review.validity.target", "technical_review.backtest.rolling_origin",
                          "technical_review.backtest.no_leakage",
                          "technical_review.baselines.forecast_skill",
                          "technical_review.uncertainty.interval_coverage",
                          "technical_review.uncertainty.probability_calibration",
                          "technical_review.fairness.policy_applied",
                          "technical_review.operations.data_latency",
                          "technical_review.operations.reproducible"]),
    ("implementation plan", ["implementation_plan.readers.named", "implementation_plan.action.defined",
                             "implementation_plan.action.human_decision",
                             "implementation_plan.wrong.false_alarm",
                             "implementation_plan.wrong.missed_crisis",
                             "implementation_plan.review.date"]),
])
def test_shipped_checklists_cover_each_point_of_the_issue_when_loaded(ids, topic, required):
    assert not set(required) - ids, f"{topic}: missing {sorted(set(required) - ids)}"


def test_ethical_matrix_covers_every_issue_and_stakeholder_when_loaded(shipped):
    items = next(c for c in shipped if c.id == "ethical_review").items
    cells = {tuple(item.id.split(".")[1:]) for item in items}
    issues = {"fairness", "bias", "privacy", "inferential_disclosure", "ossification", "misuse",
              "false_alarms", "missed_crises"}
    assert {issue for _, issue in cells} == issues
    assert {who for who, _ in cells} == {"affected_people", "aa_teams", "data_collectors", "authorities"}
    assert all(item.answered_by == "ethics" for item in items)


def test_shipped_evidence_names_the_toolkit_artifacts_when_loaded(shipped):
    evidence = checklist_items(shipped).set_index("id")["evidence"]
    assert "seasonal_naive" in evidence["technical_review.baselines.forecast_skill"]
    assert "fairness_passed" in evidence["technical_review.fairness.policy_applied"]
    assert "fairness/" in evidence["ethical_review.affected_people.fairness"]
    assert "columns_kept" in evidence["data_responsibility.minimization.columns_kept"]
    assert "sensitivity" in evidence["data_responsibility.sensitivity.level_agreed"]


def test_load_checklists_reads_the_repo_folder_like_the_default_when_given_its_path(shipped):
    given = load_checklists(REPO_CHECKLISTS)
    assert checklists_hash(given) == checklists_hash(shipped)
    assert sorted(p.name for p in REPO_CHECKLISTS.glob("*.yaml")) == sorted(f"{name}.yaml" for name in FILES)


# --------------------------------------------------------------------------- the table and hashes


def test_checklist_items_gives_one_row_per_item_with_its_checklist_when_called(shipped):
    table = checklist_items(shipped)
    assert list(table.columns) == ["checklist", "id", "answered_by", "blocking", "question",
                                   "evidence", "help"]
    assert len(table) == sum(len(c.items) for c in shipped)
    assert table["blocking"].dtype == bool
    assert table["id"].is_unique
    row = table.set_index("id").loc["dseg.problem.needs_based"]
    assert row["checklist"] == "dseg" and row["answered_by"] == "ethics" and bool(row["blocking"])
    assert pd.isna(table.set_index("id").loc["dseg.data.provenance", "help"])


def test_checklist_items_is_an_empty_table_with_the_columns_when_given_no_checklists():
    table = checklist_items([])
    assert table.empty and "id" in table.columns and "blocking" in table.columns


def test_checklist_hash_changes_when_a_question_changes(tmp_path):
    _write(tmp_path, "demo", _checklist())
    before = load_checklists(tmp_path)
    changed = _checklist()
    changed["items"][0]["question"] = "Is it really so?"
    _write(tmp_path, "demo", changed)
    after = load_checklists(tmp_path)
    assert before[0].hash() != after[0].hash()
    assert checklists_hash(before) != checklists_hash(after)


def test_checklist_hash_ignores_comments_file_name_and_order_when_content_is_the_same(tmp_path, shipped):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", "demo", "# a reviewer's note\n" + yaml.safe_dump(_checklist(), sort_keys=False))
    _write(tmp_path / "b", "renamed", yaml.safe_dump(_checklist(), sort_keys=True))
    (first,), (second,) = load_checklists(tmp_path / "a"), load_checklists(tmp_path / "b")
    assert first.hash() == second.hash()
    assert checklists_hash(shipped) == checklists_hash(list(reversed(shipped)))
    assert re.fullmatch(r"[0-9a-f]{64}", checklists_hash(shipped))


def test_checklist_is_frozen_when_loaded(shipped):
    with pytest.raises(ValidationError, match="frozen"):
        shipped[0].title = "changed"
    with pytest.raises(ValidationError, match="frozen"):
        shipped[0].items[0].blocking = False


# --------------------------------------------------------------------------- errors


def test_load_checklists_names_file_item_and_key_when_an_item_has_an_unknown_key(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("demo.one", hlep="typo")]))
    message = _error(tmp_path)
    assert message.startswith("invalid checklists\n")
    assert f"{path}: item 'demo.one' (items[0]) hlep: unknown key" in message
    assert "item keys: id, question, evidence, answered_by, blocking, help" in message


def test_load_checklists_names_the_missing_field_when_an_item_lacks_evidence(tmp_path):
    item = _item("demo.one")
    del item["evidence"]
    path = _write(tmp_path, "demo", _checklist(items=[item]))
    assert f"{path}: item 'demo.one' (items[0]) evidence: missing (required)" in _error(tmp_path)


def test_load_checklists_says_which_roles_exist_when_answered_by_is_wrong(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("demo.one"),
                                                     _item("demo.two", answered_by="data team")]))
    message = _error(tmp_path)
    assert (f"{path}: item 'demo.two' (items[1]) answered_by: must be 'technical' or 'ethics', "
            "got 'data team'") in message
    assert "demo.one" not in message


def test_load_checklists_refuses_a_blocking_flag_that_is_not_a_boolean(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("demo.one", blocking="no")]))
    assert f"{path}: item 'demo.one' (items[0]) blocking: must be true or false, got 'no'" in _error(tmp_path)


def test_load_checklists_refuses_a_blank_question(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("demo.one", question="   ")]))
    assert f"{path}: item 'demo.one' (items[0]) question: must not be empty" in _error(tmp_path)


def test_load_checklists_names_the_ids_when_an_item_id_is_outside_its_checklist(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("other.one"), _item("demo.two"),
                                                     _item("demo.two")]))
    message = _error(tmp_path)
    assert f"{path}: checklist: item id 'other.one' does not start with the checklist id 'demo.'" in message
    assert "item id 'demo.two' appears twice" in message


def test_load_checklists_shows_the_id_rule_when_an_item_id_is_malformed(tmp_path):
    path = _write(tmp_path, "demo", _checklist(items=[_item("Demo One")]))
    assert (f"{path}: item 'Demo One' (items[0]) id: must be dotted lower-case words starting "
            "with the checklist id") in _error(tmp_path)


def test_load_checklists_names_both_files_when_an_item_id_is_reused_in_another_checklist(tmp_path):
    first = _write(tmp_path, "demo", _checklist())
    copy = _write(tmp_path, "demo_copy", _checklist())
    message = _error(tmp_path)
    assert (f"{copy}: item 'demo.one' is already an item of {first}; item ids are unique across "
            "all checklists") in message
    assert f"{copy}: checklist id 'demo' is also the id of {first}" in message


def test_load_checklists_says_a_checklist_needs_items_when_it_has_none(tmp_path):
    path = _write(tmp_path, "demo", {**_checklist(), "items": []})
    assert f"{path}: items: no items; a checklist needs at least one" in _error(tmp_path)
    _write(tmp_path, "demo", {k: v for k, v in _checklist().items() if k != "items"})
    assert f"{path}: items: missing (required)" in _error(tmp_path)


def test_load_checklists_gives_the_line_when_a_file_is_not_yaml(tmp_path):
    path = _write(tmp_path, "demo", "id: demo\ntitle: [unclosed\n")
    assert re.search(rf"{re.escape(str(path))}: not valid YAML at line \d+, column \d+", _error(tmp_path))


def test_load_checklists_says_what_a_checklist_is_when_a_file_is_empty_or_a_list(tmp_path):
    empty = _write(tmp_path, "a", "")
    listed = _write(tmp_path, "b", "- one\n")
    message = _error(tmp_path)
    assert f"{empty}: a checklist is a mapping with id, title, source and items; got an empty file" in message
    assert f"{listed}: a checklist is a mapping with id, title, source and items; got a list" in message


def test_load_checklists_lists_the_problems_of_every_file_when_several_are_bad(tmp_path):
    a = _write(tmp_path, "a", _checklist("a", [_item("a.one", answered_by="x")]))
    b = _write(tmp_path, "b", _checklist("b", [_item("b.one", extra=1)]))
    message = _error(tmp_path)
    assert str(a) in message and str(b) in message


def test_load_checklists_says_so_when_the_folder_is_missing_or_has_no_checklists(tmp_path):
    assert f"{tmp_path}: no checklists (*.yaml files) in this folder" in _error(tmp_path)
    assert "not a folder of checklists" in _error(tmp_path / "absent")


def test_load_checklists_reads_a_folder_copied_from_the_shipped_one_when_an_item_is_added(tmp_path, shipped):
    folder = tmp_path / "checklists"
    shutil.copytree(REPO_CHECKLISTS, folder)
    data = yaml.safe_load((folder / "dseg.yaml").read_text(encoding="utf-8"))
    data["items"].append(_item("dseg.outputs.new_question", help="Added in a test."))
    _write(folder, "dseg", data)
    loaded = load_checklists(folder)
    assert sum(len(c.items) for c in loaded) == sum(len(c.items) for c in shipped) + 1
    assert checklists_hash(loaded) != checklists_hash(shipped)


def test_checklist_built_in_code_has_no_path_and_checks_its_ids():
    item = ChecklistItem(id="demo.one", question="Q?", evidence="E", answered_by="technical",
                         blocking=False)
    assert Checklist(id="demo", title="T", source="S", items=[item]).path is None
    with pytest.raises(ValueError, match="does not start with the checklist id 'other.'"):
        Checklist(id="other", title="T", source="S", items=[item])
