"""Vertex AI's own local mode serves the image ``mldock build`` made, with the model mldock trained.

``LocalModel(...).deploy_to_local_endpoint(artifact_uri=<exported model folder>)``
(google-cloud-aiplatform, ``[prediction]`` extra) starts the container as the SDK does: it sets
``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE`` and ``AIP_STORAGE_URI`` (the folder,
bind-mounted at ``/tmp_cpr_local_model``) but never ``AIP_MODE``, so the runtime must recognise
Vertex from any ``AIP_*`` serving variable and read a local ``AIP_STORAGE_URI``. The routes are the
ones the mldock Vertex deployer registers (``/predict``, ``/health``, port 8080).

A second case gives the SDK ``artifact_uri="gs://…"``, as a Vertex model uploaded with an
``artifactUri`` is served: the SDK mounts nothing and sets ``AIP_STORAGE_URI=gs://…``, and the image
must download the model itself (``mldock.runtime.gcs``) from the GCS emulator, named to it through
``STORAGE_EMULATOR_HOST``. The SDK starts its container on Docker's default bridge network and
offers no way to pick another, so the container cannot reach the emulator on the host's
127.0.0.1: a relay on the bridge's gateway address (:mod:`relay`) carries its requests there.

The SDK runs in its own venv through ``drivers/vertex_local.py``; this test never imports it.
"""

from __future__ import annotations

import json
import uuid

import pytest
from relay import bridge_gateway, relay

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# What the runtime is started with: the SDK's real variables, checked so a change in the SDK (or a
# route the deployer stops registering) shows up here rather than as a puzzling health timeout.
EXPECTED_ENV = {"AIP_HTTP_PORT": "8080", "AIP_HEALTH_ROUTE": "/health",
                "AIP_PREDICT_ROUTE": "/predict", "AIP_STORAGE_URI": "/tmp_cpr_local_model"}


def _containers_of(engine, image: str) -> set[str]:
    """Ids of every container (running or not) started from ``image``.

    Sparse and filtered by the engine: a full listing inspects every container on a shared engine
    one by one and fails when someone else's disappears in between.
    """
    image_id = engine.images.get(image).id
    found = engine.containers.list(all=True, sparse=True, filters={"ancestor": image_id})
    return {c.id for c in found}


def test_local_model_endpoint_predicts_like_mldock(engine, platform_project, sdk_python,
                                                    run_driver):
    python = sdk_python("vertex")
    before = _containers_of(engine, platform_project.image)
    leftovers: set[str] = set()
    try:
        result = run_driver(python, "vertex_local", platform_project.image,
                            str(platform_project.model_dir), json.dumps(platform_project.payload),
                            env={"GOOGLE_CLOUD_PROJECT": "mldock-local", "NO_GCE_CHECK": "True"},
                            timeout=600)
    finally:
        # Whatever the driver managed, nothing the SDK started outlives the test.
        leftovers = _containers_of(engine, platform_project.image) - before
        for leftover in leftovers:
            engine.containers.get(leftover).remove(force=True)

    assert result["container_env"] == EXPECTED_ENV, result
    assert "AIP_MODE" not in result["container_env"]
    assert result["health_status"] == 200, result
    assert result["predict_status"] == 200, result["predict_body"]
    assert result["predictions"] == platform_project.expected
    # The SDK stops its container on exit but leaves it behind; the driver removed it.
    assert result["status_after_stop"] == "exited", result
    assert result["removed"] is True
    assert leftovers == set(), "the endpoint's container was still on the engine after the driver"


def test_local_model_serves_a_model_under_a_gs_uri(engine, platform_project, sdk_python,
                                                   run_driver, gcs_emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gcs_emulator})
    bucket = client.create_bucket(f"vertex-local-{uuid.uuid4().hex[:10]}")
    root = f"models/{platform_project.run_id}"
    files = [p for p in platform_project.model_dir.rglob("*") if p.is_file()]
    for path in files:  # plain objects under one prefix: what a model's artifactUri names
        rel = path.relative_to(platform_project.model_dir).as_posix()
        bucket.blob(f"{root}/{rel}").upload_from_filename(str(path))
    artifact_uri = f"gs://{bucket.name}/{root}"

    python = sdk_python("vertex")
    before = _containers_of(engine, platform_project.image)
    leftovers: set[str] = set()
    emulator_port = int(gcs_emulator.rsplit(":", 1)[1])
    try:
        with relay(bridge_gateway(engine), ("127.0.0.1", emulator_port)) as bridge:
            result = run_driver(python, "vertex_local", platform_project.image, artifact_uri,
                                json.dumps(platform_project.payload),
                                json.dumps({"STORAGE_EMULATOR_HOST": bridge.url}),
                                env={"GOOGLE_CLOUD_PROJECT": "mldock-local",
                                     "NO_GCE_CHECK": "True"}, timeout=600)
    finally:
        leftovers = _containers_of(engine, platform_project.image) - before
        for leftover in leftovers:
            engine.containers.get(leftover).remove(force=True)

    assert result["container_env"] == {**EXPECTED_ENV, "AIP_STORAGE_URI": artifact_uri}, result
    assert result["health_status"] == 200, result
    assert result["predict_status"] == 200, result["predict_body"]
    assert result["predictions"] == platform_project.expected
    assert bridge.connections > 0  # the model came from the bucket, through the relay
    assert result["removed"] is True and leftovers == set()
