"""The request checker the other tests rely on catches what moto lets through."""

from __future__ import annotations

import uuid


def test_moto_accepts_what_sagemaker_refuses_and_the_checker_does_not(shapes, moto):
    import boto3

    checker = type(shapes)()  # a fresh one: this test wants problems recorded
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("provide-client-params", checker)
    sagemaker = session.client("sagemaker", endpoint_url=moto.url)
    name = f"bad_name_{uuid.uuid4().hex[:6]}"  # underscores: not a SageMaker name
    role = "arn:aws:iam::1:role/too-short-account"  # long enough for botocore's own check
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=role,
                           PrimaryContainer={"Image": "x", "Environment": {"1BAD": "v"}},
                           Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert sagemaker.describe_model(ModelName=name)["ModelName"] == name  # moto took it
    problems = "\n".join(checker.problems)
    assert f"sagemaker.CreateModel.ModelName: {name!r} does not match" in problems
    assert f"sagemaker.CreateModel.ExecutionRoleArn: {role!r} does not match" in problems
    assert "Environment<key '1BAD'>" in problems
    assert "Tags[0].Key: 129 characters, allowed 1-128" in problems
    assert checker.last("CreateModel")["ModelName"] == name


def test_every_call_of_a_training_run_is_seen(deployer, shapes, bucket):
    from mldock.interfaces import TrainingJob

    deployer.train(TrainingJob(run_id=uuid.uuid4().hex[:14],
                               image="123456789012.dkr.ecr.us-east-1.amazonaws.com/p:1"))
    seen = {(service, name) for service, name, _ in shapes.calls}
    assert {("sagemaker", "CreateTrainingJob"), ("sagemaker", "DescribeTrainingJob"),
            ("logs", "DescribeLogStreams")} <= seen
