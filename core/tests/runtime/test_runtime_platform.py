"""Platform detection: one test per row of the contract's table (first match wins, override)."""

from __future__ import annotations

import pytest
from mldock.runtime.__main__ import _serve_refused, default_command, run
from mldock.runtime.modeldir import materialize, model_source
from mldock.runtime.platform import detect_serving_platform, detect_training_platform


@pytest.fixture
def opt_ml(tmp_path):
    return tmp_path / "opt_ml"


def _env(opt_ml, **values):
    return {"MLDOCK_OPT_ML": str(opt_ml), **values}


def test_training_sagemaker_by_resourceconfig(opt_ml):
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "resourceconfig.json").write_text("{}")
    assert detect_training_platform(_env(opt_ml)) == "sagemaker"


def test_training_sagemaker_by_job_arn(opt_ml):
    assert detect_training_platform(_env(opt_ml, TRAINING_JOB_ARN="arn:aws:sagemaker:x")) \
        == "sagemaker"


def test_training_sagemaker_by_job_name_or_hyperparameters_file(opt_ml):
    assert detect_training_platform(_env(opt_ml, TRAINING_JOB_NAME="job-1")) == "sagemaker"
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text("{}")
    assert detect_training_platform(_env(opt_ml)) == "sagemaker"


@pytest.mark.parametrize("var", ["CLOUD_ML_JOB_ID", "CLUSTER_SPEC", "AIP_MODEL_DIR"])
def test_training_vertex(opt_ml, var):
    assert detect_training_platform(_env(opt_ml, **{var: "x"})) == "vertex"


def test_training_azureml(opt_ml):
    assert detect_training_platform(_env(opt_ml, AZUREML_RUN_ID="run-1")) == "azureml"


def test_training_local_otherwise(opt_ml):
    assert detect_training_platform(_env(opt_ml)) == "local"


def test_training_first_match_wins(opt_ml):
    env = _env(opt_ml, TRAINING_JOB_ARN="arn", CLOUD_ML_JOB_ID="1", AZUREML_RUN_ID="2")
    assert detect_training_platform(env) == "sagemaker"
    del env["TRAINING_JOB_ARN"]
    assert detect_training_platform(env) == "vertex"


def test_serving_sagemaker_by_serve_argument_and_model_dir(opt_ml):
    (opt_ml / "model").mkdir(parents=True)
    assert detect_serving_platform(_env(opt_ml), serve_argument=True) == "sagemaker"
    # without the explicit argument, a /opt/ml/model folder alone is not SageMaker
    assert detect_serving_platform(_env(opt_ml), serve_argument=False) == "local"


def test_serving_serve_argument_without_model_dir_is_local(opt_ml):
    assert detect_serving_platform(_env(opt_ml), serve_argument=True) == "local"


@pytest.mark.parametrize("var", ["SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_BATCH"])
def test_serving_sagemaker_by_env(opt_ml, var):
    assert detect_serving_platform(_env(opt_ml, **{var: "8080"})) == "sagemaker"


def test_serving_vertex(opt_ml):
    assert detect_serving_platform(_env(opt_ml, AIP_MODE="PREDICTION")) == "vertex"
    assert detect_serving_platform(_env(opt_ml, AIP_MODE="")) == "local"  # empty means unset


@pytest.mark.parametrize("var", ["AIP_MODE", "AIP_HTTP_PORT", "AIP_HEALTH_ROUTE",
                                 "AIP_PREDICT_ROUTE", "AIP_STORAGE_URI", "AIP_DEPLOYED_MODEL_ID"])
def test_serving_vertex_by_any_aip_serving_variable(opt_ml, var):
    assert detect_serving_platform(_env(opt_ml, **{var: "x"}), serve_argument=True) == "vertex"


def test_vertex_local_model_environment(opt_ml, tmp_path):
    """What google-cloud-aiplatform's LocalModel.deploy_to_local_endpoint sets: no AIP_MODE."""
    mount = tmp_path / "tmp_cpr_local_model"
    mount.mkdir()
    env = _env(opt_ml, AIP_HTTP_PORT="8080", AIP_HEALTH_ROUTE="/health",
               AIP_PREDICT_ROUTE="/predict", AIP_STORAGE_URI=str(mount))
    assert default_command(env) == "serve"
    platform = detect_serving_platform(env, serve_argument=False)
    assert platform == "vertex"
    assert model_source(platform, env) == str(mount)


@pytest.mark.parametrize("var", ["AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AZUREML_RUN_ID"])
def test_serving_azureml_by_any_azureml_variable(opt_ml, var):
    assert detect_serving_platform(_env(opt_ml, **{var: "x"})) == "azureml"


def test_azure_local_endpoint_model_dir_with_double_slash(opt_ml, tmp_path):
    """Azure's local endpoint: AZUREML_MODEL_DIR=/var/azureml-app/azureml-models//<name>/<ver>,
    the registered folder one level below."""
    base = tmp_path / "azureml-models"
    root = base / "iris" / "3" / "model"
    root.mkdir(parents=True)
    (root / "mldock-model.json").write_text("{}")
    env = _env(opt_ml, AZUREML_MODEL_DIR=f"{base}//iris/3")
    platform = detect_serving_platform(env, serve_argument=True)
    assert platform == "azureml" and default_command(env) == "serve"
    assert materialize(model_source(platform, env), env) == root


def test_serving_azureml(opt_ml):
    assert detect_serving_platform(_env(opt_ml, AZUREML_MODEL_DIR="/var/m")) == "azureml"


def test_serving_first_match_wins(opt_ml):
    env = _env(opt_ml, SAGEMAKER_BATCH="true", AIP_MODE="PREDICTION", AZUREML_MODEL_DIR="/m")
    assert detect_serving_platform(env) == "sagemaker"


def test_override_wins_everywhere(opt_ml):
    env = _env(opt_ml, MLDOCK_PLATFORM="azureml", TRAINING_JOB_ARN="arn", AIP_MODE="PREDICTION")
    assert detect_training_platform(env) == "azureml"
    assert detect_serving_platform(env) == "azureml"


def test_bad_override_is_an_error(opt_ml):
    with pytest.raises(ValueError, match="MLDOCK_PLATFORM"):
        detect_training_platform(_env(opt_ml, MLDOCK_PLATFORM="heroku"))


@pytest.mark.parametrize(("env", "command"), [
    ({}, "serve"),
    ({"TRAINING_JOB_NAME": "j"}, "train"),  # SageMaker SDK local modes set it
    ({"AIP_MODEL_DIR": "gs://b/m"}, "train"),
    ({"MLDOCK_PLATFORM": "sagemaker"}, "serve"),  # a platform, not a mode
    ({"SAGEMAKER_BIND_TO_PORT": "8080", "TRAINING_JOB_NAME": "j"}, "serve"),
    ({"CLOUD_ML_JOB_ID": "1"}, "train"),  # Vertex passes no 'train' word by default
    ({"AZUREML_RUN_ID": "r"}, "train"),
    ({"TRAINING_JOB_ARN": "arn"}, "train"),
    ({"AIP_MODE": "PREDICTION", "CLOUD_ML_JOB_ID": "1"}, "serve"),
    ({"AZUREML_RUN_ID": "r", "AZUREML_MODEL_DIR": "/m"}, "serve"),
])
def test_default_command(opt_ml, env, command):
    assert default_command(_env(opt_ml, **env)) == command


@pytest.mark.parametrize("config_file", ["resourceconfig.json", "hyperparameters.json"])
def test_sagemaker_training_tree_without_a_command_trains(opt_ml, config_file):
    """SageMaker SDK 3.x local mode starts the container with no command at all."""
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / config_file).write_text("{}")
    env = _env(opt_ml)
    assert default_command(env) == "train"
    assert detect_training_platform(env) == "sagemaker"


def test_explicit_serve_in_a_sagemaker_training_job_is_refused(opt_ml, capsys):
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "resourceconfig.json").write_text("{}")
    assert run(["serve"], _env(opt_ml, TRAINING_JOB_NAME="job-1")) == 2
    err = capsys.readouterr().err
    assert "resourceconfig.json" in err and "must train" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_explicit_serve_with_a_model_present_is_not_refused(opt_ml):
    (opt_ml / "input" / "config").mkdir(parents=True)
    (opt_ml / "input" / "config" / "resourceconfig.json").write_text("{}")
    (opt_ml / "model").mkdir()
    (opt_ml / "model" / "weights.json").write_text("{}")
    assert _serve_refused(_env(opt_ml)) is None
