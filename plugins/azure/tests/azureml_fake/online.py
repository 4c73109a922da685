"""Managed online endpoints and deployments, their long-running operations, and scoring.

Endpoints: PUT (LRO), GET, list, DELETE (LRO), ``listKeys``, ``token``; the ``traffic`` map must
name existing deployments and add up to 100 (or 0). Deployments: PUT (LRO; the container starts,
:mod:`.serving`), GET, list, DELETE (LRO; refused while the deployment takes traffic, as the
service refuses), ``getLogs``. The data plane: ``POST {scoringUri}`` with the endpoint key or an
Azure ML token, routed by the ``azureml-model-deployment`` header or by traffic weights, and
proxied to the deployment's scoring route.
"""

from __future__ import annotations

import random
import re
import secrets
from typing import Any

from . import serving, shapes
from .routing import PROVIDER, WORKSPACE, ArmError, Request, Response, Router, bad_request
from .state import system_data
from .workspaces import workspace_id

ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
DEPLOYMENT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,31}$")
ENDPOINTS = WORKSPACE + "/onlineEndpoints"
KIND = f"{PROVIDER}/workspaces/onlineEndpoints"


def register(router: Router, fake: Any) -> None:
    from . import online_deployments

    def endpoint_id(request: Request) -> str:
        return f"{workspace_id(request, fake)}/onlineEndpoints/{request.params['endpoint']}"

    def put(request: Request) -> Response:
        resource_id = endpoint_id(request)
        name = request.params["endpoint"]
        if not ENDPOINT_NAME.match(name):
            raise bad_request(f"Endpoint name {name!r}: 3-32 letters, digits and '-', starting"
                              " with a letter, not ending with '-'.", target="name")
        body = request.json()
        shapes.check("OnlineEndpoint", body)
        previous = fake.store.get(resource_id)
        traffic = body["properties"].get("traffic") or {}
        _check_traffic(fake, resource_id, traffic)
        document = _endpoint_document(fake, request, resource_id, body, previous)
        fake.store.put(document)
        headers = fake.operations.start(request, lambda: ("Succeeded", None))
        return Response(200 if previous else 201, document, headers)

    def get(request: Request) -> Response:
        return Response(200, fake.store.require(endpoint_id(request), KIND))

    def listing(request: Request) -> Response:
        return Response(200, {"value": fake.store.children(workspace_id(request, fake),
                                                           "onlineEndpoints")})

    def delete(request: Request) -> Response:
        resource_id = endpoint_id(request)
        fake.store.require(resource_id, KIND)
        for deployment in fake.store.children(resource_id, "deployments"):
            online_deployments.stop(fake, deployment["id"])
        fake.store.delete(resource_id)
        return Response(202, None, fake.operations.start(request, lambda: ("Succeeded", None)))

    def keys(request: Request) -> Response:
        document = fake.store.require(endpoint_id(request), KIND)
        return Response(200, fake.endpoint_keys[document["id"].lower()])

    def token(request: Request) -> Response:
        fake.store.require(endpoint_id(request), KIND)
        from .identity import jwt

        return Response(200, {"accessToken": jwt("https://ml.azure.com"), "tokenType": "Bearer",
                              "expiryTimeUtc": 0, "refreshAfterTimeUtc": 0})

    router.add("GET", ENDPOINTS, listing)
    router.add("GET", ENDPOINTS + "/{endpoint}", get)
    router.add("PUT", ENDPOINTS + "/{endpoint}", put)
    router.add("DELETE", ENDPOINTS + "/{endpoint}", delete)
    router.add("POST", ENDPOINTS + "/{endpoint}/listKeys", keys)
    router.add("POST", ENDPOINTS + "/{endpoint}/token", token)
    router.add("POST", "/endpoints/{endpoint}/score", lambda request: _score(fake, request))
    online_deployments.register(router, fake)


def _endpoint_document(fake: Any, request: Request, resource_id: str, body: dict[str, Any],
                       previous: dict[str, Any] | None) -> dict[str, Any]:
    name = request.params["endpoint"]
    auth = str(body["properties"].get("authMode", "Key"))
    if resource_id.lower() not in fake.endpoint_keys:
        fake.endpoint_keys[resource_id.lower()] = {"primaryKey": secrets.token_urlsafe(24),
                                                   "secondaryKey": secrets.token_urlsafe(24)}
    properties = {**body["properties"], "authMode": auth, "provisioningState": "Succeeded",
                  "scoringUri": f"{fake.url}/endpoints/{name}/score",
                  "swaggerUri": f"{fake.url}/endpoints/{name}/swagger.json",
                  "traffic": body["properties"].get("traffic") or {}}
    return {"id": resource_id, "name": name, "type": KIND, "location": fake.location,
            "tags": body.get("tags") or {}, "identity": body.get("identity")
            or {"type": "SystemAssigned"}, "kind": body.get("kind"),
            "systemData": system_data((previous or {}).get("systemData")),
            "properties": properties}


def _check_traffic(fake: Any, endpoint: str, traffic: dict[str, int]) -> None:
    existing = {d["name"].lower() for d in fake.store.children(endpoint, "deployments")}
    unknown = [name for name in traffic if name.lower() not in existing]
    if unknown:
        raise bad_request(f"Traffic names deployments that do not exist: {unknown}.",
                          target="properties.traffic")
    total = sum(int(v) for v in traffic.values())
    if total not in (0, 100):
        raise bad_request(f"Traffic must add up to 100 (or 0), not {total}.",
                          target="properties.traffic")


def _authorised(fake: Any, endpoint: dict[str, Any], header: str) -> bool:
    from .identity import claims

    value = header.removeprefix("Bearer ").strip()
    keys = fake.endpoint_keys.get(endpoint["id"].lower(), {})
    return value in keys.values() or claims(value) is not None


def _score(fake: Any, request: Request) -> Response:
    name = request.params["endpoint"]
    group = fake.workspace_id().rsplit("/workspaces/", 1)[0]
    found = [e for w in fake.store.children(group, "workspaces")
             for e in fake.store.children(w["id"], "onlineEndpoints")
             if e["name"].lower() == name.lower()]
    if not found:
        raise ArmError(404, "EndpointNotFound", f"No endpoint {name}.")
    endpoint = found[0]
    if not _authorised(fake, endpoint, request.headers.get("authorization", "")):
        raise ArmError(401, "Unauthorized", "The key or token is not valid for this endpoint.")
    deployment = request.headers.get("azureml-model-deployment") or _by_traffic(endpoint)
    running = fake.servings.get(f"{endpoint['id']}/deployments/{deployment}".lower())
    if running is None:
        raise ArmError(404, "DeploymentNotFound", f"No running deployment {deployment!r} on"
                       f" {name} (traffic: {endpoint['properties'].get('traffic')}).")
    headers = {k: v for k, v in request.headers.items()
               if k in ("content-type", "accept")}
    status, body, content_type = serving.score(running, request.body, headers)
    return Response(status, body, {"Content-Type": content_type,
                                   "azureml-model-deployment": deployment})


def _by_traffic(endpoint: dict[str, Any]) -> str:
    traffic = {k: int(v) for k, v in (endpoint["properties"].get("traffic") or {}).items()
               if int(v) > 0}
    if not traffic:
        raise ArmError(424, "NoTraffic", "The endpoint sends no traffic to any deployment:"
                       " set traffic or name a deployment (azureml-model-deployment).")
    # traffic splitting, not security: the standard generator is what a router would use
    return random.choices(list(traffic), weights=list(traffic.values()))[0]  # noqa: S311

