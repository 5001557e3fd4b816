"""Exports people can publish (`forecast export`): HXL, CSV and GeoJSON of a real tiny train run in MLflow,
under the policy's publication rule, with metadata for HDX, and the HXL forecasts ingested back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cube import load_cube, save_cube
from forecast.errors import ForecastError
from forecast.ethics import NOT_RELEASED
from forecast.pipeline import export_run, release
from forecast.policy import load_policy

from _pipeline import copy_run, policy_file, review_and_sign, tiny_pipeline

K = 5  # the test policy's small-cell k (ethics/policy.yaml)
TINY = "XY0105"  # an area whose arrivals are always 1 to 3 people: its lower bounds are small cells

#: The hashtags the module docstring of forecast/report/_export.py documents, for an arrivals model.
FORECAST_TAGS = {
    "admin0_pcode": "#country+code", "admin0_name": "#country+name",
    "admin1_pcode": "#adm1+code", "admin1_name": "#adm1+name", "admin2_pcode": "#adm2+code",
    "admin2_name": "#adm2+name", "forecast_month": "#date+forecast", "horizon": "#meta+horizon",
    "arrivals_median": "#affected+arrivals+median", "arrivals_lower80": "#affected+arrivals+lower80",
    "arrivals_upper80": "#affected+arrivals+upper80", "arrivals_mean": "#affected+arrivals+mean",
    "probability": "#indicator+probability+monthly",
    "threshold": "#affected+arrivals+threshold", "status": "#status+assessment", "trigger": "#meta+trigger",
    "lead": "#meta+lead", "release_status": "#status+release"}
RANKING_TAGS = {
    "rank": "#indicator+rank", "admin0_pcode": "#country+code", "admin0_name": "#country+name",
    "admin1_pcode": "#adm1+code", "admin1_name": "#adm1+name", "admin2_pcode": "#adm2+code",
    "admin2_name": "#adm2+name", "probability": "#indicator+probability+window", "signal": "#indicator+signal",
    "arrivals_expected": "#affected+arrivals+expected", "arrivals_lower80": "#affected+arrivals+lower80",
    "arrivals_upper80": "#affected+arrivals+upper80", "arrivals_mean": "#affected+arrivals+mean",
    "threshold": "#affected+arrivals+threshold", "last_data": "#date+observed", "status": "#status+assessment", "trigger": "#meta+trigger", "lead": "#meta+lead",
    "release_status": "#status+release"}
COUNTS = ["arrivals_median", "arrivals_lower80", "arrivals_upper80", "arrivals_expected", "arrivals_mean", "threshold"]


def _planted(cube):
    """TINY records 1 to 3 people every month (small lower bounds); XY0206 has no record for 9 months (unassessed)."""
    cube = cube.copy(deep=True)
    areas = list(cube["area"].values)
    tiny, stale = areas.index(TINY), areas.index("XY0206")
    cube["arrivals"].values[tiny] = 1.0 + np.arange(cube.sizes["time"]) % 3
    cube["arrivals_observed"].values[tiny] = True
    cube["arrivals"].values[stale, -9:] = np.nan
    cube["arrivals_observed"].values[stale, -9:] = False
    return cube


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from forecast.datasets import make_panel

    root = tmp_path_factory.mktemp("export")
    env = tiny_pipeline(root, cube=_planted(make_panel(12, 48, seed=9, with_flows=True)))
    save_cube(env["cube"], root / "cube.nc")
    env["client"].set_tag(env["train"], "cube_path", str(root / "cube.nc"))  # as `forecast train` records it
    return env


@pytest.fixture(scope="module")
def hxl(pipeline):
    """The HXL export of the unreleased train run, through the command line (cube from the run's tag)."""
    out = pipeline["root"] / "hxl"
    result = CliRunner().invoke(app, ["export", "--run", pipeline["train"], "--format", "hxl", "--out", str(out),
                                      "--policy", str(pipeline["policy_path"]), "--tracking-uri", pipeline["uri"]])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def boundaries(pipeline):
    """Square districts on a grid, as a COD-style GeoJSON (one district left out)."""
    features = []
    for i, pcode in enumerate(pipeline["cube"]["area"].values.astype(str)[:-1]):
        x, y = i % 4, i // 4
        ring = [[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"admin2Pcode": pcode, "admin2Name_en": f"District {pcode[2:]}",
                                        "admin1Pcode": pcode[:4], "admin1Name_en": f"Region {pcode[2:4]}"}})
    path = pipeline["root"] / "districts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _hxl(path: Path) -> tuple[dict, pd.DataFrame]:
    """The hashtag of each column, and the rows below the hashtag row."""
    with path.open(encoding="utf-8") as handle:
        header, tags = next(csv.reader(handle)), next(csv.reader(handle))
    return dict(zip(header, tags)), pd.read_csv(path, skiprows=[1], dtype={"admin2_pcode": str})


def _files(out: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(out.iterdir())}


# --- what the files say ------------------------------------------------------------------------

def test_hxl_export_tags_every_column_with_the_documented_hashtag(hxl):
    files = _files(hxl)
    assert set(files) == {"forecasts_NOT-RELEASED.hxl.csv", "ranking_NOT-RELEASED.hxl.csv",
                          "metadata_NOT-RELEASED.json"}
    tags, _ = _hxl(files["forecasts_NOT-RELEASED.hxl.csv"])
    assert tags == FORECAST_TAGS
    tags, _ = _hxl(files["ranking_NOT-RELEASED.hxl.csv"])
    assert tags == RANKING_TAGS


def test_exported_forecasts_and_ranking_equal_the_models_as_published(pipeline, hxl):
    trained, cube = pipeline["trained"], pipeline["cube"]
    _, forecasts = _hxl(hxl / "forecasts_NOT-RELEASED.hxl.csv")
    model = trained.predict(cube).assign(forecast_month=lambda f: f["time"].dt.strftime("%Y-%m"))
    both = forecasts.merge(model, left_on=["admin2_pcode", "forecast_month"], right_on=["area", "forecast_month"])
    assert len(both) == len(model) == len(forecasts) == 12 * 3
    for published, q in (("arrivals_median", "q0.5"), ("arrivals_lower80", "q0.1"), ("arrivals_upper80", "q0.9"),
                         ("arrivals_mean", "mean")):
        expected = both[q].round()
        shown = expected.where((expected < 1) | (expected >= K))  # 1..k-1 withheld
        np.testing.assert_allclose(both[published], shown, atol=0.5 + 1e-9)
    _, ranking = _hxl(hxl / "ranking_NOT-RELEASED.hxl.csv")
    ranked = trained.prioritize(cube, "spike", 3).set_index("area").loc[ranking["admin2_pcode"]]
    assert ranking["rank"].tolist() == pytest.approx(ranked["rank"].tolist(), nan_ok=True)
    ok = ranked["status"].str.startswith("ok").to_numpy()
    np.testing.assert_allclose(ranking["probability"], ranked["probability"].where(ok), atol=5e-4)
    assert ranking["signal"].fillna("").tolist() == [
        "" if not assessed else "yes" if s else "no" for assessed, s in zip(ok, ranked["signal"])]
    np.testing.assert_allclose(ranking["arrivals_expected"], ranked["expected"].round(), atol=0.5 + 1e-9)
    # the window's mean adds up: each area's months of the forecasts file, summed
    window = model[model["horizon"] <= 3].groupby("area")["mean"].sum().loc[ranking["admin2_pcode"]]
    np.testing.assert_allclose(ranked["mean"], window.to_numpy(), rtol=1e-9)
    shown = ranked["mean"].round().where(lambda v: (v < 1) | (v >= K))
    np.testing.assert_allclose(ranking["arrivals_mean"], shown, atol=0.5 + 1e-9)
    stale = ranking.set_index("admin2_pcode").loc["XY0206"]
    assert np.isnan(stale["rank"]) and np.isnan(stale["probability"]) and stale["status"] != "ok"
    # unassessed in the ranking: its forecasts are shown, with its status and no probability that reads as safe
    stale_months = forecasts[forecasts["admin2_pcode"] == "XY0206"]
    assert stale_months["probability"].isna().all() and (stale_months["status"] == stale["status"]).all()
    # the window's probability is its likeliest month's
    window = forecasts[forecasts["horizon"] <= 3].groupby("admin2_pcode")["probability"].max()
    assessed = ranking.dropna(subset=["probability"]).set_index("admin2_pcode")["probability"]
    np.testing.assert_allclose(window.loc[assessed.index], assessed, atol=1e-9)


def test_no_count_of_1_to_k_minus_1_people_is_published_and_metadata_counts_the_withheld(pipeline, hxl):
    _, forecasts = _hxl(hxl / "forecasts_NOT-RELEASED.hxl.csv")
    _, ranking = _hxl(hxl / "ranking_NOT-RELEASED.hxl.csv")
    for table in (forecasts, ranking):
        values = table[[c for c in COUNTS if c in table]].to_numpy(float)
        assert not ((values >= 1) & (values < K)).any()
    tiny = forecasts[forecasts["admin2_pcode"] == TINY]
    assert tiny["arrivals_lower80"].isna().any()  # its interval reaches down to 1-4 people: withheld, not shown
    trained, cube = pipeline["trained"], pipeline["cube"]
    model = trained.predict(cube)[["q0.5", "q0.1", "q0.9"]].to_numpy(float)
    ranked = trained.prioritize(cube, "spike", 3)
    model_values = np.concatenate([model.ravel(), ranked["threshold"].to_numpy(float).repeat(3),
                                   ranked[["expected", "lower", "upper", "threshold"]].to_numpy(float).ravel()])
    small = int(((model_values.round() >= 1) & (model_values.round() < K)).sum())
    meta = json.loads((hxl / "metadata_NOT-RELEASED.json").read_text(encoding="utf-8"))
    assert meta["small_cells"]["k"] == K and meta["small_cells"]["withheld"] == small >= 3


def test_unreleased_export_says_so_in_every_file_name_and_on_every_row(hxl):
    for path in hxl.iterdir():
        assert "NOT-RELEASED" in path.name
    for name in ("forecasts_NOT-RELEASED.hxl.csv", "ranking_NOT-RELEASED.hxl.csv"):
        _, table = _hxl(hxl / name)
        assert (table["release_status"] == NOT_RELEASED).all() and len(table)
    meta = json.loads((hxl / "metadata_NOT-RELEASED.json").read_text(encoding="utf-8"))
    assert meta["release_status"] == {"released": False, "label": NOT_RELEASED, "registered_model": None,
                                      "version": None}


def test_metadata_holds_the_hdx_fields_and_no_machine_path(pipeline, hxl, tmp_path):
    meta = json.loads((hxl / "metadata_NOT-RELEASED.json").read_text(encoding="utf-8"))
    assert meta["run_id"] == pipeline["train"] and meta["model"]["name"] == "tiny_lgbm"
    assert meta["sensitivity"] == "high" and meta["admin_level"] == 2 and meta["data_month"] == "2019-12"
    assert meta["source_datasets"] == [{"file": "prmn.csv", "sha256": None, "format": "flows", "rows_kept": 10}]
    assert meta["policy"] == {"file": "policy.yaml", "sha256": pipeline["policy"].hash()}
    hdx = meta["hdx"]
    assert set(hdx) >= {"title", "dataset_source", "methodology", "caveats", "license_id", "license_other",
                        "dataset_date"}
    assert hdx["license_other"].startswith("None stated") and "prmn.csv" in hdx["dataset_source"]
    written = {f["name"]: f for f in meta["files"]}
    assert set(written) == {"forecasts_NOT-RELEASED.hxl.csv", "ranking_NOT-RELEASED.hxl.csv"}
    import hashlib
    for name, entry in written.items():
        assert entry["sha256"] == hashlib.sha256((hxl / name).read_bytes()).hexdigest()
    for path in hxl.iterdir():
        text = path.read_text(encoding="utf-8")
        for machine in (str(pipeline["root"]), str(tmp_path), "/work", "/tmp", str(Path.home())):
            assert machine not in text, (path.name, machine)


def test_hxl_forecasts_ingest_back_through_the_command_line_with_the_same_values(hxl, tmp_path):
    forecasts = hxl / "forecasts_NOT-RELEASED.hxl.csv"
    result = CliRunner().invoke(app, ["ingest", str(forecasts), "--format", "hxl", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    cube = load_cube(tmp_path / "cube.nc")
    _, table = _hxl(forecasts)
    back = cube["arrivals"].to_pandas().stack().rename("back").reset_index()
    back["forecast_month"] = back["time"].dt.strftime("%Y-%m")
    both = table.merge(back, left_on=["admin2_pcode", "forecast_month"], right_on=["area", "forecast_month"],
                       how="left")
    np.testing.assert_array_equal(both["back"].to_numpy(float), both["arrivals_median"].to_numpy(float))
    assert both["back"].notna().sum() == table["arrivals_median"].notna().sum() > 0
    assert set(cube["area"].values) == set(table.dropna(subset=["arrivals_median"])["admin2_pcode"])


def test_csv_export_is_the_same_tables_without_the_hashtag_row(pipeline, hxl, tmp_path):
    paths = export_run(pipeline["train"], "csv", tmp_path, policy=pipeline["policy"], tracking_uri=pipeline["uri"])
    assert [p.name for p in paths] == ["forecasts_NOT-RELEASED.csv", "ranking_NOT-RELEASED.csv",
                                       "metadata_NOT-RELEASED.json"]
    for name in ("forecasts", "ranking"):
        plain = pd.read_csv(tmp_path / f"{name}_NOT-RELEASED.csv", dtype={"admin2_pcode": str})
        pd.testing.assert_frame_equal(plain, _hxl(hxl / f"{name}_NOT-RELEASED.hxl.csv")[1])


def test_geojson_export_draws_the_ranking_from_the_boundaries(pipeline, boundaries, tmp_path):
    paths = export_run(pipeline["train"], "geojson", tmp_path, boundaries=boundaries, policy=pipeline["policy"],
                       tracking_uri=pipeline["uri"])
    assert [p.name for p in paths] == ["ranking_NOT-RELEASED.geojson", "metadata_NOT-RELEASED.json"]
    features = json.loads(paths[0].read_text(encoding="utf-8"))["features"]
    assert len(features) == 12
    by_area = {f["properties"]["admin2_pcode"]: f for f in features}
    assert by_area["XY0101"]["geometry"]["type"] == "MultiPolygon"
    assert by_area["XY0206"]["geometry"] is None  # not in the boundaries: listed, not drawn
    assert by_area["XY0206"]["properties"]["rank"] is None and by_area["XY0206"]["properties"]["status"] != "ok"
    meta = json.loads(paths[1].read_text(encoding="utf-8"))
    assert meta["files"][0]["geometry_missing"] == ["XY0206"]


# --- what is refused -----------------------------------------------------------------------------

def test_geojson_without_boundaries_is_refused_naming_the_option(pipeline, tmp_path):
    with pytest.raises(ForecastError, match="pass --boundaries FILE.geojson"):
        export_run(pipeline["train"], "geojson", tmp_path / "out", tracking_uri=pipeline["uri"])
    result = CliRunner().invoke(app, ["export", "--run", pipeline["train"], "--format", "geojson", "--out",
                                      str(tmp_path / "out"), "--tracking-uri", pipeline["uri"]])
    assert result.exit_code == 2 and "--boundaries" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_cube_finer_than_the_sensitivity_allows_is_refused(pipeline, tmp_path):
    strict = load_policy(policy_file(tmp_path / "strict.yaml",
                                     **{"release.admin_level.finest": {"low": 3, "moderate": 3, "high": 1,
                                                                        "severe": 1}}))
    with pytest.raises(ForecastError, match=r"the data are admin2 at sensitivity high; .* publishes nothing finer "
                                            r"than admin1"):
        export_run(pipeline["train"], "hxl", tmp_path / "out", policy=strict, tracking_uri=pipeline["uri"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--run", "no-such-run", "--format", "hxl"], "no MLflow train run 'no-such-run'"),
    (["--run", "RUN", "--format", "xlsx"], "Invalid value for '--format'"),
], ids=["unknown-run", "bad-format"])
def test_cli_errors_exit_2_without_a_traceback(pipeline, tmp_path, args, message):
    args = [pipeline["train"] if a == "RUN" else a for a in args]
    result = CliRunner().invoke(app, ["export", *args, "--out", str(tmp_path / "out"),
                                      "--tracking-uri", pipeline["uri"]])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_released_model_export_has_no_release_column_nor_mark(pipeline, tmp_path):
    env = copy_run(pipeline, tmp_path)
    review_and_sign(env)
    outcome = release(env["run"], env["name"], by="releaser", tracking_uri=env["uri"], reviews_dir=env["reviews"],
                      log=env["log"], policy=env["policy"])
    assert outcome.released, [c.check for c in outcome.report.unmet]
    paths = export_run(env["run"], "csv", tmp_path / "out", cube=pipeline["cube"], policy=pipeline["policy"],
                       tracking_uri=env["uri"])
    assert [p.name for p in paths] == ["forecasts.csv", "ranking.csv", "metadata.json"]
    assert "release_status" not in pd.read_csv(paths[0]).columns
    meta = json.loads(paths[2].read_text(encoding="utf-8"))
    assert meta["release_status"]["released"] and meta["release_status"]["registered_model"] == env["name"]
