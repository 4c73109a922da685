"""Platform detection: one test per row of the contract's table (first match wins, override)."""

from __future__ import annotations

import pytest
from mldock.runtime.__main__ import default_command
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
    assert detect_serving_platform(_env(opt_ml, AIP_MODE="TRAINING")) == "local"


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
    ({"CLOUD_ML_JOB_ID": "1"}, "train"),  # Vertex passes no 'train' word by default
    ({"AZUREML_RUN_ID": "r"}, "train"),
    ({"TRAINING_JOB_ARN": "arn"}, "train"),
    ({"AIP_MODE": "PREDICTION", "CLOUD_ML_JOB_ID": "1"}, "serve"),
    ({"AZUREML_RUN_ID": "r", "AZUREML_MODEL_DIR": "/m"}, "serve"),
])
def test_default_command(env, command):
    assert default_command(env) == command
