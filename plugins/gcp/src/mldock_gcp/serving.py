"""Vertex AI endpoints: upload the model, deploy it blue/green, find, call and remove.

A deploy uploads a Vertex *model* (the image as serving container, the model folder as
``artifactUri``), finds the endpoint mldock made under that name (by its labels) or creates one,
and deploys the new model on it with all the traffic. Vertex answers the deploy operation once the
new replicas pass their health checks, and only then moves the traffic; the previous deployed
model keeps serving until that moment and is undeployed afterwards, so a redeploy has no downtime.
A deploy that fails leaves the previous model serving and removes what it created.

Everything carries the labels of :mod:`mldock_gcp.names`: ``list`` shows only endpoints labelled
``mldock-role=serving``, ``undeploy`` deletes only models labelled with the endpoint's name.
Vertex resource ids are numbers Vertex picks; the endpoint's *display name* is mldock's name.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from mldock.errors import MldockError, NotFoundError
from mldock.interfaces import Deployment, DeployRequest, Prediction, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import translated
from mldock_gcp.models import delete_model, model_resource, upload_model, wait_operation
from mldock_gcp.names import (
    LABEL_ENDPOINT,
    LABEL_ROLE,
    LABEL_RUN,
    display_name,
    label_value,
    labels,
    stamp,
)
from mldock_gcp.prediction import (
    CONTAINER_ERRORS,
    container_error,
    instances_payload,
    integral,
    is_google_error,
)

ROLE = "serving"
ENDPOINTS_HINT = "see 'mldock --env gcp deploy --list'"


class Endpoints:
    """The endpoint half of the Vertex deployer.

    Args:
        clients: the Vertex clients.
        options: ``[deploy.vertex]``.
        project: the mldock project's name (labels).
        poll_s: seconds between two looks at an operation (tests make it short).
    """

    def __init__(self, clients: VertexClients, options: VertexOptions, *, project: str,
                 poll_s: float = 10.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def _wait(self, operation: Any, action: str, resource: str | None = None) -> Any:
        return wait_operation(operation, action=action, resource=resource,
                              timeout_s=self.options.deploy_timeout_s, poll_s=self.poll_s)

    # --- reading ------------------------------------------------------------------------------
    def _endpoints(self, extra: str = "") -> Iterator[Any]:
        """mldock's serving endpoints in the project and region (a filter Vertex applies)."""
        wanted = f'labels.{LABEL_ROLE}="{ROLE}"' + (f' AND {extra}' if extra else "")
        with translated(f"list the Vertex AI endpoints of {self.clients.parent}"):
            yield from self.clients.endpoints.list_endpoints(
                request={"parent": self.clients.parent, "filter": wanted})

    def find(self, name: str) -> Any | None:
        """The endpoint mldock made under ``name``, or None (foreign endpoints are not seen)."""
        value = label_value(name)
        for endpoint in self._endpoints(f'labels.{LABEL_ENDPOINT}="{value}"'):
            if endpoint.display_name == name and endpoint.labels.get(LABEL_ENDPOINT) == value:
                return endpoint
        return None

    def _require(self, name: str) -> Any:
        found = self.find(name)
        if found is None:
            raise NotFoundError(f"no Vertex AI endpoint named {name!r} made by mldock in"
                                f" {self.clients.parent}",
                                hint="deploy one with 'mldock --env gcp deploy'; "
                                     + ENDPOINTS_HINT)
        return found

    def url(self, endpoint: str) -> str:
        base = self.clients.api_endpoint
        base = base if "://" in base else f"https://{base}"
        return f"{base.rstrip('/')}/v1/{endpoint}:predict"

    def _serving(self, endpoint: Any) -> Any | None:
        """The deployed model taking the most traffic (the one a deploy put there)."""
        deployed = list(endpoint.deployed_models)
        if not deployed:
            return None
        split = dict(endpoint.traffic_split)
        return max(reversed(deployed), key=lambda d: split.get(d.id, 0))  # ties: the newest

    def as_deployment(self, endpoint: Any) -> Deployment:
        serving = self._serving(endpoint)
        details: dict[str, Any] = {"endpoint": endpoint.name, "region": self.clients.region,
                                   "traffic_split": dict(endpoint.traffic_split)}
        run_id = image = None
        if serving is not None:
            details.update(deployed_model_id=serving.id, model=serving.model)
            with contextlib.suppress(NotFoundError), \
                    translated(f"read model {serving.model}", resource=f"model {serving.model}"):
                model = self.clients.models.get_model(name=serving.model)
                run_id = model.labels.get(LABEL_RUN) or None
                image = model.container_spec.image_uri or None
        ready = serving is not None and dict(endpoint.traffic_split).get(serving.id, 0) > 0
        return Deployment(name=endpoint.display_name, url=self.url(endpoint.name),
                          status="ready" if ready else "empty", run_id=run_id, image=image,
                          details=details)

    def get(self, name: str) -> Deployment:
        return self.as_deployment(self._require(name))

    def list(self) -> builtins.list[Deployment]:  # ``list`` is this method here
        """mldock's endpoints (labelled ``mldock-role=serving``), sorted by name."""
        return sorted((self.as_deployment(e) for e in self._endpoints()), key=lambda d: d.name)

    # --- deploying ----------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *, image: str, artifact_uri: str,
               progress: ProgressSink = null_progress) -> Deployment:
        """Create ``request.name`` or deploy the new model on it, blue/green."""
        name = request.name
        project = str(request.options.get("project") or self.project)
        tags = labels(self.options.labels, project=project, role=ROLE, run_id=request.run_id,
                      endpoint=name)
        environment = {ENV_RUN_ID: request.run_id, **dict(request.environment)}
        model_name = display_name(name, request.run_id, stamp())
        progress(f"uploading model {model_name} ({artifact_uri})")
        model = upload_model(self.clients, model_resource(
            name=model_name, image=image, artifact_uri=artifact_uri, labels=tags,
            environment=environment, options=self.options),
            timeout_s=self.options.deploy_timeout_s, poll_s=self.poll_s)
        endpoint = self.find(name)
        created = endpoint is None
        try:
            if endpoint is None:
                endpoint = self._create_endpoint(name, project, progress)
            previous = {d.id: d.model.split("@", 1)[0] for d in endpoint.deployed_models}
            new_id = self._deploy_model(endpoint.name, model, request, progress)
        except BaseException:
            self._clean_up(model, endpoint.name if created and endpoint is not None else None)
            raise
        progress(f"endpoint {name}: deployed model {new_id} serves all traffic")
        for old in previous:
            self._undeploy_model(endpoint.name, old, progress)
        # only the models this deploy replaced: a model another deploy of the same endpoint
        # has just uploaded (not deployed yet) must stay
        self._delete_unused_models(name, among=set(previous.values()))
        with translated(f"read endpoint {name!r}", resource=f"endpoint {name!r}"):
            return self.as_deployment(self.clients.endpoints.get_endpoint(name=endpoint.name))

    def _create_endpoint(self, name: str, project: str, progress: ProgressSink) -> Any:
        from google.cloud import aiplatform_v1 as aip

        endpoint = aip.Endpoint(display_name=name, labels=labels(
            self.options.labels, project=project, role=ROLE, endpoint=name))
        if self.options.encryption_key:
            endpoint.encryption_spec = aip.EncryptionSpec(kms_key_name=self.options.encryption_key)
        progress(f"creating endpoint {name} in {self.clients.parent}")
        with translated(f"create endpoint {name!r}", resource=f"endpoint {name!r}"):
            operation = self.clients.endpoints.create_endpoint(parent=self.clients.parent,
                                                               endpoint=endpoint)
        return self._wait(operation, f"create endpoint {name!r}")

    def resources(self, request: DeployRequest) -> Any:
        """DedicatedResources: machine, accelerators and replicas (``request.options`` may
        override ``machine_type``, ``min_replicas`` and ``max_replicas``)."""
        from google.cloud import aiplatform_v1 as aip

        extra = request.options
        machine = aip.MachineSpec(machine_type=str(extra.get("machine_type")
                                                   or self.options.serve_machine_type))
        if self.options.serve_accelerator_type:
            machine.accelerator_type = getattr(aip.AcceleratorType,
                                               self.options.serve_accelerator_type)
            machine.accelerator_count = self.options.serve_accelerator_count
        low = int(extra.get("min_replicas") or self.options.min_replicas)
        high = int(extra.get("max_replicas") or self.options.max_replicas or low)
        return aip.DedicatedResources(machine_spec=machine, min_replica_count=low,
                                      max_replica_count=max(low, high))

    def _deploy_model(self, endpoint: str, model: str, request: DeployRequest,
                      progress: ProgressSink) -> str:
        from google.cloud import aiplatform_v1 as aip

        resources = self.resources(request)
        deployed = aip.DeployedModel(model=model, dedicated_resources=resources,
                                     display_name=display_name(request.name, request.run_id))
        if self.options.service_account:
            deployed.service_account = self.options.service_account
        progress(f"deploying {model} to {endpoint}: {resources.min_replica_count}-"
                 f"{resources.max_replica_count} x {resources.machine_spec.machine_type};"
                 " the previous model serves until the new one is ready")
        action = f"deploy model {model} to endpoint {request.name!r}"
        with translated(action, resource=f"endpoint {request.name!r}"):
            operation = self.clients.endpoints.deploy_model(
                endpoint=endpoint, deployed_model=deployed, traffic_split={"0": 100})
        return str(self._wait(operation, action).deployed_model.id)

    def _undeploy_model(self, endpoint: str, deployed_id: str, progress: ProgressSink) -> None:
        action = f"undeploy model {deployed_id} from {endpoint}"
        with translated(action):
            operation = self.clients.endpoints.undeploy_model(endpoint=endpoint,
                                                              deployed_model_id=deployed_id)
        self._wait(operation, action)
        progress(f"undeployed model {deployed_id} from {endpoint}")

    def _owned_models(self, name: str) -> builtins.list[Any]:
        """The models mldock uploaded for endpoint ``name`` (labelled with it)."""
        wanted = (f'labels.{LABEL_ENDPOINT}="{label_value(name)}" AND'
                  f' labels.{LABEL_ROLE}="{ROLE}"')
        with translated(f"list the models of endpoint {name!r}"):
            found = self.clients.models.list_models(
                request={"parent": self.clients.parent, "filter": wanted})
            return [m for m in found if m.labels.get(LABEL_ENDPOINT) == label_value(name)
                    and m.labels.get(LABEL_ROLE) == ROLE]

    def _delete_unused_models(self, name: str, among: set[str] | None = None) -> None:
        """Models of ``name`` (of ``among``, when given) that are no longer deployed."""
        for model in self._owned_models(name):
            if (among is None or model.name in among) and not list(model.deployed_models):
                with contextlib.suppress(MldockError):
                    delete_model(self.clients, model.name,
                                 timeout_s=self.options.deploy_timeout_s, poll_s=self.poll_s)

    def _clean_up(self, model: str, endpoint: str | None) -> None:
        """Remove what a failed deploy created; a failure here must not hide the first one."""
        with contextlib.suppress(MldockError):
            if endpoint is not None:
                self._delete_endpoint(endpoint)
        with contextlib.suppress(MldockError):
            delete_model(self.clients, model, timeout_s=self.options.deploy_timeout_s,
                         poll_s=self.poll_s)

    def _delete_endpoint(self, endpoint: str) -> None:
        with translated(f"delete endpoint {endpoint}", resource=f"endpoint {endpoint}"):
            operation = self.clients.endpoints.delete_endpoint(name=endpoint)
        self._wait(operation, f"delete endpoint {endpoint}")

    def undeploy(self, name: str, progress: ProgressSink = null_progress) -> None:
        """Undeploy every model from mldock's endpoint ``name``, delete it and its models."""
        endpoint = self._require(name)
        for deployed in endpoint.deployed_models:
            self._undeploy_model(endpoint.name, deployed.id, progress)
        self._delete_endpoint(endpoint.name)
        self._delete_unused_models(name)

    # --- calling ------------------------------------------------------------------------------
    def predict(self, name: str, body: bytes, *, content_type: str, accept: str) -> Prediction:
        """``{"instances": …}`` JSON through ``:predict`` (answered ``{"predictions": …}`` as
        the runtime answers locally), any other payload (CSV, raw JSON) through ``:rawPredict``
        as it is."""
        endpoint = self._require(name).name
        payload = instances_payload(body, content_type)
        if payload is None:
            return self._raw_predict(name, endpoint, body, content_type=content_type,
                                     accept=accept)
        from google.api_core import exceptions as gax
        from google.cloud import aiplatform_v1 as aip

        request = aip.PredictRequest.from_json(json.dumps({"endpoint": endpoint, **payload}))
        try:
            with translated(f"call endpoint {name!r}", resource=f"endpoint {name!r}"):
                try:
                    answer = self.clients.prediction.predict(request=request)
                except gax.GoogleAPICallError as exc:
                    if exc.code in CONTAINER_ERRORS:
                        return container_error(exc.code, str(exc.message))
                    raise
        except NotFoundError as exc:
            raise NotFoundError(exc.message, hint=ENDPOINTS_HINT) from exc
        found = aip.PredictResponse.to_dict(answer).get("predictions", [])
        return Prediction(json.dumps({"predictions": integral(found)}).encode("utf-8"),
                          "application/json", 200)

    def _raw_predict(self, name: str, endpoint: str, body: bytes, *, content_type: str,
                     accept: str) -> Prediction:
        """POST the body as it is, as the Vertex SDK's ``Endpoint.raw_predict`` does (the GAPIC
        method would wrap it in a JSON ``HttpBody``)."""
        url = self.url(endpoint).removesuffix(":predict") + ":rawPredict"
        with translated(f"call endpoint {name!r}", resource=f"endpoint {name!r}"):
            answer = self.clients.session.post(
                url, data=body, headers={"Content-Type": content_type, "Accept": accept},
                timeout=600)
            if answer.status_code >= 400 and is_google_error(answer):
                from google.api_core.exceptions import from_http_response

                error = from_http_response(answer)
                if answer.status_code in CONTAINER_ERRORS:  # the container's, relayed
                    return container_error(answer.status_code, str(error.message))
                raise error
        return Prediction(answer.content, answer.headers.get("Content-Type", ""),
                          answer.status_code)
