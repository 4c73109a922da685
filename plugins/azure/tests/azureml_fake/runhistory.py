"""Run history, the data-plane API ``ml_client.jobs.stream`` polls (``/history/v1.0/...``).

The workspace's ``discoveryUrl`` sends the SDK here. ``runs/{run}/details`` gives the status,
the error of a failed run and ``logFiles`` (name → URL, as SAS URLs would be); the URLs point at
``/fake-logs/{run}/{path}``, which serves the files as the containers write them, so streaming
sees lines while the job runs.
"""

from __future__ import annotations

from typing import Any

from .routing import WORKSPACE, ArmError, Request, Response, Router
from .workspaces import workspace_id

HISTORY = "/history/v1.0" + WORKSPACE


def register(router: Router, fake: Any) -> None:
    def job(request: Request) -> dict[str, Any]:
        resource_id = f"{workspace_id(request, fake)}/jobs/{request.params['run']}"
        return dict(fake.store.require(resource_id, "Microsoft.MachineLearningServices/runs"))

    def details(request: Request) -> Response:
        document = job(request)
        run = fake.job_runs.get(document["id"].lower())
        properties = document["properties"]
        name = document["name"]
        body: dict[str, Any] = {
            "runId": name, "status": properties["status"], "target": properties.get("computeId"),
            "startTimeUtc": properties.get("startTimeUtc"),
            "endTimeUtc": properties.get("endTimeUtc"), "warnings": [],
            "logFiles": {log: f"{fake.url}/fake-logs/{name}/{log}"
                         for log in (run.log_files if run else {})},
            "properties": {}, "inputDatasets": [], "outputDatasets": [],
        }
        if run is not None and run.error is not None:
            body["error"] = {"error": {**run.error, "details": []}}
        return Response(200, body)

    def run(request: Request) -> Response:
        found = details(request)
        found.body.pop("logFiles")
        return found

    def log(request: Request) -> Response:
        name, path = request.params["run"], request.params["path"]
        for key, value in fake.job_runs.items():
            if key.endswith(f"/jobs/{name.lower()}") and path in value.log_files:
                return Response(200, value.log_files[path].read_bytes(),
                                {"Content-Type": "text/plain; charset=utf-8"})
        raise ArmError(404, "BlobNotFound", f"No log {path} for run {name}.")

    router.add("GET", HISTORY + "/runs/{run}/details", details)
    router.add("GET", HISTORY + "/runs/{run}", run)
    router.add("GET", HISTORY + "/experiments/{experiment}/runs/{run}/details", details)
    router.add("GET", "/fake-logs/{run}/user_logs/{file}", lambda request: log(_with_path(
        request)))


def _with_path(request: Request) -> Request:
    request.params["path"] = f"user_logs/{request.params['file']}"
    return request
