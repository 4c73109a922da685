"""The whole path with the real CLI in a generated project on ``--env gcp``: ``mldock build``, then
``push``, ``train`` (one and two replicas), ``deploy``, ``predict`` (JSON and CSV), ``batch`` (JSON
Lines and CSV), ``undeploy`` and ``doctor``, against the Vertex AI fake, the GCS emulator and a
local htpasswd registry standing in for Artifact Registry.

Nothing is faked inside mldock: the image is built and pushed for real (the registry takes the
access token the service-account key is exchanged for), the fake runs the training containers
(the runtime writes the model to ``AIP_MODEL_DIR`` on the emulator), the serving containers of
the endpoint (the runtime downloads the model from ``AIP_STORAGE_URI``) and the batch job's
container over the input files. Predictions are checked against the trained model itself.

The project is the ``minimal`` template (standard library only: a fitted line), so the build
needs no package index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
PROJECT = f"gcpline-{uuid.uuid4().hex[:8]}"  # this session's own images, jobs and endpoint
KEY_VARIABLE = "MLDOCK_GCP_E2E_KEY"  # kept: the run environment drops other MLDOCK_* names
REGION = "us-central1"

GCP_ENV = """
# --- added by the mldock-gcp tests: Vertex AI on the local fake, GCS on the emulator ---
[env.{env}.deploy]
deployer = "vertex"

[env.{env}.deploy.vertex]
project = "{project}"
region = "{region}"
replica_count = {replicas}
api_endpoint = "{api}"
registry_host = "{registry}"
credentials_file = "env:{key_variable}"
deploy_timeout_s = 600

[env.{env}.storage]
uri = "gs://{bucket}/{name}"

[env.{env}.storage.gcs]
endpoint_url = "{gcs}"
"""


def mldock(*args: str, cwd: Path, env: dict[str, str],
           check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, env=env, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {done.returncode}\n"
                             f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    return done


def storage(gcs_emulator: str) -> Any:
    """A google-cloud-storage client on the emulator, to seed inputs and read outputs back."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    return gcs.Client(project="test", credentials=AnonymousCredentials(),
                      client_options={"api_endpoint": gcs_emulator})


@pytest.fixture(scope="module")
def line(docker_engine, vertex_fake_server, gcp_registry, gcs_emulator, make_gcs_bucket,
         _closed_metadata_host, tmp_path_factory):
    """The project rendered and built once, its config aimed at the fake; the environment of
    the CLI (a sandbox with the service-account key only). Its image tags, local and pushed,
    are removed afterwards (layers stay as build cache)."""
    import os

    from vertex_fake.tokens import write_service_account

    root = tmp_path_factory.mktemp("gcp-e2e")
    key = root / "service-account.json"
    write_service_account(vertex_fake_server, key, vertex_fake_server.project)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    for hidden in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT",
                   "CLOUDSDK_CORE_PROJECT"):
        env.pop(hidden, None)
    env.update({KEY_VARIABLE: str(key), "CLOUDSDK_CONFIG": str(root / "gcloud"),
                "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": _closed_metadata_host,
                "GCE_METADATA_IP": _closed_metadata_host, "STORAGE_EMULATOR_HOST": gcs_emulator})
    bucket = make_gcs_bucket("mldock-gcp-e2e")
    mldock("init", PROJECT, "--template", "minimal", "--no-input", cwd=root, env=env)
    folder = root / PROJECT
    values = {"project": vertex_fake_server.project, "region": REGION, "name": PROJECT,
              "api": vertex_fake_server.url, "registry": gcp_registry.host,
              "key_variable": KEY_VARIABLE, "bucket": bucket, "gcs": gcs_emulator}
    with open(folder / "mldock.toml", "a", encoding="utf-8") as toml:
        toml.write(GCP_ENV.format(env="gcp", replicas=1, **values))
        toml.write(GCP_ENV.format(env="gcp2", replicas=2, **values))
    try:
        mldock("build", cwd=folder, env=env)
        yield Line(folder, env, bucket, vertex_fake_server, gcp_registry, gcs_emulator)
    finally:
        for repository in (f"{gcp_registry.host}/{vertex_fake_server.project}/mldock/{PROJECT}",
                           PROJECT):
            remove_tags(docker_engine, repository)


class Line:
    """What the tests share: the project folder, the CLI's environment and the servers."""

    def __init__(self, folder: Path, env: dict[str, str], bucket: str, fake: Any,
                 registry: Any, gcs: str):
        self.folder, self.env, self.bucket = folder, env, bucket
        self.fake, self.registry, self.gcs = fake, registry, gcs
        self.trained: dict[str, str] = {}  # env -> run id

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return mldock(*args, cwd=self.folder, env=self.env, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


def remove_tags(client: Any, repository: str) -> None:
    """``docker rmi`` of every tag of ``repository`` (nothing is pruned)."""
    import contextlib

    from docker.errors import APIError, ImageNotFound

    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.rsplit(":", 1)[0] == repository:
                with contextlib.suppress(ImageNotFound, APIError):
                    client.images.remove(tag, noprune=True)


def test_push_goes_to_the_registry_with_the_access_token(line):
    """``mldock --env gcp push``: repository and token from the deployer (the key file named by
    ``credentials_file`` exchanged for the fake's token), the image in the registry."""
    data = line.json("--env", "gcp", "push", "--json")
    tag = data["image"].split(":", 1)[1]
    path = f"{line.fake.project}/mldock/{PROJECT}"
    assert data["reference"] == f"{line.registry.host}/{path}:{tag}"
    assert data["digest"] == line.registry.manifest_digest(path, tag)
    again = line.run("--env", "gcp", "push")
    assert again.stdout.strip() == data["digest"]
    assert "nothing to push" in again.stderr


@pytest.mark.parametrize(("env", "replicas"), [("gcp", 1), ("gcp2", 2)])
def test_train_on_vertex(line, vertex_fake, env, replicas):
    """``mldock --env ENV train``: a custom job on the fake, run to its end in real containers
    (one per replica); the model written by the primary to the job's ``AIP_MODEL_DIR``."""
    train(line, env, replicas)


def train(line: Line, env: str, replicas: int) -> str:
    """Train on ``env``, check the run, the job read back and the stored model; the run id."""
    done = line.run("--env", env, "train")
    run_id = done.stdout.strip().splitlines()[-1]
    run = line.json("runs", "show", run_id, "--json")
    assert run["status"] == "finished", done.stderr[-2000:]
    lineage = run["lineage"]
    assert lineage["platform"] == "vertex"
    digest = lineage["image_digest"]
    path = f"{line.fake.project}/mldock/{PROJECT}"
    assert digest.startswith(f"{line.registry.host}/{path}@sha256:")
    job = line.fake.custom_job(lineage["job_id"])
    pools = [p for p in job.job_spec.worker_pool_specs if p.replica_count]
    assert sum(p.replica_count for p in pools) == replicas
    assert {p.container_spec.image_uri for p in pools} == {digest}
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert job.labels["mldock-run"] == run_id
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model["kind"] == "remote"
    assert model["uri"].startswith(f"gs://{line.bucket}/")
    assert model["uri"].rstrip("/").endswith("/model")
    stored = read_model(line, model["uri"])
    assert stored["manifest"]["run_id"] == run_id
    line.trained[env] = run_id
    return run_id


def read_model(line: Line, uri: str) -> dict[str, Any]:
    """The manifest and the fitted line of the model folder at ``uri`` (on the emulator)."""
    bucket, _, prefix = uri[len("gs://"):].rstrip("/").partition("/")
    client = storage(line.gcs)
    found = {blob.name[len(prefix) + 1:]: blob for blob in
             client.list_blobs(bucket, prefix=prefix + "/")}
    return {"manifest": json.loads(found["mldock-model.json"].download_as_bytes()),
            "line": json.loads(found["model.json"].download_as_bytes())}


def expected(line: Line, run_id: str, values: list[float]) -> list[float]:
    """What the run's model predicts for ``values`` (its fitted line, read from storage)."""
    run = line.json("runs", "show", run_id, "--json")
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    fitted = read_model(line, model["uri"])["line"]
    return [fitted["slope"] * x + fitted["intercept"] for x in values]


def test_deploy_predict_batch_undeploy(line, vertex_clients):
    """deploy → predict (JSON through :predict, CSV through :rawPredict) → list → batch over
    JSON Lines and CSV → undeploy, all through the CLI, on the model trained on Vertex."""
    run_id = line.trained.get("gcp") or train(line, "gcp", 1)
    values = [2.5, 4.0, 12.0]  # the template's sample.json / sample.csv
    predicted = expected(line, run_id, values)
    want = pytest.approx(predicted)
    try:
        deployed = line.run("--env", "gcp", "deploy", "--run", run_id)
        url = deployed.stdout.strip()
        assert url.startswith(f"{line.fake.url}/v1/projects/") and url.endswith(":predict")
        endpoint = vertex_clients.endpoint.get_endpoint(name=url[len(line.fake.url) + 4:
                                                                 -len(":predict")])
        assert endpoint.display_name == PROJECT and endpoint.labels["mldock-role"] == "serving"
        (served,) = endpoint.deployed_models
        model = vertex_clients.model.get_model(name=served.model)
        run = line.json("runs", "show", run_id, "--json")
        assert model.container_spec.image_uri == run["lineage"]["image_digest"]
        (artifact,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
        assert model.artifact_uri == artifact["uri"].rstrip("/")  # trained there: used in place

        answer = json.loads(line.run("--env", "gcp", "predict", "--data", "sample.json").stdout)
        assert answer == {"predictions": want}
        csv = json.loads(line.run("--env", "gcp", "predict", "--data", "sample.csv").stdout)
        assert csv == want  # CSV answers as the local endpoint answers it: the bare list
        listed = line.json("--env", "gcp", "deploy", "--list", "--json")
        assert [(d["name"], d["status"], d["run_id"]) for d in listed if d["name"] == PROJECT] \
            == [(PROJECT, "ready", run_id)]
        batch_over(line, run_id, values, predicted)
    finally:
        line.run("--env", "gcp", "undeploy", check=False)
    listed = line.json("--env", "gcp", "deploy", "--list", "--json")
    assert PROJECT not in [d["name"] for d in listed]
    left = [m.display_name for m in vertex_clients.model.list_models(request={
        "parent": vertex_clients.parent, "filter": f'labels.mldock-project="{PROJECT}"'})]
    assert left == [], f"models left behind: {left}"


def batch_over(line: Line, run_id: str, values: list[float], want: list[float]) -> None:
    """``mldock --env gcp batch`` over a JSON Lines folder and a CSV file on the emulator; the
    predictions read back from the output folder Vertex names."""
    client = storage(line.gcs)
    bucket = client.bucket(line.bucket)
    bucket.blob("batch/jsonl/part-1.jsonl").upload_from_string(
        "".join(json.dumps([x]) + "\n" for x in values[:2]))
    bucket.blob("batch/jsonl/part-2.jsonl").upload_from_string(json.dumps([values[2]]) + "\n")
    bucket.blob("batch/csv/rows.csv").upload_from_string(
        "x\n" + "".join(f"{x}\n" for x in values))
    for source, kind in (("batch/jsonl/", "application/jsonlines"),
                         ("batch/csv/rows.csv", "text/csv")):
        out = f"gs://{line.bucket}/batch/out-{kind.split('/')[1]}"
        result = line.json("--env", "gcp", "batch", "--run", run_id, "--input",
                           f"gs://{line.bucket}/{source}", "--output", out,
                           "--content-type", kind, "--json")
        assert result["status"] == "finished", result
        assert result["output_uri"].startswith(out + "/")
        job = line.fake.batch_job(result["job_id"])
        assert job.labels["mldock-run"] == run_id and job.labels["mldock-role"] == "batch"
        predictions = read_predictions(client, result["output_uri"])
        assert sorted(predictions) == pytest.approx(sorted(want)), kind


def read_predictions(client: Any, folder: str) -> list[float]:
    """Every prediction in the ``predictions*.jsonl`` files under ``folder``."""
    bucket, _, prefix = folder[len("gs://"):].partition("/")
    found = []
    for blob in client.list_blobs(bucket, prefix=prefix.rstrip("/") + "/"):
        if blob.name.rsplit("/", 1)[-1].startswith("prediction"):
            for row in blob.download_as_text().splitlines():
                if row.strip():
                    found.append(float(json.loads(row)["prediction"]))
    return found


def test_a_model_trained_here_is_staged_for_vertex(line, vertex_fake, vertex_clients):
    """A run trained on this machine (``--no-container``: its model a tree in the ``gs://``
    store) is fetched by core and copied as a plain folder under the staging bucket's
    ``models/<run id>/``, where the serving container downloads it."""
    run_id = line.run("--env", "gcp", "train", "--no-container").stdout.strip().splitlines()[-1]
    run = line.json("runs", "show", run_id, "--json")
    assert run["lineage"]["platform"] == "local"
    name = f"{PROJECT}-here"
    try:
        url = line.run("--env", "gcp", "deploy", "--run", run_id, "--name", name).stdout.strip()
        endpoint = vertex_clients.endpoint.get_endpoint(name=url[len(line.fake.url) + 4:
                                                                 -len(":predict")])
        (served,) = endpoint.deployed_models
        staged = f"gs://{line.bucket}/{PROJECT}/vertex/models/{run_id}"  # <storage>/vertex
        assert vertex_clients.model.get_model(name=served.model).artifact_uri == staged
        fitted = read_model(line, staged)
        assert fitted["manifest"]["run_id"] == run_id
        answer = json.loads(line.run("--env", "gcp", "predict", "--name", name, "--data",
                                     "sample.json").stdout)
        values = [2.5, 4.0, 12.0]
        assert answer == {"predictions": pytest.approx(
            [fitted["line"]["slope"] * x + fitted["line"]["intercept"] for x in values])}
    finally:
        line.run("--env", "gcp", "undeploy", name, check=False)
    assert name not in [d["name"] for d in line.json("--env", "gcp", "deploy", "--list",
                                                     "--json")]


def test_doctor_reports_the_gcp_checks(line, vertex_fake):
    done = line.run("doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    for env in ("gcp", "gcp2"):
        prefix = f"deployer vertex (env {env}): "
        credentials = checks[prefix + "Google Cloud credentials"]
        assert credentials["ok"] and KEY_VARIABLE in credentials["detail"], credentials
        assert checks[prefix + "Google Cloud project"]["ok"]
        assert line.fake.project in checks[prefix + "Google Cloud project"]["detail"]
        region = checks[prefix + "Vertex AI region"]
        assert region["ok"] and region["detail"].startswith(REGION), region
