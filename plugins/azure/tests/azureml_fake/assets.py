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
        AssetRoutes(fake, segment, version_model, container_model, validate).register(router)


class AssetRoutes:
    """The routes of one asset kind (``environments`` or ``models``) of every workspace."""

    def __init__(self, fake: Any, segment: str, version_model: str, container_model: str,
                 validate: Validator) -> None:
        self.fake = fake
        self.segment = segment
        self.kind = f"{PROVIDER}/workspaces/{segment}"
        self.version_model = version_model
        self.container_model = container_model
        self.validate = validate

    def register(self, router: Router) -> None:
        base = f"{WORKSPACE}/{self.segment}"
        router.add("GET", base, self.list_containers)
        router.add("GET", base + "/{name}", self.get_container)
        router.add("PUT", base + "/{name}", self.put_container)
        router.add("GET", base + "/{name}/versions", self.list_versions)
        router.add("GET", base + "/{name}/versions/{version}", self.get_version)
        router.add("PUT", base + "/{name}/versions/{version}", self.put_version)

    def container_id(self, request: Request) -> str:
        name = request.params["name"]
        if not ASSET_NAME.match(name):
            raise bad_request(f"Asset name {name!r} must start with a letter or digit and hold"
                              " only letters, digits, '-', '_' and '.' (at most 255).",
                              target="name")
        return f"{workspace_id(request, self.fake)}/{self.segment}/{name}"

    def ensure_container(self, resource_id: str, name: str) -> dict[str, Any]:
        found = self.fake.store.get(resource_id)
        if found is None:
            found = self.fake.store.put({
                "id": resource_id, "name": name, "type": self.kind, "systemData": system_data(),
                "properties": {"isArchived": False, "tags": {}, "properties": {},
                               "latestVersion": None, "nextVersion": "1",
                               "provisioningState": "Succeeded"}})
        return dict(found)

    def put_version(self, request: Request) -> Response:
        parent = self.container_id(request)
        version = request.params["version"]
        if not VERSION.match(version):
            raise bad_request(f"Version {version!r}: letters, digits, '-', '_', '.'; at most 255.",
                              target="version")
        body = request.json()
        shapes.check(self.version_model, body)
        previous = self.fake.store.get(f"{parent}/versions/{version}")
        self.validate(body["properties"], previous)
        container = self.ensure_container(parent, request.params["name"])
        saved = self.fake.store.put({
            "id": f"{parent}/versions/{version}", "name": version, "type": f"{self.kind}/versions",
            "systemData": system_data((previous or {}).get("systemData")),
            "properties": {**SERVICE_DEFAULTS[self.segment], **body["properties"],
                           "provisioningState": "Succeeded"}})
        self._advance(parent, container, version)
        return Response(200 if previous else 201, saved)

    def _advance(self, parent: str, container: dict[str, Any], version: str) -> None:
        """``latestVersion`` is this one; ``nextVersion`` moves past a numeric version."""
        current = container["properties"].get("nextVersion") or "1"
        if version.isdigit() and (not current.isdigit() or int(version) + 1 > int(current)):
            self.fake.store.update(parent, latestVersion=version, nextVersion=str(int(version) + 1))
        else:
            self.fake.store.update(parent, latestVersion=version)

    def get_version(self, request: Request) -> Response:
        resource_id = f"{self.container_id(request)}/versions/{request.params['version']}"
        return Response(200, self.fake.store.require(resource_id, f"{self.kind}/versions"))

    def list_versions(self, request: Request) -> Response:
        found = self.fake.store.children(self.container_id(request), "versions")
        if request.query.get("$orderBy", request.query.get("$orderby", "")).endswith("desc"):
            found.reverse()
        top = request.query.get("$top")
        return Response(200, {"value": found[: int(top)] if top else found})

    def get_container(self, request: Request) -> Response:
        return Response(200, self.fake.store.require(self.container_id(request), self.kind))

    def put_container(self, request: Request) -> Response:
        resource_id = self.container_id(request)
        body = request.json()
        shapes.check(self.container_model, body)
        existing = self.ensure_container(resource_id, request.params["name"])
        properties = {**existing["properties"], **body["properties"]}
        return Response(200, self.fake.store.put({**existing, "properties": properties}))

    def list_containers(self, request: Request) -> Response:
        return Response(200, {"value": self.fake.store.children(
            workspace_id(request, self.fake), self.segment)})
