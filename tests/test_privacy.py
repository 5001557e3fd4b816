"""Data responsibility at the door: identifying columns, the allow-list, sensitivity levels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import forecast
from forecast._names import SENSITIVITY_LEVELS
from forecast.datasets import sample_files
from forecast.errors import ForecastError, IdentifyingDataError
from forecast.io import read_dtm, read_hxl
from forecast.io._columns import _builtin
from forecast.io._privacy import assess_sensitivity, identifying_kind

ADM2 = sample_files()["areas"]
BASE = "admin1Name,admin2Name,numPresentIdpInd,reportingDate"
ROWS = ["Bay,Baidoa,1200,2020-01-15", "Bay,Buur Hakaba,300,2020-01-15"]


def dtm_with(path: Path, column: str, values: tuple[str, str] = ("+252610000001", "+252610000002")) -> Path:
    """A two-row DTM file with one extra column."""
    lines = [f'{BASE},"{column}"'] + [f'{row},"{v}"' for row, v in zip(ROWS, values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("column, kind", [
    ("phone_number", "phone number"), ("Mobile", "phone number"), ("caller_msisdn", "phone number"),
    ("Head of household name", "person name"), ("HoH Name", "person name"),
    ("respondentName", "person name"), ("Surname", "person name"), ("Enumerator name", "person name"),
    ("national_id", "identity document number"), ("ID Number", "identity document number"),
    ("passport_no", "identity document number"), ("ProGres ID", "identity document number"),
    ("Email", "email address"), ("household_gps", "GPS location"),
    ("HH latitude", "household location"), ("home_longitude", "household location"),
])
def test_identifying_column_is_refused_naming_the_column_and_why(tmp_path, column, kind):
    path = dtm_with(tmp_path / "survey.csv", column)
    with pytest.raises(IdentifyingDataError) as caught:
        forecast.ingest([path], "dtm")
    assert caught.value.columns == {column: kind}
    message = str(caught.value)
    assert message.startswith(f"{path}: refused: column(s) that identify people: '{column}' ({kind})")
    assert f"--drop-column '{column}'" in caught.value.hint


@pytest.mark.parametrize("column", ["Settlement Name", "Site Name", "Camp Name", "Number of Households",
                                    "Household size", "Site latitude", "Key informant type", "Partner",
                                    "Contact person role"])
def test_aggregate_or_place_columns_are_not_mistaken_for_personal_data(column):
    assert identifying_kind(column) is None


def test_no_column_name_the_readers_know_counts_as_identifying():
    known = {str(name) for fields in _builtin().values() for names in fields.values() for name in names}
    assert {name: identifying_kind(name) for name in known if identifying_kind(name)} == {}


@pytest.mark.parametrize("header, tag, kind", [
    ("Contact", "#contact+phone", "HXL #contact"),
    ("Who", "#beneficiary+name", "HXL person name"),
    ("Info", "#respondent +name", "HXL person name"),
    ("Where", "#geo+lat+hh", "HXL household location"),
])
def test_hxl_tags_that_identify_people_are_refused_whatever_the_header_says(tmp_path, header, tag, kind):
    path = tmp_path / "hxl.csv"
    path.write_text(f"Region,District,IDPs,Date,{header}\n#adm1+name,#adm2+name,#affected+idps,#date+reported,{tag}\n"
                    "Bay,Baidoa,10,2020-01-15,x\n")
    with pytest.raises(IdentifyingDataError) as caught:
        read_hxl(path)
    assert caught.value.columns == {header: kind}
    dropped = read_hxl(path, drop_columns=(header,))
    assert dropped.dropped_on_request == {header: kind}
    assert dropped.table["value"].tolist() == [10.0]


def test_every_identifying_column_is_listed_in_one_refusal(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text(f"{BASE},phone_number,national_id,notes\n{ROWS[0]},1,2,3\n")
    with pytest.raises(IdentifyingDataError) as caught:
        read_dtm(path)
    assert caught.value.columns == {"phone_number": "phone number", "national_id": "identity document number"}


def test_dropped_identifying_column_never_reaches_cube_manifest_or_quarantine_and_the_drop_is_recorded(tmp_path):
    path = dtm_with(tmp_path / "survey.csv", "phone_number")
    with path.open("a") as fh:
        fh.write('Bay,Baidoa,-1,2020-01-15,"+252610000003"\n')  # a quarantined row keeps no phone either
    result = forecast.ingest([path], "dtm", drop_columns=["phone_number"])
    record = result.manifest.files[0]
    assert record.dropped_on_request == {"phone_number": "phone number"}
    assert "phone_number" not in record.columns_kept.values() and "phone_number" not in record.columns_dropped
    paths = result.write(tmp_path / "out")
    written = "".join(p.read_text(errors="replace") for key, p in paths.items() if key != "cube")
    written += json.dumps(result.cube.to_dict(data="list"), default=str)
    assert "+25261" not in written
    assert len(result.quarantine) == 1 and result.quarantine["field"].tolist() == ["numPresentIdpInd"]


def test_misspelt_drop_request_does_not_let_an_identifying_column_through(tmp_path):
    path = dtm_with(tmp_path / "survey.csv", "phone_number")
    with pytest.raises(IdentifyingDataError, match="'phone_number' \\(phone number\\)"):
        forecast.ingest([path], "dtm", drop_columns=["phone_numbr"])


def test_dropping_a_harmless_column_is_recorded_as_a_request(tmp_path):
    path = dtm_with(tmp_path / "dtm.csv", "Partner", ("NGO A", "NGO B"))
    record = forecast.ingest([path], "dtm", drop_columns=["Partner"]).manifest.files[0]
    assert record.dropped_on_request == {"Partner": "dropped on request"}
    assert "Partner" not in record.columns_dropped


def test_columns_off_the_allow_list_are_dropped_and_listed_in_the_manifest(tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text(f"{BASE},Partner,Comments,Site Name\n{ROWS[0]},NGO A,ok,Camp 1\n{ROWS[1]},NGO B,,Camp 2\n")
    result = forecast.ingest([path], "dtm")
    record = result.manifest.files[0]
    assert record.columns_dropped == ["Partner", "Comments", "Site Name"]
    assert record.columns_kept == {"admin1_name": "admin1Name", "admin2_name": "admin2Name",
                                   "idp_stock": "numPresentIdpInd", "reporting_date": "reportingDate"}
    assert set(result.cube.data_vars) == {"idp_stock", "idp_stock_observed"}
    assert not {"Partner", "Comments", "Site Name"} & set(result.results[0].table.columns)


# --- sensitivity ---------------------------------------------------------------------------

def rank(level: str) -> int:
    return SENSITIVITY_LEVELS.index(level)


def test_admin2_counts_with_a_sex_breakdown_rank_above_admin2_totals_and_above_admin1_totals():
    admin1, _ = assess_sensitivity("dtm", 1, set())
    admin2, _ = assess_sensitivity("dtm", 2, set())
    by_sex, why = assess_sensitivity("dtm", 2, {"males", "females"})
    assert (admin1, admin2, by_sex) == ("low", "moderate", "high")
    assert rank(admin1) < rank(admin2) < rank(by_sex)
    assert why == ["IDP counts at admin2", "sex breakdown"]


@pytest.mark.parametrize("fmt, level, expected", [
    ("dtm", 0, "low"), ("dtm", 1, "low"), ("dtm", 2, "moderate"), ("dtm", 3, "high"),
    ("flows", 1, "moderate"), ("flows", 2, "high"), ("acled", 2, "low"), ("table", 2, "low"),
])
def test_sensitivity_follows_the_documented_rules(fmt, level, expected):
    assert assess_sensitivity(fmt, level, set())[0] == expected


def test_ingested_sex_breakdown_raises_the_file_and_cube_sensitivity(tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text(f"{BASE},Males,Females\n{ROWS[0]},600,600\n{ROWS[1]},100,200\n")
    result = forecast.ingest([path], "dtm", areas=ADM2)
    assert result.manifest.files[0].sensitivity == "high"
    assert result.manifest.sensitivity.reasons == ["IDP counts at admin2", "sex breakdown"]
    assert result.cube.attrs["sensitivity"] == "high"


def test_admin1_totals_are_low_sensitivity_when_ingested(tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text("admin1Name,numPresentIdpInd,reportingDate\nBay,1500,2020-01-15\n")
    result = forecast.ingest([path], "dtm", areas=ADM2)
    assert (result.manifest.admin_level, result.manifest.sensitivity.level) == (1, "low")


def test_a_dataset_of_several_files_takes_the_most_sensitive_level(tmp_path):
    (tmp_path / "dtm.csv").write_text(f"{BASE}\n{ROWS[0]}\n")
    (tmp_path / "rain.csv").write_text("district,date,rain\nBaidoa,2020-01,3.5\n")
    result = forecast.ingest([tmp_path / "dtm.csv", tmp_path / "rain.csv"], ["dtm", "table"], areas=ADM2)
    assert [f.sensitivity for f in result.manifest.files] == ["moderate", "low"]
    assert result.manifest.sensitivity.level == result.cube.attrs["sensitivity"] == "moderate"


def test_sensitivity_override_needs_a_reason(tmp_path):
    path = dtm_with(tmp_path / "dtm.csv", "Partner", ("A", "B"))
    for reason in (None, "  "):
        with pytest.raises(ForecastError, match="overriding the sensitivity level needs a reason"):
            forecast.ingest([path], "dtm", sensitivity="low", sensitivity_reason=reason)
    with pytest.raises(ForecastError, match="sensitivity must be one of"):
        forecast.ingest([path], "dtm", sensitivity="public", sensitivity_reason="published by OCHA")


def test_sensitivity_override_is_applied_and_recorded_with_its_reason(tmp_path):
    """Raising a level takes a reason; lowering one also takes a signed approval (test_lowering.py)."""
    path = dtm_with(tmp_path / "dtm.csv", "Partner", ("A", "B"))
    reason = "the partners' camps are small enough to identify families"
    result = forecast.ingest([path], "dtm", sensitivity="high", sensitivity_reason=reason)
    assert result.cube.attrs["sensitivity"] == "high"
    recorded = result.manifest.sensitivity
    assert (recorded.level, recorded.assessed, recorded.override_reason) == ("high", "moderate", reason)
    assert result.manifest.files[0].sensitivity == "moderate"  # the file's own assessment is kept
    result.write(tmp_path / "out")
    assert forecast.Manifest.read(tmp_path / "out" / "manifest.json").sensitivity == recorded


def test_no_override_reason_is_recorded_without_an_override(tmp_path):
    path = dtm_with(tmp_path / "dtm.csv", "Partner", ("A", "B"))
    recorded = forecast.ingest([path], "dtm", sensitivity_reason="ignored without a level").manifest.sensitivity
    assert (recorded.level, recorded.assessed, recorded.override_reason) == ("moderate", "moderate", None)
