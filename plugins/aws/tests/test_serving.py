"""Endpoints against SageMaker on moto: what deploy creates, read back; update, list, undeploy.

moto creates models, endpoint configs and endpoints and reports endpoints InService at once; it
answers ``invoke_endpoint`` with queued bodies (no container runs) and does not implement
UpdateEndpoint (HTTP 500), so an in-place update is checked up to the request it sends and the
clean-up after the refusal.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import uuid

import pytest
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError, UsageError
from mldock.interfaces import DeployRequest
from mldock_aws.modeldata import pack

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj@sha256:" + "cd" * 32
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def endpoint_name() -> str:
    return f"ep-{uuid.uuid4().hex[:10]}"


def request(name: str, model_uri: str, run: str = "run1", **options) -> DeployRequest:
    return DeployRequest(name=name, image=IMAGE, model_uri=model_uri, run_id=run,
                         options={"project": "proj", "port": None, **options})


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


@pytest.fixture
def model_dir(tmp_path):
    """A trained model folder as the runtime leaves it (files + mldock-model.json)."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"\x80\x04weights" * 100)
    (folder / "sub" / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    files = {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest()
             for rel in ("model.joblib", "sub/labels.txt")}
    (folder / "mldock-model.json").write_text(json.dumps(
        {"format": 1, "predictor": "iris.predict:Predictor", "run_id": "run1",
         "created_at": time.time(), "files": files}))
    return folder


def test_deploy_creates_model_config_and_endpoint(make_deployer, aws, bucket, shapes):
    deployer = make_deployer(serve_instance_type="ml.c5.large", serve_instance_count=2,
                             endpoint_startup_timeout_s=600, kms_key_id=KMS,
                             subnets=["subnet-0abc1234"], security_group_ids=["sg-0abc1234"],
                             tags={"team": "ml"})
    name, lines = endpoint_name(), []
    model = f"s3://{bucket}/proj/sagemaker/proj-run1/output/model.tar.gz"
    deployment = deployer.deploy(request(name, model, model_dir="/not/fetched"),
                                 progress=lines.append)
    assert (deployment.name, deployment.status, deployment.run_id) == (name, "ready", "run1")
    assert deployment.image == IMAGE
    assert deployment.url.endswith(f"/endpoints/{name}/invocations")
    assert f"endpoint {name}: InService" in lines
    sagemaker = aws("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant == {"VariantName": "AllTraffic", "ModelName": variant["ModelName"],
                       "InitialInstanceCount": 2, "InstanceType": "ml.c5.large",
                       "InitialVariantWeight": 1.0,
                       "ContainerStartupHealthCheckTimeoutInSeconds": 600}
    assert config["KmsKeyId"] == KMS
    described = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert described["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": model,
                                             "Environment": {"MLDOCK_RUN_ID": "run1"}}
    assert described["ExecutionRoleArn"].endswith(":role/mldock-test-sagemaker")
    assert described["VpcConfig"] == {"Subnets": ["subnet-0abc1234"],
                                      "SecurityGroupIds": ["sg-0abc1234"]}
    for arn in (endpoint["EndpointArn"], config["EndpointConfigArn"], described["ModelArn"]):
        tags = tags_of(sagemaker, arn)
        assert tags["mldock.endpoint"] == name and tags["mldock.run_id"] == "run1"
        assert tags["mldock.project"] == "proj" and tags["team"] == "ml"
        assert tags["mldock.image"] == IMAGE
    assert variant["ModelName"] == endpoint["EndpointConfigName"]  # one name for both
    assert variant["ModelName"].startswith(f"{name}-")


def test_a_local_model_folder_is_packed_and_uploaded_once(deployer, aws, bucket, model_dir):
    """A run trained locally: its folder becomes model.tar.gz (files at the root, as SageMaker
    extracts it into /opt/ml/model) under the output path; an unchanged model is not resent."""
    name, lines = endpoint_name(), []
    deployer.deploy(request(name, "file:///local/store/runs/run1/model",
                            model_dir=str(model_dir)), progress=lines.append)
    key = "proj/sagemaker/models/run1/model.tar.gz"
    sagemaker = aws("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    model = sagemaker.describe_model(ModelName=config)
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{bucket}/{key}"
    body = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert sorted(members) == ["mldock-model.json", "model.joblib", "sub/labels.txt"]
    assert members["model.joblib"] == (model_dir / "model.joblib").read_bytes()
    assert any(line.startswith("uploading the model of run run1") for line in lines)
    deployer.undeploy(name)
    lines.clear()
    deployer.deploy(request(name, "file:///local/store/runs/run1/model",
                            model_dir=str(model_dir)), progress=lines.append)
    assert f"model of run run1 already at s3://{bucket}/{key}" in lines
    deployer.undeploy(name)


def test_a_run_stored_in_the_s3_store_is_packed_from_its_fetched_copy(deployer, aws, bucket,
                                                                      model_dir):
    """``mldock --env aws train --no-container`` stores the model as a tree in the s3 store
    (``s3://…/runs/<id>/model`` is not an archive): core fetches it and passes the folder."""
    name = endpoint_name()
    tree = f"s3://{bucket}/proj/runs/run7/model"
    deployer.deploy(request(name, tree, run="run7", model_dir=str(model_dir)))
    config = aws("sagemaker").describe_endpoint(EndpointName=name)["EndpointConfigName"]
    url = aws("sagemaker").describe_model(ModelName=config)["PrimaryContainer"]["ModelDataUrl"]
    assert url == f"s3://{bucket}/proj/sagemaker/models/run7/model.tar.gz"
    deployer.undeploy(name)
    with pytest.raises(UsageError, match=r"is not a model.tar.gz and no local copy"):
        deployer.deploy(request(endpoint_name(), tree, run="run7"))


def test_the_archive_is_reproducible(model_dir, tmp_path):
    first, second = pack(model_dir, tmp_path / "a.tar.gz"), pack(model_dir, tmp_path / "b.tar.gz")
    assert first == second


def test_a_folder_without_manifest_is_refused(deployer, tmp_path):
    with pytest.raises(MldockError, match="holds no trained model"):
        deployer.deploy(request(endpoint_name(), str(tmp_path)))


def test_redeploy_updates_in_place(deployer, aws, bucket, shapes):
    """The second deploy creates a new model and config and calls UpdateEndpoint with them.

    moto 5.x refuses UpdateEndpoint (HTTP 500, not implemented): then the error says so in one
    line, the new model and config are removed again and the endpoint keeps the old ones. Where
    the update works, the endpoint serves the new config and the old config and model are gone.
    """
    name = endpoint_name()
    model = f"s3://{bucket}/proj/m/model.tar.gz"
    deployer.deploy(request(name, model, run="run1"))
    sagemaker = aws("sagemaker")
    old = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    try:
        deployer.deploy(request(name, model, run="run2"))
        refused = None
    except BackendUnavailableError as exc:
        refused = exc
    sent = shapes.last("UpdateEndpoint")
    new = sent["EndpointConfigName"]
    assert sent == {"EndpointName": name, "EndpointConfigName": new} and new != old
    assert shapes.last("CreateModel")["ModelName"] == new
    assert shapes.last("CreateModel")["PrimaryContainer"]["Environment"] == {
        "MLDOCK_RUN_ID": "run2"}
    if refused is not None:
        assert "does not implement UpdateEndpoint" in refused.message
        assert shapes.last("DeleteEndpointConfig") == {"EndpointConfigName": new}
        assert shapes.last("DeleteModel") == {"ModelName": new}
        assert sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == old
        sagemaker.describe_model(ModelName=old)
    else:
        assert sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == new
        assert shapes.last("DeleteEndpointConfig") == {"EndpointConfigName": old}
        assert deployer.get(name).run_id == "run2"
    deployer.undeploy(name)


def test_get_and_list_show_only_mldock_endpoints(deployer, aws, bucket):
    first, second = sorted([endpoint_name(), endpoint_name()])
    for name in (second, first):
        deployer.deploy(request(name, f"s3://{bucket}/m.tar.gz", run=f"run-{name}"))
    sagemaker = aws("sagemaker")
    foreign = endpoint_name()
    sagemaker.create_model(ModelName=foreign, ExecutionRoleArn=deployer.options.role_arn,
                           PrimaryContainer={"Image": IMAGE})
    sagemaker.create_endpoint_config(EndpointConfigName=foreign, ProductionVariants=[{
        "VariantName": "v", "ModelName": foreign, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=foreign, EndpointConfigName=foreign)
    listed = [d.name for d in deployer.list()]
    assert first in listed and second in listed and foreign not in listed
    assert listed == sorted(listed)
    got = deployer.get(first)
    assert (got.status, got.run_id, got.image) == ("ready", f"run-{first}", IMAGE)
    assert got.details["sagemaker_status"] == "InService"
    assert deployer.get(foreign).run_id is None  # any endpoint can be looked at
    for name in (first, second):
        deployer.undeploy(name)


def test_undeploy_removes_endpoint_configs_and_models_it_made(deployer, aws, bucket):
    """Only resources tagged with this endpoint: ``abc`` must not take ``abc-2``'s along."""
    name = endpoint_name()
    neighbour = f"{name}-2"
    for target in (name, neighbour):
        deployer.deploy(request(target, f"s3://{bucket}/m.tar.gz"))
    sagemaker = aws("sagemaker")
    mine = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    theirs = sagemaker.describe_endpoint(EndpointName=neighbour)["EndpointConfigName"]
    deployer.undeploy(name)
    with pytest.raises(NotFoundError, match=name):
        deployer.get(name)
    configs = {c["EndpointConfigName"] for c in
               sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]}
    models = {m["ModelName"] for m in sagemaker.list_models(MaxResults=100)["Models"]}
    assert mine not in configs and mine not in models
    assert theirs in configs and theirs in models
    assert deployer.get(neighbour).status == "ready"
    deployer.undeploy(neighbour)


def test_unknown_endpoints_raise_not_found(deployer):
    name = endpoint_name()
    for call in (deployer.get, deployer.undeploy):
        with pytest.raises(NotFoundError) as info:
            call(name)
        assert f"no SageMaker endpoint named {name!r} in us-east-1" in info.value.message
        assert "deploy --list" in info.value.hint


def test_predict_sends_body_and_headers_and_returns_the_answer(deployer, moto, bucket, shapes):
    name = endpoint_name()
    deployer.deploy(request(name, f"s3://{bucket}/m.tar.gz"))
    answer = json.dumps({"predictions": ["setosa", "virginica"]})
    moto.queue_endpoint_results({"Body": answer, "ContentType": "application/json",
                                 "InvokedProductionVariant": "AllTraffic",
                                 "CustomAttributes": ""})
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()
    prediction = deployer.predict(name, body, content_type="application/json",
                                  accept="application/json")
    assert (prediction.status, prediction.content_type) == (200, "application/json")
    assert json.loads(prediction.body) == {"predictions": ["setosa", "virginica"]}
    assert shapes.last("InvokeEndpoint") == {"EndpointName": name, "Body": body,
                                             "ContentType": "application/json",
                                             "Accept": "application/json"}
    deployer.undeploy(name)
