"""Batch transform against SageMaker on moto: the job read back, and its model removed after.

moto records the transform job and reports it Completed at once (no container runs, nothing is
written under the output prefix).
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from mldock.errors import UsageError
from mldock.interfaces import BatchRequest

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj@sha256:" + "ef" * 32


def batch_request(bucket: str, content_type: str = "text/csv", **options) -> BatchRequest:
    run = uuid.uuid4().hex[:14]
    return BatchRequest(run_id=run, image=IMAGE,
                        model_uri=f"s3://{bucket}/proj/sagemaker/proj-{run}/output/model.tar.gz",
                        input_uri=f"s3://{bucket}/batch/in/", output_uri=f"s3://{bucket}/batch/out/",
                        content_type=content_type, options=options)


def test_csv_batch_job_read_back_and_model_removed(make_deployer, aws, bucket, shapes):
    deployer = make_deployer(serve_instance_type="ml.c5.xlarge", serve_instance_count=2,
                             tags={"team": "ml"})
    req, lines = batch_request(bucket), []
    result = deployer.batch(req, progress=lines.append)
    assert (result.status, result.output_uri, result.failure_reason) == (
        "finished", req.output_uri, None)
    sagemaker = aws("sagemaker")
    job = sagemaker.describe_transform_job(TransformJobName=result.job_id)
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": req.input_uri}},
        "ContentType": "text/csv", "SplitType": "Line"}
    assert job["TransformOutput"] == {"S3OutputPath": req.output_uri,
                                      "Accept": "application/json", "AssembleWith": "Line"}
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert job["BatchStrategy"] == "MultiRecord"
    assert job["Environment"] == {"MLDOCK_RUN_ID": req.run_id}
    assert job["ModelName"] == result.job_id
    model = shapes.last("CreateModel")
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == req.model_uri
    tags = {t["Key"]: t["Value"] for t in shapes.last("CreateTransformJob")["Tags"]}
    assert tags == {"team": "ml", "mldock.run_id": req.run_id, "mldock.project": "proj",
                    "mldock.role": "batch"}
    with pytest.raises(ClientError, match="Could not find model"):
        sagemaker.describe_model(ModelName=result.job_id)  # deleted once the job ended
    assert f"{result.job_id}: Completed" in lines


def test_json_files_go_whole_and_options_override(deployer, aws, bucket):
    whole = deployer.batch(batch_request(bucket, "application/json"))
    job = aws("sagemaker").describe_transform_job(TransformJobName=whole.job_id)
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformOutput"]["AssembleWith"] == "None"
    assert job["BatchStrategy"] == "SingleRecord"
    tuned = deployer.batch(batch_request(bucket, "application/jsonlines", max_payload_mb=2,
                                         max_concurrent_transforms=4, accept="text/csv"))
    job = aws("sagemaker").describe_transform_job(TransformJobName=tuned.job_id)
    assert job["TransformInput"]["SplitType"] == "Line" and job["BatchStrategy"] == "SingleRecord"
    assert job["MaxPayloadInMB"] == 2 and job["TransformOutput"]["Accept"] == "text/csv"


def test_batch_needs_s3_locations(deployer, bucket):
    request = batch_request(bucket)
    local = BatchRequest(**{**request.__dict__, "input_uri": "data/batch.csv"})
    with pytest.raises(UsageError, match=r"--input data/batch.csv"):
        deployer.batch(local)
