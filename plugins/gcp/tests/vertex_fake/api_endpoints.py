"""Vertex AI ``endpoints``: create, get, list, patch, delete, ``:deployModel``, ``:undeployModel``.

Create, delete, deploy and undeploy answer operations. A deployment starts the model's serving
container (:mod:`vertex_fake.serving`) and finishes when its health route answers 200; only then
does the endpoint list the deployed model and move traffic (as Vertex AI does). Undeploying stops
the container. ``trafficSplit`` is checked (ids of this endpoint, sums to 100); an endpoint with
models cannot be deleted; a model serving traffic cannot be undeployed without a new split.
"""

from __future__ import annotations

import threading
from typing import Any

from vertex_fake import listing, serving, traffic, validate, wire
from vertex_fake.api_jobs import delete_metadata
from vertex_fake.api_models import finish_later
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

BASE = "/v1/projects/{project}/locations/{location}/endpoints"
UPDATABLE = {"display_name", "description", "labels", "traffic_split"}


def _types() -> Any:
    from google.cloud.aiplatform_v1 import types

    return types


def _generic() -> Any:
    return _types().GenericOperationMetadata(create_time=wire.now(), update_time=wire.now())


def _name(fake: Any, request: Request, permission: str) -> str:
    return f"{fake.parent(request.params, permission)}/endpoints/{request.params['endpoint']}"


def servers(fake: Any) -> dict[str, serving.Server]:
    """Running serving containers by deployed model id."""
    with fake.lock:
        found: dict[str, serving.Server] = fake.extra.setdefault("servers", {})
        return found


def create(fake: Any, request: Request) -> Any:
    types = _types()
    parent = fake.parent(request.params, "aiplatform.endpoints.create")
    endpoint = request.message(types.Endpoint)
    validate.display_name(endpoint.display_name, "endpoint.display_name")
    validate.labels(endpoint.labels, "endpoint.labels")
    validate.encryption(endpoint.encryption_spec, "endpoint.encryption_spec")
    if endpoint.deployed_models or endpoint.traffic_split:
        raise invalid("endpoint.deployed_models and traffic_split cannot be set at creation:"
                      " deploy models with DeployModel.", "endpoint.deployed_models")
    wanted = request.query.get("endpointId", "")
    if wanted and not (wanted.isdigit() or validate.LABEL_KEY.fullmatch(wanted)):
        raise invalid(f"endpoint_id {wanted!r} is invalid.", "endpoint_id")
    name = f"{parent}/endpoints/{wanted or wire.new_id()}"
    if name in {e.name for e in fake.list("endpoints")}:
        raise ApiError("ALREADY_EXISTS", f"Endpoint {name} already exists.")
    endpoint.name = name
    endpoint.create_time = endpoint.update_time = wire.now()
    fake.put("endpoints", name, endpoint)
    operation = fake.operations.start(name, types.CreateEndpointOperationMetadata(
        generic_metadata=_generic()))
    finish_later(fake, operation, types.Endpoint.deserialize(types.Endpoint.serialize(endpoint)))
    return operation


def get(fake: Any, request: Request) -> Any:
    return fake.endpoint(_name(fake, request, "aiplatform.endpoints.get"))


def list_endpoints(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.endpoints.list")
    return listing.page(fake, request, "endpoints", parent, "endpoints")


def patch(fake: Any, request: Request) -> Any:
    """``UpdateEndpoint``: the fields named in ``updateMask`` (snake or camel case)."""
    name = _name(fake, request, "aiplatform.endpoints.update")
    change = request.message(_types().Endpoint)
    mask = [_snake(path) for path in request.query.get("updateMask", "").split(",") if path]
    if not mask:
        raise invalid("update_mask must be set.", "update_mask")
    with fake.lock:
        endpoint = fake.endpoint(name)
        for path in mask:
            if path not in UPDATABLE:
                raise invalid(f"update_mask: {path} cannot be updated.", "update_mask")
        if "traffic_split" in mask:
            traffic.check(change.traffic_split, [d.id for d in endpoint.deployed_models],
                          "endpoint.traffic_split")
        if "labels" in mask:
            validate.labels(change.labels, "endpoint.labels")
        if "display_name" in mask:
            validate.display_name(change.display_name, "endpoint.display_name")
        for path in mask:
            field = getattr(endpoint, path)
            if hasattr(field, "clear"):
                field.clear()
                field.update(getattr(change, path))
            else:
                setattr(endpoint, path, getattr(change, path))
        endpoint.update_time = wire.now()
        return endpoint


def _snake(path: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in path.strip())


def delete(fake: Any, request: Request) -> Any:
    from google.protobuf import empty_pb2

    name = _name(fake, request, "aiplatform.endpoints.delete")
    with fake.lock:
        endpoint = fake.endpoint(name)
        if endpoint.deployed_models:
            raise ApiError("FAILED_PRECONDITION", f"Endpoint {name} has deployed or being"
                           " deployed DeployedModel(s): undeploy them first.")
        fake.remove("endpoints", name)
    operation = fake.operations.start(name, delete_metadata())
    finish_later(fake, operation, empty_pb2.Empty())
    return operation


def check_deployed(deployed: Any) -> None:
    if deployed.automatic_resources.min_replica_count or \
            deployed.automatic_resources.max_replica_count:
        raise invalid("Model with a custom container does not support AutomaticResources:"
                      " use dedicated_resources.", "deployed_model.automatic_resources")
    resources = deployed.dedicated_resources
    validate.machine_type(resources.machine_spec.machine_type,
                          "deployed_model.dedicated_resources.machine_spec.machine_type")
    if resources.min_replica_count < 1:
        raise invalid("deployed_model.dedicated_resources.min_replica_count must be at least 1.",
                      "deployed_model.dedicated_resources.min_replica_count")
    if resources.max_replica_count and resources.max_replica_count < resources.min_replica_count:
        raise invalid("deployed_model.dedicated_resources.max_replica_count is below"
                      " min_replica_count.", "deployed_model.dedicated_resources")
    if deployed.display_name:
        validate.display_name(deployed.display_name, "deployed_model.display_name")


def deploy(fake: Any, request: Request) -> Any:
    types = _types()
    name = _name(fake, request, "aiplatform.endpoints.deploy")
    deploy_request = request.message(types.DeployModelRequest, endpoint=name)
    deployed = deploy_request.deployed_model
    with fake.lock:
        endpoint = fake.endpoint(name)
        model = fake.model(deployed.model)
        check_deployed(deployed)
        traffic.check(deploy_request.traffic_split,
                      [traffic.NEW, *(d.id for d in endpoint.deployed_models)], "traffic_split")
    deployed.id = deployed.id or wire.new_id()
    deployed.model = model.name
    deployed.model_version_id = model.version_id
    operation = fake.operations.start(name, types.DeployModelOperationMetadata(
        generic_metadata=_generic()))
    threading.Thread(target=_deploy, args=(fake, operation, name, model, deployed,
                                           dict(deploy_request.traffic_split)),
                     daemon=True).start()
    return operation


def _deploy(fake: Any, operation: Any, name: str, model: Any, deployed: Any,
            split: dict[str, int]) -> None:
    types = _types()
    try:
        server = serving.start(
            fake, model, name=f"vertexfake-{deployed.id}-{fake.session_id}",
            deployed_model_id=deployed.id, endpoint_id=name.rsplit("/", 1)[-1],
            machine_type=deployed.dedicated_resources.machine_spec.machine_type)
    except ApiError as error:
        operation.fail(error)
        return
    with fake.lock:
        endpoint = fake.endpoint(name)
        deployed.create_time = wire.now()
        endpoint.deployed_models.append(deployed)
        if split:
            new_split = {deployed.id if k == traffic.NEW else k: v for k, v in split.items()}
        elif not endpoint.traffic_split:
            new_split = {deployed.id: 100}
        else:
            new_split = dict(endpoint.traffic_split)
        endpoint.traffic_split.clear()
        endpoint.traffic_split.update(new_split)
        endpoint.update_time = wire.now()
        servers(fake)[deployed.id] = server
    operation.finish(types.DeployModelResponse(deployed_model=deployed))


def undeploy(fake: Any, request: Request) -> Any:
    types = _types()
    name = _name(fake, request, "aiplatform.endpoints.undeploy")
    undeploy_request = request.message(types.UndeployModelRequest, endpoint=name)
    gone = undeploy_request.deployed_model_id
    with fake.lock:
        endpoint = fake.endpoint(name)
        remaining = [d.id for d in endpoint.deployed_models if d.id != gone]
        if len(remaining) == len(endpoint.deployed_models):
            raise ApiError("NOT_FOUND", f"Deployed model {gone!r} not found in {name}.")
        split = dict(undeploy_request.traffic_split)
        if split:
            traffic.check(split, remaining, "traffic_split")
        else:
            split = {k: v for k, v in endpoint.traffic_split.items() if k != gone}
            if remaining and endpoint.traffic_split.get(gone, 0) > 0:
                raise invalid(f"Deployed model {gone} serves traffic: give a traffic_split for"
                              " the remaining models that sums to 100.", "traffic_split")
    operation = fake.operations.start(name, types.UndeployModelOperationMetadata(
        generic_metadata=_generic()))
    threading.Thread(target=_undeploy, args=(fake, operation, name, gone, split),
                     daemon=True).start()
    return operation


def _undeploy(fake: Any, operation: Any, name: str, gone: str, split: dict[str, int]) -> None:
    with fake.lock:
        server = servers(fake).pop(gone, None)
    if server is not None:
        serving.stop(fake, server)
    with fake.lock:
        endpoint = fake.endpoint(name)
        kept = [d for d in endpoint.deployed_models if d.id != gone]
        del endpoint.deployed_models[:]
        endpoint.deployed_models.extend(kept)
        endpoint.traffic_split.clear()
        endpoint.traffic_split.update(split)
        endpoint.update_time = wire.now()
    operation.finish(_types().UndeployModelResponse())


ROUTES = [
    ("POST", BASE, create),
    ("GET", BASE, list_endpoints),
    ("GET", BASE + "/{endpoint}", get),
    ("PATCH", BASE + "/{endpoint}", patch),
    ("DELETE", BASE + "/{endpoint}", delete),
    ("POST", BASE + "/{endpoint}:deployModel", deploy),
    ("POST", BASE + "/{endpoint}:undeployModel", undeploy),
]
