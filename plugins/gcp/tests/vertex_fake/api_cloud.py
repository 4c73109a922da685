"""The other Google APIs mldock-gcp calls: Artifact Registry, Resource Manager, Service Usage.

Their Python types are not installed, so bodies are checked against the fields the API
declares (an unknown field is a 400, as the service answers) rather than parsed into messages.

* Artifact Registry v1: ``GET/POST /v1/projects/P/locations/L/repositories[?repositoryId=]``
  (create answers an operation), ``GET …/repositories/R``. Locations: the Vertex regions plus
  the multi-regions ``us``, ``europe``, ``asia``.
* Resource Manager v3: ``GET /v3/projects/P`` (403 for a project the caller cannot see).
* Service Usage v1: ``GET /v1/projects/P/services/S`` (``fake.disabled_services`` lists the
  ones answered ``DISABLED``).
"""

from __future__ import annotations

import re
from typing import Any

from vertex_fake import wire
from vertex_fake.errors import ApiError, invalid, not_found
from vertex_fake.routing import Request

AR = "/v1/projects/{project}/locations/{location}/repositories"
AR_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1."
REPOSITORY_FIELDS = {"name", "format", "description", "labels", "kmsKeyName", "mode",
                     "dockerConfig", "cleanupPolicies", "cleanupPolicyDryRun",
                     "vulnerabilityScanningConfig", "mavenConfig", "virtualRepositoryConfig",
                     "remoteRepositoryConfig", "disallowUnspecifiedMode"}
FORMATS = {"DOCKER", "MAVEN", "NPM", "APT", "YUM", "PYTHON", "KFP", "GO", "GENERIC"}
REPOSITORY_ID = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
MULTI_REGIONS = {"us", "europe", "asia"}


def _ar_parent(fake: Any, request: Request, permission: str) -> str:
    project, location = request.params["project"], request.params["location"]
    if project not in (fake.project, fake.project_number):
        raise ApiError("PERMISSION_DENIED", f"Permission '{permission}' denied on resource"
                       f" '//artifactregistry.googleapis.com/projects/{project}/locations/"
                       f"{location}' (or it may not exist).", [{
                           "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                           "reason": "IAM_PERMISSION_DENIED",
                           "domain": "artifactregistry.googleapis.com",
                           "metadata": {"permission": permission}}])
    if location not in fake.locations | MULTI_REGIONS:
        raise invalid(f"Location {location} is not supported by Artifact Registry.")
    return f"projects/{fake.project}/locations/{location}"


def create_repository(fake: Any, request: Request) -> Any:
    parent = _ar_parent(fake, request, "artifactregistry.repositories.create")
    body = request.json()
    unknown = set(body) - REPOSITORY_FIELDS
    if unknown:
        raise invalid(f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\""
                      " at 'repository': Cannot find field.")
    repository_id = request.query.get("repositoryId", "")
    if not REPOSITORY_ID.fullmatch(repository_id):
        raise invalid(f"repository_id {repository_id!r} is invalid: lowercase letters, digits"
                      " and hyphens, starting with a letter, at most 63.", "repository_id")
    if body.get("format", "FORMAT_UNSPECIFIED") not in FORMATS:
        raise invalid(f"repository.format must be one of {sorted(FORMATS)}.",
                      "repository.format")
    name = f"{parent}/repositories/{repository_id}"
    with fake.lock:
        if name in fake.resources.get("repositories", {}):
            raise ApiError("ALREADY_EXISTS", f"the repository already exists: {name}")
        stamp = wire.rfc3339()
        repository = {**body, "name": name, "mode": body.get("mode", "STANDARD_REPOSITORY"),
                      "createTime": stamp, "updateTime": stamp}
        fake.put("repositories", name, repository)
    operation = fake.operations.start(parent, {"@type": AR_TYPE + "OperationMetadata"})
    operation.finish({"@type": AR_TYPE + "Repository", **repository})
    return operation


def get_repository(fake: Any, request: Request) -> dict[str, Any]:
    parent = _ar_parent(fake, request, "artifactregistry.repositories.get")
    name = f"{parent}/repositories/{request.params['repository']}"
    with fake.lock:
        found: dict[str, Any] | None = fake.resources.get("repositories", {}).get(name)
    if found is None:
        raise not_found(name)
    return found


def list_repositories(fake: Any, request: Request) -> dict[str, Any]:
    parent = _ar_parent(fake, request, "artifactregistry.repositories.list")
    with fake.lock:
        found = [repo for key, repo in fake.resources.get("repositories", {}).items()
                 if key.startswith(parent + "/")]
    return {"repositories": found}


def get_project(fake: Any, request: Request) -> dict[str, Any]:
    project = request.params["project"]
    if project not in (fake.project, fake.project_number):
        raise ApiError("PERMISSION_DENIED", "The caller does not have permission",
                       [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "IAM_PERMISSION_DENIED",
                         "domain": "cloudresourcemanager.googleapis.com",
                         "metadata": {"permission": "resourcemanager.projects.get"}}])
    return {"name": f"projects/{fake.project_number}", "projectId": fake.project,
            "state": "ACTIVE", "displayName": fake.project, "parent": "organizations/1",
            "createTime": "2026-01-01T00:00:00Z", "etag": "W/\"fake\""}


def get_service(fake: Any, request: Request) -> dict[str, Any]:
    project = request.params["project"]
    if project not in (fake.project, fake.project_number):
        raise ApiError("PERMISSION_DENIED", "The caller does not have permission")
    service = request.params["service"]
    disabled = service in fake.disabled_services
    return {"name": f"projects/{fake.project_number}/services/{service}",
            "parent": f"projects/{fake.project_number}",
            "state": "DISABLED" if disabled else "ENABLED", "config": {"name": service}}


ROUTES = [
    ("POST", AR, create_repository),
    ("GET", AR, list_repositories),
    ("GET", AR + "/{repository}", get_repository),
    ("GET", "/v3/projects/{project}", get_project),
    ("GET", "/v1/projects/{project}/services/{service}", get_service),
]
