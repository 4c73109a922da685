"""Versioned assets: environments and models (``<kind>/{name}`` and ``<kind>/{name}/versions/{v}``).

A version PUT creates its container when missing and keeps ``latestVersion``/``nextVersion`` on
it (the SDK reads them to pick the next version). Beyond the generated models' shapes the fake
checks what the service checks: asset names, an environment with exactly one of ``image`` or
``build`` and immutable versions, a model with a ``modelUri`` and a known ``modelType``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import shapes
from .routing import PROVIDER, WORKSPACE, ArmError, Request, Response, Router, bad_request
from .state import system_data
from .workspaces import workspace_id

ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}$")
VERSION = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}$")
MODEL_TYPES = {"custom_model", "mlflow_model", "triton_model"}
# what the service fills in when a version omits it (clients iterate these without a None check)
SERVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "models": {"flavors": {}, "tags": {}, "properties": {}, "isArchived": False},
    "environments": {"tags": {}, "properties": {}, "isArchived": False, "osType": "Linux"},
}
Validator = Callable[[dict[str, Any], dict[str, Any] | None], None]


def check_environment(properties: dict[str, Any], previous: dict[str, Any] | None) -> None:
    if bool(properties.get("image")) == bool(properties.get("build")):
        raise bad_request("An environment version needs exactly one of image or build.",
                          target="properties.image")
    if previous is not None and previous["properties"].get("image") != properties.get("image"):
        raise ArmError(409, "Conflict", "Environment versions are immutable: register a new"
                       " version instead of changing the image.")


def check_model(properties: dict[str, Any], previous: dict[str, Any] | None) -> None:
    if not properties.get("modelUri"):
        raise bad_request("A model version needs a modelUri.", target="properties.modelUri")
    kind = str(properties.get("modelType") or "custom_model").lower()
    if kind not in MODEL_TYPES:
        raise bad_request(f"modelType {kind!r} is not one of {sorted(MODEL_TYPES)}.",
                          target="properties.modelType")
    if previous is not None and previous["properties"].get("modelUri") != properties["modelUri"]:
        raise ArmError(409, "Conflict", "A model version's modelUri cannot change.")


ASSETS: dict[str, tuple[str, str, Validator]] = {
    "environments": ("EnvironmentVersion", "EnvironmentContainer", check_environment),
    "models": ("ModelVersion", "ModelContainer", check_model),
}


def register(router: Router, fake: Any) -> None:
    for segment, (version_model, container_model, validate) in ASSETS.items():
        _register_kind(router, fake, segment, version_model, container_model, validate)


def _register_kind(router: Router, fake: Any, segment: str, version_model: str,
                   container_model: str, validate: Validator) -> None:
    kind = f"{PROVIDER}/workspaces/{segment}"

    def container_id(request: Request) -> str:
        name = request.params["name"]
        if not ASSET_NAME.match(name):
            raise bad_request(f"Asset name {name!r} must start with a letter or digit and hold"
                              " only letters, digits, '-', '_' and '.' (at most 255).",
                              target="name")
        return f"{workspace_id(request, fake)}/{segment}/{name}"

    def ensure_container(resource_id: str, name: str) -> dict[str, Any]:
        found = fake.store.get(resource_id)
        if found is None:
            found = fake.store.put({"id": resource_id, "name": name, "type": kind,
                                    "systemData": system_data(),
                                    "properties": {"isArchived": False, "tags": {},
                                                   "properties": {}, "latestVersion": None,
                                                   "nextVersion": "1",
                                                   "provisioningState": "Succeeded"}})
        return dict(found)

    def put_version(request: Request) -> Response:
        parent = container_id(request)
        version = request.params["version"]
        if not VERSION.match(version):
            raise bad_request(f"Version {version!r}: letters, digits, '-', '_', '.'; at most 255.",
                              target="version")
        body = request.json()
        shapes.check(version_model, body)
        previous = fake.store.get(f"{parent}/versions/{version}")
        validate(body["properties"], previous)
        container = ensure_container(parent, request.params["name"])
        document = {"id": f"{parent}/versions/{version}", "name": version,
                    "type": f"{kind}/versions", "systemData": system_data(
                        (previous or {}).get("systemData")),
                    "properties": {**SERVICE_DEFAULTS[segment], **body["properties"],
                                   "provisioningState": "Succeeded"}}
        saved = fake.store.put(document)
        next_version = str(int(version) + 1) if version.isdigit() else None
        current = container["properties"].get("nextVersion") or "1"
        if next_version and (not current.isdigit() or int(next_version) > int(current)):
            fake.store.update(parent, latestVersion=version, nextVersion=next_version)
        else:
            fake.store.update(parent, latestVersion=version)
        return Response(200 if previous else 201, saved)

    def get_version(request: Request) -> Response:
        resource_id = f"{container_id(request)}/versions/{request.params['version']}"
        return Response(200, fake.store.require(resource_id, f"{kind}/versions"))

    def list_versions(request: Request) -> Response:
        found = fake.store.children(container_id(request), "versions")
        if request.query.get("$orderBy", request.query.get("$orderby", "")).endswith("desc"):
            found.reverse()
        top = request.query.get("$top")
        return Response(200, {"value": found[: int(top)] if top else found})

    def get_container(request: Request) -> Response:
        return Response(200, fake.store.require(container_id(request), kind))

    def put_container(request: Request) -> Response:
        resource_id = container_id(request)
        body = request.json()
        shapes.check(container_model, body)
        existing = ensure_container(resource_id, request.params["name"])
        properties = {**existing["properties"], **body["properties"]}
        return Response(200, fake.store.put({**existing, "properties": properties}))

    def list_containers(request: Request) -> Response:
        return Response(200, {"value": fake.store.children(workspace_id(request, fake),
                                                           segment)})

    base = f"{WORKSPACE}/{segment}"
    router.add("GET", base, list_containers)
    router.add("GET", base + "/{name}", get_container)
    router.add("PUT", base + "/{name}", put_container)
    router.add("GET", base + "/{name}/versions", list_versions)
    router.add("GET", base + "/{name}/versions/{version}", get_version)
    router.add("PUT", base + "/{name}/versions/{version}", put_version)
