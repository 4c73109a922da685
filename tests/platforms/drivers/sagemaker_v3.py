"""SageMaker Python SDK v3 local mode, driven the way its users drive it (runs in the SDK's venv).

``python sagemaker_v3.py SPEC.json`` where the spec names ``image``, ``data_dir``, ``work_dir``,
``hyperparameters``, ``command`` (None: start the image with no argument, as ModelTrainer does
without a ``SourceCode``; else ``SourceCode(command=…)``), ``host`` (also serve the trained
model), ``payload`` and ``serving_port``.

Training is ``ModelTrainer(training_mode=Mode.LOCAL_CONTAINER, training_image=…)``; hosting is
``sagemaker.core.local.LocalSession``'s client: create model, endpoint config and endpoint, then
``invoke_endpoint`` and delete all three. Prints one JSON line: where the model went, the
training log (the containers' output as the SDK streams it) and the predictions.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from pathlib import Path

from sagemaker.core.local import LocalSession
from sagemaker.core.training.configs import Compute, InputData, SourceCode
from sagemaker.train.model_trainer import Mode, ModelTrainer
from sagemaker_common import Tee, quiet_health_polling

ROLE = "arn:aws:iam::111111111111:role/mldock-local"  # never assumed: local mode only records it


def train(spec: dict, root: Path) -> str:
    """Train in a local container; return the model.tar.gz URI."""
    command = spec.get("command")
    trainer = ModelTrainer(
        training_mode=Mode.LOCAL_CONTAINER, training_image=spec["image"], role=ROLE,
        base_job_name="mldock-sdk-v3", hyperparameters=spec["hyperparameters"],
        compute=Compute(instance_type="local_cpu", instance_count=1),
        source_code=SourceCode(command=command) if command else None,
        # compose names its project after this folder: unique, so runs never share one
        local_container_root=str(root))
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=spec["data_dir"])],
                  wait=True, logs=True)
    return f"file://{root / 'compressed_artifacts' / 'model.tar.gz'}"


def host(spec: dict, model_data: str, work: Path) -> object:
    """Serve ``model_data`` through LocalSession, predict once, delete what was created."""
    local = LocalSession()
    local.config = {"local": {"local_code": True, "serving_port": int(spec["serving_port"]),
                              "container_root": str(work / "containers")}}
    client, runtime = local.sagemaker_client, local.sagemaker_runtime_client
    name = f"mldock-sdk-v3-{uuid.uuid4().hex[:8]}"
    client.create_model(ModelName=name, PrimaryContainer={
        "Image": spec["image"], "ModelDataUrl": model_data, "Environment": {}})
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "local"}])
    try:
        client.create_endpoint(EndpointName=name, EndpointConfigName=name)
        try:
            response = runtime.invoke_endpoint(
                Body=json.dumps(spec["payload"]), EndpointName=name,
                ContentType="application/json", Accept="application/json")
            return json.loads(response["Body"].read())
        finally:
            client.delete_endpoint(EndpointName=name)
    finally:
        client.delete_endpoint_config(EndpointConfigName=name)
        client.delete_model(ModelName=name)


def main(spec_file: str) -> None:
    quiet_health_polling()
    spec = json.loads(Path(spec_file).read_text())
    work = Path(spec["work_dir"])
    (work / "containers").mkdir(parents=True, exist_ok=True)
    root = work / "containers" / f"mldock-v3-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    log = Tee()
    # The SDK writes the containers' output to sys.stdout, from a thread while serving.
    with contextlib.redirect_stdout(log):
        model_data = train(spec, root)
        answer = host(spec, model_data, work) if spec.get("host") else None
    print(json.dumps({"model_data": model_data, "log": "".join(log.parts), "answer": answer}))


if __name__ == "__main__":
    main(sys.argv[1])
