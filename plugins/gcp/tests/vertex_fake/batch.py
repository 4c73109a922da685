"""A BatchPredictionJob run the way Vertex AI runs it: the model's container over GCS files.

The serving container starts (as for an endpoint), every ``gs://`` input file is read from the
emulator (JSONL: one instance a line; CSV: a header, then one instance a row, numbers as
numbers), instances go to the predict route in batches of
``manualBatchTuningParameters.batchSize`` (default 64) with the job's ``modelParameters``, and the
answers are written as ``predictions_00001.jsonl`` (``{"instance", "prediction"}`` lines) under
``<outputUriPrefix>/prediction-<model display name>-<create time>/``; a refused batch goes to
``errors_00001.jsonl`` (``{"instance", "error"}``) and makes the job FAILED.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any

from vertex_fake import gcs, serving, wire
from vertex_fake.errors import ApiError

DEFAULT_BATCH = 64


def start(fake: Any, name: str) -> None:
    cancel = threading.Event()
    fake.extra.setdefault("batch_cancels", {})[name] = cancel
    threading.Thread(target=_run, args=(fake, name, cancel), daemon=True).start()


def cancel(fake: Any, name: str) -> None:
    found = fake.extra.get("batch_cancels", {}).get(name)
    if found is not None:
        found.set()


def _set(fake: Any, name: str, state: str, **fields: Any) -> None:
    from google.cloud.aiplatform_v1 import types

    with fake.lock:
        job = fake.batch_job(name)
        job.state = getattr(types.JobState, f"JOB_STATE_{state}")
        job.update_time = wire.now()
        if state == "RUNNING":
            job.start_time = wire.now()
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            job.end_time = wire.now()
        for key, value in fields.items():
            setattr(job, key, value)


def instances_of(fmt: str, content: bytes) -> list[Any]:
    text = content.decode("utf-8")
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = list(csv.reader(io.StringIO(text)))
    return [[_number(value) for value in row] for row in rows[1:] if row]


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _run(fake: Any, name: str, cancelled: threading.Event) -> None:
    with fake.lock:
        job = fake.batch_job(name)
        model = fake.model(job.model)
    server = None
    try:
        server = serving.start(
            fake, model, name=f"vertexfake-batch-{name.rsplit('/', 1)[-1]}-{fake.session_id}",
            deployed_model_id=name.rsplit("/", 1)[-1], endpoint_id="",
            machine_type=job.dedicated_resources.machine_spec.machine_type)
        _set(fake, name, "RUNNING")
        state, fields = _predict_all(fake, job, model, server, cancelled)
    except ApiError as error:
        state, fields = "FAILED", {"error": error.rpc_status()}
    except Exception as exc:  # noqa: BLE001 - a storage failure fails the job, as Vertex's would
        state, fields = "FAILED", {"error": {"code": 13, "message": f"{type(exc).__name__}:"
                                                                   f" {exc}"}}
    finally:
        if server is not None:
            serving.stop(fake, server)
    _set(fake, name, state, **fields)
    fake.extra.get("batch_cancels", {}).pop(name, None)


def _predict_all(fake: Any, job: Any, model: Any, server: serving.Server,
                 cancelled: threading.Event) -> tuple[str, dict[str, Any]]:
    storage = gcs.client(fake)
    fmt = job.input_config.instances_format
    instances = [item for uri in job.input_config.gcs_source.uris
                 for _, content in gcs.read_matching(storage, uri)
                 for item in instances_of(fmt, content)]
    size = job.manual_batch_tuning_parameters.batch_size or DEFAULT_BATCH
    parameters = json.loads(type(job).to_json(job, indent=None)).get("modelParameters")
    good: list[str] = []
    bad: list[str] = []
    for start in range(0, len(instances), size):
        if cancelled.is_set():
            return "CANCELLED", {"error": {"code": 1, "message": "CANCELED"}}
        chunk = instances[start:start + size]
        payload: dict[str, Any] = {"instances": chunk}
        if parameters is not None:
            payload["parameters"] = parameters
        status, _, body = server.post(json.dumps(payload).encode())
        predictions = json.loads(body).get("predictions") if status == 200 else None
        if predictions is None or len(predictions) != len(chunk):
            bad += [json.dumps({"instance": item, "error": {"code": status, "message":
                                body.decode("utf-8", "replace")[:500]}}) for item in chunk]
            continue
        good += [json.dumps({"instance": item, "prediction": prediction})
                 for item, prediction in zip(chunk, predictions, strict=True)]
    folder = _output_folder(job, model)
    gcs.write(storage, f"{folder}/predictions_00001.jsonl", "".join(
        line + "\n" for line in good).encode(), "application/jsonl")
    if bad:
        gcs.write(storage, f"{folder}/errors_00001.jsonl", "".join(
            line + "\n" for line in bad).encode(), "application/jsonl")
    from google.cloud.aiplatform_v1 import types

    fields: dict[str, Any] = {
        "output_info": types.BatchPredictionJob.OutputInfo(gcs_output_directory=folder),
        "completion_stats": types.CompletionStats(successful_count=len(good),
                                                  failed_count=len(bad))}
    if bad:
        fields["error"] = {"code": 3, "message": f"{len(bad)} of {len(instances)} instances"
                           f" failed; see {folder}/errors_00001.jsonl."}
        return "FAILED", fields
    return "SUCCEEDED", fields


def _output_folder(job: Any, model: Any) -> str:
    created = job.create_time.strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{job.create_time.microsecond // 1000:03d}Z"
    prefix = job.output_config.gcs_destination.output_uri_prefix.rstrip("/")
    return f"{prefix}/prediction-{model.display_name}-{created}"
