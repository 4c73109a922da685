"""Online deployments: ``.../onlineEndpoints/{endpoint}/deployments/{name}``.

A PUT is checked against ``OnlineDeployment`` and then as the service would: a name within the
rules, an existing endpoint, a managed deployment with ``sku.capacity`` ≥ 1, an environment
version with an image and an ``inferenceConfig`` (a custom container needs its routes), and a
model version that exists. The container starts at once (:mod:`.serving`) and the deployment
stays ``Creating`` until its readiness route answers; the LRO reports the same state.
"""

from __future__ import annotations

import re
from typing import Any

from . import serving, shapes
from .online import DEPLOYMENT_NAME, ENDPOINTS, KIND
from .routing import ArmError, Request, Response, Router, bad_request
from .state import system_data
from .workspaces import workspace_id

ASSET_REF = re.compile(r"(environments|models)/([^/]+)/versions/([^/]+)$", re.IGNORECASE)
DEPLOYMENTS = ENDPOINTS + "/{endpoint}/deployments"
PROBE = {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S", "period": "PT10S",
         "initialDelay": "PT10S"}
# what the service fills in when a deployment omits it (clients read these without a None check)
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "scaleSettings": {"scaleType": "Default"}, "appInsightsEnabled": False,
    "egressPublicNetworkAccess": "Enabled", "livenessProbe": PROBE, "readinessProbe": PROBE,
    "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1,
                        "maxQueueWait": "PT0.5S"},
}


def register(router: Router, fake: Any) -> None:
    DeploymentRoutes(fake).register(router)


class DeploymentRoutes:
    """The deployment routes of every endpoint of every workspace."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def register(self, router: Router) -> None:
        router.add("GET", DEPLOYMENTS, self.listing)
        router.add("GET", DEPLOYMENTS + "/{name}", self.get)
        router.add("PUT", DEPLOYMENTS + "/{name}", self.put)
        router.add("DELETE", DEPLOYMENTS + "/{name}", self.delete)
        router.add("POST", DEPLOYMENTS + "/{name}/getLogs", self.get_logs)

    def ids(self, request: Request) -> tuple[str, str]:
        """``(endpoint id, deployment id)``; ARM's 404 when the endpoint does not exist."""
        endpoint = (f"{workspace_id(request, self.fake)}/onlineEndpoints/"
                    f"{request.params['endpoint']}")
        self.fake.store.require(endpoint, KIND)
        return endpoint, f"{endpoint}/deployments/{request.params.get('name', '')}"

    def put(self, request: Request) -> Response:
        fake = self.fake
        _, resource_id = self.ids(request)
        name = request.params["name"]
        if not DEPLOYMENT_NAME.match(name):
            raise bad_request(f"Deployment name {name!r}: 1-32 letters, digits and '-',"
                              " starting with a letter.", target="name")
        body = request.json()
        shapes.check("OnlineDeployment", body)
        environment, model = _assets(fake, body["properties"])
        if int((body.get("sku") or {}).get("capacity") or 0) < 1:
            raise bad_request("sku.capacity (instance count) must be at least 1.",
                              target="sku.capacity")
        stop(fake, resource_id)
        document = {"id": resource_id, "name": name, "type": f"{KIND}/deployments",
                    "location": fake.location, "tags": body.get("tags") or {},
                    "sku": body["sku"], "kind": body.get("kind") or "Managed",
                    "systemData": system_data(),
                    "properties": {**DEPLOYMENT_DEFAULTS, **body["properties"],
                                   "provisioningState": "Creating"}}
        fake.store.put(document)
        fake.deployment_errors.pop(resource_id.lower(), None)
        fake.servings[resource_id.lower()] = serving.start(fake, document, environment, model)
        headers = fake.operations.start(request, lambda: _state(fake, resource_id))
        return Response(201, document, headers)

    def get(self, request: Request) -> Response:
        _, resource_id = self.ids(request)
        return Response(200, self.fake.store.require(resource_id, f"{KIND}/deployments"))

    def listing(self, request: Request) -> Response:
        endpoint, _ = self.ids(request)
        return Response(200, {"value": self.fake.store.children(endpoint, "deployments")})

    def delete(self, request: Request) -> Response:
        endpoint, resource_id = self.ids(request)
        self.fake.store.require(resource_id, f"{KIND}/deployments")
        traffic = self.fake.store.get(endpoint)["properties"].get("traffic") or {}
        share = {k.lower(): int(v) for k, v in traffic.items()}.get(request.params["name"].lower())
        if share:
            raise bad_request(f"Deployment {request.params['name']} takes {share}% of the"
                              " traffic: move the traffic before deleting it.")
        stop(self.fake, resource_id)
        self.fake.store.delete(resource_id)
        return Response(202, None, self.fake.operations.start(request,
                                                              lambda: ("Succeeded", None)))

    def get_logs(self, request: Request) -> Response:
        _, resource_id = self.ids(request)
        self.fake.store.require(resource_id, f"{KIND}/deployments")
        body = request.json() if request.body else {}
        running = self.fake.servings.get(resource_id.lower())
        tail = int(body.get("tail") or 0) or None
        return Response(200, {"content": serving.logs(running, tail) if running else ""})


def stop(fake: Any, deployment_id: str) -> None:
    """Stop the deployment's container, if it runs."""
    running = fake.servings.pop(deployment_id.lower(), None)
    if running is not None:
        serving.stop(fake, running)


def _state(fake: Any, deployment_id: str) -> tuple[str, dict[str, Any] | None]:
    document = fake.store.get(deployment_id) or {}
    state = document.get("properties", {}).get("provisioningState", "Succeeded")
    if state == "Failed":
        return "Failed", fake.deployment_errors.get(deployment_id.lower())
    return ("InProgress" if state == "Creating" else state), None


def _assets(fake: Any, properties: dict[str, Any]
            ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The deployment's environment version and model version, as stored."""
    environment = _asset(fake, properties.get("environmentId"), "environmentId")
    if environment is None or not environment["properties"].get("image"):
        raise bad_request("A custom-container deployment needs an environment with an image.",
                          target="properties.environmentId")
    if not environment["properties"].get("inferenceConfig"):
        raise bad_request("The environment has no inferenceConfig (liveness, readiness and"
                          " scoring routes): a custom container needs them.",
                          target="properties.environmentId")
    model = _asset(fake, properties.get("model"), "model") if properties.get("model") else None
    return environment, model


def _asset(fake: Any, reference: str | None, target: str) -> dict[str, Any] | None:
    if not reference:
        return None
    match = ASSET_REF.search(reference)
    if match is None:
        raise bad_request(f"{target} {reference!r} is not an asset version's ARM id.",
                          target=f"properties.{target}")
    found = fake.store.get(reference)
    if found is None:
        raise ArmError(404, "ResourceNotFound", f"{match[1][:-1].title()} {match[2]}:{match[3]}"
                       " was not found in the workspace.")
    return dict(found)
