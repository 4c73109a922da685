"""The image ``mldock build`` makes, under SageMaker Python SDK v3's local mode.

``ModelTrainer(training_mode=Mode.LOCAL_CONTAINER, training_image=…)`` starts the image with **no
argument** unless a ``SourceCode`` command is given (then the SDK's own shell driver runs the
command inside the image): the image must train either way. The model it packs is then hosted
through ``sagemaker.core.local.LocalSession`` (create model, endpoint config, endpoint;
``invoke_endpoint``). The SDK is pinned in ``requirements/sagemaker-v3.txt``, in its own venv;
docker-compose and the engine are real; predictions must equal ``mldock predict``'s.
"""

from __future__ import annotations

import pytest
import sagemaker_local as sm

pytestmark = pytest.mark.docker

TRAINED = "training finished; model in /opt/ml/model"


@pytest.fixture(scope="module")
def v3_python(sdk_python, docker_compose):
    return sdk_python("sagemaker-v3")


def test_model_trainer_without_command_then_local_hosting(platform_project, engine, v3_python,
                                                          run_driver, tmp_path):
    """No argument in a SageMaker training environment trains (never serves); LocalSession then
    serves that model and answers as ``mldock predict`` did."""
    result = sm.run_sdk(platform_project, engine, v3_python, run_driver, "sagemaker_v3",
                        tmp_path / "v3-plain", command=None, host=True,
                        hyperparameters=sm.project_hyperparameters(platform_project))
    assert TRAINED in result["log"]
    assert "serving on" not in result["log"].split(TRAINED)[0]
    manifest = sm.check_model(result["files"])
    assert manifest["files"] == sm.exported_manifest(platform_project)["files"]
    assert sm.predictions(result["answer"]) == platform_project.expected


def test_model_trainer_source_code_command(platform_project, engine, v3_python, run_driver,
                                           tmp_path):
    """``SourceCode(command="train")``: the SDK's shell driver runs ``train`` in the image; the
    hyperparameters it passes (JSON-serialised by the SDK) reach ``train()``."""
    hyperparameters = {**sm.project_hyperparameters(platform_project),
                       "model": "forest", "n_estimators": 20, "max_depth": 3}
    result = sm.run_sdk(platform_project, engine, v3_python, run_driver, "sagemaker_v3",
                        tmp_path / "v3-command", command="train", host=False,
                        hyperparameters=hyperparameters)
    assert "Executing command: train" in result["log"]
    assert TRAINED in result["log"]
    assert "grew 20 trees" in result["log"]
    manifest = sm.check_model(result["files"])
    assert sorted(manifest["files"]) == ["model.joblib"]
