"""High and severe data reach a tracking server only with credentials and TLS (loopback aside),
unless a team accepts the risk on the record; and the whole pipeline runs against MLflow's
basic-auth server.

The server is real: ``mlflow server --app-name basic-auth`` on 127.0.0.1 with its own user
database, proxying artifacts, so every upload and download carries the credentials.
"""

from __future__ import annotations


import mlflow
import pytest
from mlflow.tracking import MlflowClient

from forecast.errors import ForecastError
from forecast.pipeline import release, release_status
from forecast.tracking import log_backtest
from forecast.tracking._transport import ALLOW_ENV, check_transport, transport

from _pipeline import MANIFEST, TRIGGERS, copy_run, review_and_sign, tiny_pipeline
from _server import mlflow_server

ADMIN, PASSWORD = "admin", "correct-horse-battery"


@pytest.mark.parametrize("uri, remote, authenticated, encrypted", [
    ("sqlite:///mlflow.db", False, False, False),
    ("/data/mlruns", False, False, False),
    ("file:///data/mlruns", False, False, False),
    ("https://mlflow.example.org", True, False, True),
    ("http://10.0.0.5:5000", True, False, False),
    ("http://user:pw@10.0.0.5:5000", True, True, False),
    ("http://127.0.0.1:5000", True, False, True),  # loopback: nothing crosses a network
    ("postgresql://u:pw@db.example.org/mlflow?sslmode=require", True, True, True),
    ("postgresql://u@db.example.org/mlflow", True, False, False),
    ("databricks", True, True, True),
])
def test_a_tracking_uri_is_read_as_local_or_a_server_with_or_without_auth_and_tls(
        uri, remote, authenticated, encrypted, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    found = transport(uri)
    assert (found.remote, found.authenticated, found.encrypted) == (remote, authenticated, encrypted)


@pytest.mark.parametrize("level", ["high", "severe"])
def test_guarded_data_to_a_plain_server_is_refused_naming_what_is_missing_and_never_the_password(level, monkeypatch):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "amina")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    with pytest.raises(ForecastError) as info:
        check_transport("http://amina:s3cret@10.0.0.5:5000", level)
    text = str(info.value)
    assert f"refusing to log {level}-sensitivity data to http://10.0.0.5:5000" in text
    assert "no TLS" in text and "s3cret" not in text and ALLOW_ENV in text
    # moderate data may go; a reason on the record lets guarded data go too, and is kept
    assert check_transport("http://10.0.0.5:5000", "moderate") == {"tracking_transport": "server, authenticated, no TLS"}
    monkeypatch.setenv(ALLOW_ENV, "air-gapped project network, approved by the DPO 2026-11")
    tags = check_transport("http://10.0.0.5:5000", level)
    assert tags["tracking_allowance"] == "air-gapped project network, approved by the DPO 2026-11"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server --app-name basic-auth`` on 127.0.0.1 with an admin of our choosing."""
    root = tmp_path_factory.mktemp("basic_auth")
    config = root / "basic_auth.ini"
    config.write_text("[mlflow]\ndefault_permission = READ\n"
                      f"database_uri = sqlite:///{root / 'users.db'}\n"
                      f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                      # MLflow's own credential cache: a password hash is checked once, not on every request
                      "auth_cache_ttl_seconds = 300\n")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret"}
    with mlflow_server(root, "--app-name", "basic-auth", env=env) as uri:
        yield uri


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)


def _tiny(tmp_path):
    from forecast.backtest import RollingOrigin, backtest
    from forecast.datasets import make_panel
    from forecast.models import load_spec

    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2, 3]\n"
                                        "params: {n_estimators: 20, num_leaves: 7, min_child_samples: 5}\n")
    spec, cube = load_spec(tmp_path / "spec.yaml"), make_panel(12, 48, seed=9)
    return spec, cube, backtest(cube, [spec], folds=RollingOrigin(n_origins=3, calibration_origins=4, min_train=12))


def test_high_data_without_credentials_is_refused_before_anything_is_sent(server, tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", ALLOW_ENV):
        monkeypatch.delenv(name, raising=False)
    _, _, result = _tiny(tmp_path)
    with pytest.raises(ForecastError, match="no authentication"):
        log_backtest(result, manifest=MANIFEST, experiment="refused", tracking_uri=server, sample_areas=0)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert MlflowClient(tracking_uri=server).get_experiment_by_name("refused") is None


def test_the_pipeline_runs_against_a_basic_auth_server(server, credentials, tmp_path):
    """Backtest with triggers and fairness, train, card, review, release, and the verified
    release status and ranking: every call authenticated, high-sensitivity data throughout."""
    (tmp_path / "pipeline").mkdir()
    # one lead: every figure of the trigger and fairness evaluation is an authenticated upload
    pipeline = tiny_pipeline(tmp_path / "pipeline", uri=server, triggers_yaml=TRIGGERS.replace("[1, 3]", "[1]"))
    run = MlflowClient(tracking_uri=server).get_run(pipeline["train"])
    assert run.data.tags["tracking_transport"] == "server, authenticated, loopback"
    assert run.data.tags["sensitivity"] == "high"
    env = copy_run(pipeline, tmp_path)
    review_and_sign(env)
    outcome = release(env["run"], env["name"], by="releaser", tracking_uri=server, reviews_dir=env["reviews"],
                      log=env["log"], policy=env["policy"])
    assert outcome.released, outcome.report.to_markdown()
    assert release_status(env["run"], tracking_uri=server, log=env["log"]).released
    cube_path = tmp_path / "cube.nc"
    pipeline["cube"].to_netcdf(cube_path)
    from typer.testing import CliRunner

    from forecast.cli import app

    answer = CliRunner().invoke(app, ["prioritize", "--run", env["run"], "--cube", str(cube_path),
                                      "--out", str(tmp_path / "rank"), "--tracking-uri", server])
    assert answer.exit_code == 0, answer.output
    assert f"released: {env['name']} version {outcome.version}" in answer.output
