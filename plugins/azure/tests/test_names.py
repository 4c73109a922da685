"""Azure ML's naming rules: what mldock generates always fits, what the user names is checked."""

from __future__ import annotations

import re

import pytest
from mldock.errors import UsageError
from mldock_azure import names


def test_job_names_fit_azure_and_keep_the_run_id_whole():
    assert names.job_name("iris", "01jc8k2mz3abcd") == "iris-01jc8k2mz3abcd"
    long = names.job_name("p" * 300, "01jc8k2mz3abcd")
    assert len(long) == 255 and long.endswith("-01jc8k2mz3abcd")
    odd = names.job_name("my project/v2!", "r1")
    assert odd == "my-project-v2-r1" and names.JOB_NAME.match(odd)
    assert names.job_name("---", "r1") == "mldock-r1"


def test_experiment_and_model_names():
    assert names.experiment_name("Iris Demo") == "Iris-Demo"
    assert names.model_name("iris.v2 model") == "iris.v2-model"
    assert names.MODEL_NAME.match(names.model_name("ünï"))
    assert names.experiment_name("!!!") == "mldock"


@pytest.mark.parametrize("name", ["iris", "iris-prod-2", "a" * 32, "Ab1"])
def test_valid_endpoint_names_pass(name):
    assert names.check_endpoint_name(name) == name


@pytest.mark.parametrize("name", ["ab", "1iris", "iris-", "iris_prod", "a" * 33, "iris--x",
                                  "iris.prod"])
def test_invalid_endpoint_names_are_refused_with_a_suggestion(name):
    with pytest.raises(UsageError) as info:
        names.check_endpoint_name(name)
    assert info.value.message.startswith(f"endpoint name {name!r} is not valid on Azure ML")
    suggestion = re.search(r"e\.g\. '([^']+)'", info.value.hint or "")[1]
    assert names.check_endpoint_name(suggestion) == suggestion


def test_deployment_names_are_fresh_and_valid():
    first, second = names.deployment_name(), names.deployment_name()
    assert first != second
    for name in (first, second):
        assert names.DEPLOYMENT_NAME.match(name) and len(name) == 19


@pytest.mark.parametrize(("image", "repository"), [
    ("iris:0123", "iris"), ("Team/Iris:0123", "team/iris"),
    ("myreg.azurecr.io/team/iris@sha256:" + "a" * 64, "team/iris"),
    ("127.0.0.1:5000/iris:1", "iris"), ("localhost/iris", "iris")])
def test_repository_names(image, repository):
    assert names.repository_name(image) == repository


def test_registry_hosts_and_pullable_images():
    assert names.registry_host("MyReg") == "myreg.azurecr.io"
    assert names.registry_host("127.0.0.1:5000") == "127.0.0.1:5000"
    assert names.is_acr("myreg12.azurecr.io/iris@sha256:" + "a" * 64)
    assert not names.is_acr("iris:0123") and not names.is_acr("ghcr.io/me/iris:1")
    assert names.is_acr("127.0.0.1:5000/iris:1", ["127.0.0.1:5000"])


def test_mldocks_tags_win_over_the_users():
    tags = names.tags_for("iris", "training", run_id="r1",
                          extra={"team": "ml", names.TAG_PROJECT: "spoofed"})
    assert tags == {"team": "ml", "mldock-project": "iris", "mldock-role": "training",
                    "mldock-run": "r1"}
    assert names.tags_for("iris", "serving", endpoint="ep")["mldock-endpoint"] == "ep"
