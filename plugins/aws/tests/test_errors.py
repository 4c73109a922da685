"""Each way reaching AWS goes wrong becomes one line saying what is wrong and what to do.

Provoked for real wherever moto allows: no credentials, no region, an unknown profile, a closed
port, and (on a second moto server with IAM enforcement on) refused keys and a user whose policy
denies SageMaker writes. Codes moto never sends (quotas, throttling, a role SageMaker cannot
assume) go through the mapping as the ClientErrors botocore builds from SageMaker's JSON errors.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError
from mldock.interfaces import TrainingJob
from mldock_aws.errors import describe

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj@sha256:" + "12" * 32


def job(bucket: str) -> TrainingJob:
    return TrainingJob(run_id=uuid.uuid4().hex[:14], image=IMAGE,
                       inputs={"train": f"s3://{bucket}/data/x"})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_credentials_anywhere(monkeypatch, deployer, bucket):
    """Keys unset; AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE are empty (conftest)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MldockError) as info:
        deployer.train(job(bucket))
    assert info.value.message.startswith("cannot create training job proj-")
    assert info.value.message.endswith(": no AWS credentials found")
    assert "AWS_ACCESS_KEY_ID" in info.value.hint and "aws sso login" in info.value.hint
    assert [(c.name, c.ok) for c in deployer.check()] == [("AWS credentials", False)]


def test_no_region(monkeypatch, make_deployer):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    deployer = make_deployer(region=None)
    with pytest.raises(MldockError) as info:
        deployer.get("anything")
    assert "no AWS region is set" in info.value.message
    assert "[deploy.sagemaker] region" in info.value.hint
    (check,) = deployer.check()
    assert not check.ok and "region" in check.detail


def test_unknown_profile(make_deployer):
    deployer = make_deployer(profile="nope")
    with pytest.raises(MldockError, match="AWS profile 'nope' is not defined"):
        deployer.list()


def test_unreachable_endpoint_is_named_quickly(make_deployer, bucket):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    deployer = make_deployer(endpoint_url=endpoint)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        deployer.train(job(bucket))
    assert time.monotonic() - started < 30
    assert endpoint in info.value.message and "not reachable" in info.value.message
    assert "endpoint_url" in info.value.hint
    (check,) = [c for c in deployer.check() if c.name == "AWS credentials"]
    assert not check.ok and endpoint in check.detail


def test_doctor_checks_credentials_region_and_role(make_deployer, aws):
    """STS says who the credentials are; IAM whether the execution role exists."""
    role = f"mldock-doctor-{uuid.uuid4().hex[:8]}"
    deployer = make_deployer(role_arn=f"arn:aws:iam::123456789012:role/service-role/{role}")
    checks = {c.name: c for c in deployer.check()}
    assert checks["AWS credentials"].ok
    assert "account 123456789012" in checks["AWS credentials"].detail
    assert "(env)" in checks["AWS credentials"].detail  # how they were found, never the keys
    assert checks["AWS region"].detail == "us-east-1"
    missing = checks["SageMaker role"]
    assert not missing.ok and "does not exist" in missing.detail
    assert "sagemaker.amazonaws.com" in missing.hint
    aws("iam").create_role(RoleName=role, Path="/service-role/",
                           AssumeRolePolicyDocument=json.dumps({
                               "Version": "2012-10-17", "Statement": [{
                                   "Effect": "Allow", "Action": "sts:AssumeRole",
                                   "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))
    found = {c.name: c for c in deployer.check()}["SageMaker role"]
    assert found.ok and "exists" in found.detail


# --- moto with IAM enforcement ----------------------------------------------------------------

VIEWER_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Resource": "*",
    "Action": ["sagemaker:Describe*", "sagemaker:List*", "sts:GetCallerIdentity", "iam:GetRole"]}]}


@pytest.fixture(scope="module")
def locked(start_moto):
    """``(endpoint, key id, secret)`` of a read-only user on a moto server enforcing IAM."""
    import boto3

    server = start_moto()
    root = {"endpoint_url": server.url, "region_name": "us-east-1",
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam = boto3.client("iam", **root)
    iam.create_user(UserName="viewer")
    iam.put_user_policy(UserName="viewer", PolicyName="read-only",
                        PolicyDocument=json.dumps(VIEWER_POLICY))
    key = iam.create_access_key(UserName="viewer")["AccessKey"]
    server.post("/moto-api/reset-auth", b"0")
    return server.url, key["AccessKeyId"], key["SecretAccessKey"]


def test_access_denied_for_real(locked, monkeypatch, make_deployer, bucket):
    endpoint, key_id, secret = locked
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    deployer = make_deployer(endpoint_url=endpoint)
    assert deployer.list() == []  # reading is allowed
    with pytest.raises(MldockError) as info:
        deployer.train(job(bucket))
    message = info.value.message
    assert message.startswith("access denied: cannot create training job proj-")
    assert "not authorized to perform: sagemaker:CreateTrainingJob" in message
    assert "CreateTrainingJob" in info.value.hint
    assert secret not in str(info.value)
    assert {c.name: c.ok for c in deployer.check()}["AWS credentials"]


def test_unknown_keys_are_rejected_for_real(locked, make_deployer):
    endpoint, _, _ = locked
    deployer = make_deployer(endpoint_url=endpoint)  # moto's IAM does not know "testing"
    with pytest.raises(MldockError) as info:
        deployer.list()
    assert "AWS rejected the credentials (InvalidClientTokenId)" in info.value.message
    (check,) = deployer.check()
    assert not check.ok and "rejected" in check.detail


# --- codes moto never sends ---------------------------------------------------------------------


def sagemaker_error(code: str, message: str, status: int = 400,
                    operation: str = "CreateTrainingJob") -> ClientError:
    """A ClientError as botocore builds it from SageMaker's JSON error body."""
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize(("error", "kind", "text", "hint"), [
    (sagemaker_error("ResourceLimitExceeded", "The account-level service limit 'ml.p3.2xlarge"
                     " for training job usage' is 0 Instances"), MldockError,
     "an AWS quota is exhausted: The account-level service limit", "Service Quotas"),
    (sagemaker_error("ThrottlingException", "Rate exceeded"), BackendUnavailableError,
     "cannot create training job x: Rate exceeded", "retry later"),
    (sagemaker_error("ValidationException", "Could not assume role arn:aws:iam::123456789012:"
                     "role/x. Please ensure that the role exists and allows principal"
                     " 'sagemaker.amazonaws.com' to assume the role."), MldockError,
     "SageMaker cannot use the execution role", "deploy.sagemaker.role_arn"),
    (sagemaker_error("ValidationException", "Could not find endpoint \"arn:…/iris\".",
                     operation="DescribeEndpoint"), NotFoundError, "does not exist", "name"),
    (sagemaker_error("ResourceInUse", "Cannot create already existing training job"),
     MldockError, "is in use", "another name"),
    (sagemaker_error("ExpiredTokenException", "The security token included in the request is"
                     " expired"), MldockError, "rejected the credentials", "aws sso login"),
    (sagemaker_error("500", "<!doctype html><title>500 Internal Server Error</title>", 500,
                     "UpdateEndpoint"), BackendUnavailableError,
     "HTTP 500: the service failed or does not implement UpdateEndpoint", "retry later"),
])
def test_error_mapping_of_codes(error, kind, text, hint):
    mapped = describe(error, action="create training job x")
    assert type(mapped) is kind and text in mapped.message and hint in mapped.hint
    assert "\n" not in str(mapped)
