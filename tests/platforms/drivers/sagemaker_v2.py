"""SageMaker Python SDK v2 local mode, driven the way its users drive it (runs in the SDK's venv).

``python sagemaker_v2.py SPEC.json`` where the spec names ``image``, ``data_dir``, ``work_dir``,
``instance_count``, ``hyperparameters``, ``payload`` and ``serving_port``. The driver trains with
``Estimator(instance_type="local")``, deploys the trained model with ``instance_type="local"``,
predicts once with the JSON serializer/deserializer, deletes the endpoint and prints one JSON
line: the job's status, where the model went, the training and serving logs (the containers'
output, as the SDK streams it) and the predictions.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tarfile
from pathlib import Path

from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
from sagemaker.serializers import JSONSerializer
from sagemaker_common import Tee, quiet_health_polling

MANIFEST = "mldock-model.json"
ROLE = "arn:aws:iam::111111111111:role/mldock-local"  # never assumed: local mode only logs it


def has_manifest(model_data: str) -> bool:
    with tarfile.open(model_data.removeprefix("file://")) as tar:
        return any(name.removeprefix("./") == MANIFEST for name in tar.getnames())


def deploy_and_predict(estimator: Estimator, payload: object) -> object:
    predictor = estimator.deploy(initial_instance_count=1, instance_type="local",
                                 serializer=JSONSerializer(), deserializer=JSONDeserializer(),
                                 wait=False)  # wait=True would sleep 30 s after the health check
    try:
        return predictor.predict(payload)
    finally:
        predictor.delete_endpoint()


def session(work: Path, port: int) -> LocalSession:
    local = LocalSession()
    local.config = {"local": {"local_code": True, "serving_port": port,
                              "container_root": str(work / "containers")}}
    return local


def main(spec_file: str) -> None:
    quiet_health_polling()
    spec = json.loads(Path(spec_file).read_text())
    work = Path(spec["work_dir"])
    (work / "containers").mkdir(parents=True, exist_ok=True)
    local = session(work, int(spec["serving_port"]))
    estimator = Estimator(
        image_uri=spec["image"], role=ROLE, instance_type="local",
        instance_count=int(spec["instance_count"]), hyperparameters=spec["hyperparameters"],
        output_path=f"file://{work / 'output'}", sagemaker_session=local,
        base_job_name="mldock-sdk-v2")
    train_log, serve_log = Tee(), Tee()
    with contextlib.redirect_stdout(train_log):
        estimator.fit({"train": f"file://{spec['data_dir']}"}, wait=True, logs=True)
    job = estimator.latest_training_job.describe()
    model_data = estimator.model_data
    print(f"trained {job['TrainingJobStatus']}: {model_data}", file=sys.stderr)
    # The SDK writes the serving container's output to sys.stdout from a thread.
    with contextlib.redirect_stdout(serve_log):
        answer = deploy_and_predict(estimator, spec["payload"]) if has_manifest(model_data) \
            else None  # nothing to serve: the test reports the empty model, not a ping timeout
    print(json.dumps({
        "status": job["TrainingJobStatus"],
        "model_data": model_data,
        "log": "".join(train_log.parts),
        "serve_log": "".join(serve_log.parts),
        "answer": answer,
    }))


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    main(sys.argv[1])
