"""Jobs: ``PUT/GET .../jobs/{name}``, the list, ``POST .../jobs/{name}/cancel``.

A PUT is checked against ``JobBase`` (the generated model), then as the service would: command
jobs only (the fake runs nothing else), a valid name, a compute that exists (or serverless with
an instance type), a node count within the cluster's maximum (``QuotaExceeded`` otherwise), an
environment version that exists and has an image. Then :mod:`.jobrun` moves the job through
NotStarted → Queued → Running → Completed / Failed / Canceled on a thread of its own, running
the containers for real.
"""

from __future__ import annotations

import re
from typing import Any

from . import jobrun, shapes
from .routing import PROVIDER, WORKSPACE, ArmError, Request, Response, Router, bad_request
from .state import system_data
from .workspaces import workspace_id

JOB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")
TERMINAL = {"Completed", "Failed", "Canceled"}
ENVIRONMENT_REF = re.compile(r"environments/([^/]+)/versions/([^/]+)$", re.IGNORECASE)
SHORT_ENVIRONMENT_REF = re.compile(r"^azureml:([^:@/]+):([^:@/]+)$")


def register(router: Router, fake: Any) -> None:
    kind = f"{PROVIDER}/workspaces/jobs"

    def job_id(request: Request) -> str:
        return f"{workspace_id(request, fake)}/jobs/{request.params['name']}"

    def put(request: Request) -> Response:
        resource_id = job_id(request)
        name = request.params["name"]
        if not JOB_NAME.match(name):
            raise bad_request(f"Job name {name!r}: letters, digits, '-' and '_', starting with a"
                              " letter or digit, at most 255.", target="name")
        body = request.json()
        shapes.check("JobBase", body)
        previous = fake.store.get(resource_id)
        if previous is not None:
            return Response(200, _update(fake, previous, body["properties"]))
        properties = body["properties"]
        if properties["jobType"].lower() != "command":
            raise bad_request(f"The fake runs command jobs only, not {properties['jobType']}.",
                              target="properties.jobType")
        workspace = workspace_id(request, fake)
        image = _image(fake, workspace, properties["environmentId"])
        _check_compute(fake, workspace, properties)
        document = jobrun.new_job(fake, workspace, name, properties)
        fake.store.put(document)
        jobrun.start(fake, document["id"], image)
        return Response(201, fake.store.get(document["id"]))

    def get(request: Request) -> Response:
        return Response(200, fake.store.require(job_id(request), kind))

    def listing(request: Request) -> Response:
        return Response(200, {"value": fake.store.children(workspace_id(request, fake), "jobs")})

    def cancel(request: Request) -> Response:
        resource_id = job_id(request)
        fake.store.require(resource_id, kind)
        jobrun.cancel(fake, resource_id)

        def status() -> tuple[str, dict[str, Any] | None]:
            job = fake.store.get(resource_id) or {}
            done = job.get("properties", {}).get("status") in TERMINAL
            return ("Succeeded" if done else "InProgress"), None

        return Response(202, None, fake.operations.start(request, status))

    router.add("GET", WORKSPACE + "/jobs", listing)
    router.add("GET", WORKSPACE + "/jobs/{name}", get)
    router.add("PUT", WORKSPACE + "/jobs/{name}", put)
    router.add("POST", WORKSPACE + "/jobs/{name}/cancel", cancel)


def _update(fake: Any, previous: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """A PUT on an existing job may change its description, tags and display name only."""
    mutable = {k: properties[k] for k in ("description", "tags", "displayName", "isArchived")
               if k in properties}
    updated = fake.store.update(previous["id"], **mutable) or previous
    updated["systemData"] = system_data(previous.get("systemData"))
    return dict(fake.store.put(updated))


def _image(fake: Any, workspace: str, environment_id: str) -> str:
    """The image of the job's environment version (the service resolves it the same way)."""
    match = ENVIRONMENT_REF.search(environment_id) or SHORT_ENVIRONMENT_REF.match(environment_id)
    if match is None:
        raise bad_request(f"environmentId {environment_id!r} is not an environment version's"
                          " ARM id.", target="properties.environmentId")
    version = fake.store.get(f"{workspace}/environments/{match[1]}/versions/{match[2]}")
    if version is None:
        raise ArmError(404, "ResourceNotFound",
                       f"Environment {match[1]}:{match[2]} was not found in the workspace.")
    image = version["properties"].get("image")
    if not image:
        raise bad_request("The fake runs environments with an image only (no build context).",
                          target="properties.environmentId")
    return str(image)


def _check_compute(fake: Any, workspace: str, properties: dict[str, Any]) -> None:
    """An existing compute with room for the nodes, or serverless with an instance type."""
    count = int((properties.get("resources") or {}).get("instanceCount") or 1)
    compute_id = properties.get("computeId")
    if not compute_id:
        if not (properties.get("resources") or {}).get("instanceType"):
            raise bad_request("Serverless jobs need resources.instanceType.",
                              target="properties.resources.instanceType")
        return
    name = compute_id.rstrip("/").rsplit("/", 1)[-1]
    compute = fake.store.get(f"{workspace}/computes/{name}")
    if compute is None:
        raise ArmError(404, "ResourceNotFound", f"Compute '{name}' was not found in workspace"
                       f" '{workspace.rsplit('/', 1)[-1]}'.")
    maximum = compute["properties"]["properties"]["scaleSettings"]["maxNodeCount"]
    if count > maximum:
        raise ArmError(400, "QuotaExceeded", f"The job asks for {count} nodes; compute '{name}'"
                       f" has at most {maximum}.")
