"""SageMaker endpoints: create or update in place, wait until InService, find, call, delete.

A deploy creates a model (image + ``model.tar.gz`` + role) and an endpoint config (instances)
under fresh names, then creates the endpoint or, when it exists, updates it to the new config:
SageMaker starts the new instances, shifts traffic once they answer ``/ping`` and only then
retires the old ones, so a redeploy has no downtime. When the update went through, the previous
config and model are deleted; when it failed, the new ones are. Everything carries the
``mldock.*`` tags of :mod:`mldock_aws.names`, which is how ``list`` finds mldock's endpoints and
``undeploy`` finds the configs and models to delete with an endpoint.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Callable
from typing import Any

from mldock.errors import MldockError, NotFoundError
from mldock.interfaces import Deployment, DeployRequest, Prediction, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_aws.clients import AwsClients
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import describe, is_aws_error, is_not_found, translated
from mldock_aws.names import (
    TAG_ENDPOINT,
    TAG_PROJECT,
    TAG_ROLE,
    TAG_RUN,
    resource_name,
    resource_prefix,
    tag_dict,
    tag_list,
)

TAG_IMAGE = "mldock.image"
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
VARIANT = "AllTraffic"


def model_request(name: str, *, image: str, model_url: str, role_arn: str,
                  environment: dict[str, str], tags: dict[str, str],
                  options: SageMakerOptions) -> dict[str, Any]:
    """CreateModel: the image, the model archive and the role; nothing SageMaker-specific in the
    environment (the runtime detects SageMaker serving by itself)."""
    request: dict[str, Any] = {
        "ModelName": name,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": model_url,
                             "Environment": environment},
        "ExecutionRoleArn": role_arn,
        "Tags": tag_list(tags),
    }
    if options.subnets:
        request["VpcConfig"] = {"Subnets": list(options.subnets),
                                "SecurityGroupIds": list(options.security_group_ids)}
    return request


def config_request(name: str, *, model_name: str, instance_type: str, instance_count: int,
                   tags: dict[str, str], options: SageMakerOptions) -> dict[str, Any]:
    """CreateEndpointConfig: one variant taking all traffic."""
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model_name,
                               "InitialInstanceCount": instance_count,
                               "InstanceType": instance_type, "InitialVariantWeight": 1.0}
    if options.endpoint_startup_timeout_s:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = options.endpoint_startup_timeout_s
    request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant],
                               "Tags": tag_list(tags)}
    if options.kms_key_id:
        request["KmsKeyId"] = options.kms_key_id
    return request


class Endpoints:
    """The endpoint half of the SageMaker deployer."""

    def __init__(self, clients: AwsClients, options: SageMakerOptions, *, project: str,
                 poll_s: float = 15.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    # --- reading ------------------------------------------------------------------------------
    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeEndpoint, or None when there is no such endpoint."""
        try:
            with translated(f"describe endpoint {name!r}", resource=f"endpoint {name!r}"):
                return self.clients.sagemaker.describe_endpoint(EndpointName=name)
        except NotFoundError:
            return None

    def tags(self, arn: str) -> dict[str, str]:
        with translated(f"read the tags of {arn}"):
            pages = self.clients.sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn)
            return tag_dict(tag for page in pages for tag in page.get("Tags", []))

    def url(self, name: str) -> str:
        return f"{self.clients.endpoint_of('sagemaker-runtime')}/endpoints/{name}/invocations"

    def as_deployment(self, found: dict[str, Any], tags: dict[str, str]) -> Deployment:
        status = str(found.get("EndpointStatus", "unknown"))
        name = str(found["EndpointName"])
        details = {"endpoint_config": found.get("EndpointConfigName"),
                   "arn": found.get("EndpointArn"), "sagemaker_status": status,
                   "region": self.clients.region}
        if found.get("FailureReason"):
            details["failure_reason"] = found["FailureReason"]
        return Deployment(name=name, url=self.url(name),
                          status="ready" if status == "InService" else status.lower(),
                          run_id=tags.get(TAG_RUN), image=tags.get(TAG_IMAGE), details=details)

    def get(self, name: str) -> Deployment:
        found = self.describe(name)
        if found is None:
            raise NotFoundError(f"no SageMaker endpoint named {name!r} in {self.clients.region}",
                                hint="deploy one with 'mldock --env aws deploy'; list them with"
                                     " 'mldock --env aws deploy --list'")
        return self.as_deployment(found, self.tags(found["EndpointArn"]))

    def list(self) -> list[Deployment]:
        """Endpoints mldock created (tagged ``mldock.endpoint``), sorted by name."""
        found = []
        with translated("list SageMaker endpoints"):
            pages = self.clients.sagemaker.get_paginator("list_endpoints").paginate()
            summaries = [e for page in pages for e in page.get("Endpoints", [])]
        for summary in summaries:
            tags = self.tags(summary["EndpointArn"])
            if TAG_ENDPOINT in tags:
                found.append(self.as_deployment(summary, tags))
        return sorted(found, key=lambda d: d.name)

    # --- deploying ----------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *, image: str, model_url: str,
               progress: ProgressSink = null_progress) -> Deployment:
        """Create ``request.name`` or update it in place to serve ``model_url`` with ``image``."""
        name = request.name
        current = self.describe(name)
        if current is not None and current["EndpointStatus"] in BUSY:
            raise MldockError(f"endpoint {name!r} is {current['EndpointStatus']}: it cannot be"
                              " updated now", hint="wait until it is InService, then deploy again")
        if current is not None and current["EndpointStatus"] == "Failed":
            progress(f"endpoint {name} failed earlier ({current.get('FailureReason', '')});"
                     " deleting it to create it again")
            self._delete_endpoint(name)
            self._wait_gone(name, progress)
            current = None
        tags = {**self.options.tags, TAG_ENDPOINT: name, TAG_RUN: request.run_id,
                TAG_PROJECT: str(request.options.get("project") or self.project),
                TAG_ROLE: "serving", TAG_IMAGE: image[:256]}
        instance_type = str(request.options.get("instance_type")
                            or self.options.serve_instance_type)
        count = int(request.options.get("instance_count") or self.options.serve_instance_count)
        new = resource_name(name)
        environment = {ENV_RUN_ID: request.run_id, **dict(request.environment)}
        with translated(f"create model {new}", resource=f"model {new}"):
            self.clients.sagemaker.create_model(**model_request(
                new, image=image, model_url=model_url, role_arn=self.options.role_arn,
                environment=environment, tags=tags, options=self.options))
        created: list[tuple[str, str]] = [("model", new)]
        try:
            with translated(f"create endpoint config {new}", resource=f"endpoint config {new}"):
                self.clients.sagemaker.create_endpoint_config(**config_request(
                    new, model_name=new, instance_type=instance_type, instance_count=count,
                    tags=tags, options=self.options))
            created.append(("config", new))
            if current is None:
                progress(f"creating endpoint {name}: {count} x {instance_type}")
                with translated(f"create endpoint {name!r}", resource=f"endpoint {name!r}"):
                    self.clients.sagemaker.create_endpoint(
                        EndpointName=name, EndpointConfigName=new, Tags=tag_list(tags))
            else:
                progress(f"updating endpoint {name} in place (config {new}); the old instances"
                         " serve until the new ones are ready")
                with translated(f"update endpoint {name!r} in place",
                                resource=f"endpoint {name!r}"):
                    self.clients.sagemaker.update_endpoint(EndpointName=name,
                                                           EndpointConfigName=new)
        except BaseException:
            self._delete_quietly(created)
            raise
        found = self._wait_in_service(name, progress)
        if found.get("EndpointConfigName") != new:  # an update SageMaker rolled back
            self._delete_quietly(created)
            raise MldockError(f"the update of endpoint {name!r} failed and was rolled back:"
                              f" {found.get('FailureReason') or 'no reason given'}",
                              hint="the previous model still serves; see the endpoint's"
                                   " CloudWatch log /aws/sagemaker/Endpoints/" + name)
        if current is not None:
            with translated(f"tag endpoint {name!r}"):
                self.clients.sagemaker.add_tags(ResourceArn=found["EndpointArn"],
                                                Tags=tag_list(tags))
            self._delete_previous(name, keep=new)
        return self.as_deployment(found, tags)

    def _wait_in_service(self, name: str, progress: ProgressSink) -> dict[str, Any]:
        deadline = time.monotonic() + self.options.deploy_timeout_s
        shown = None
        while True:
            found = self.describe(name)
            if found is None:
                raise NotFoundError(f"endpoint {name!r} disappeared while it was being deployed",
                                    hint="someone deleted it; deploy again")
            status = found["EndpointStatus"]
            if status != shown:
                progress(f"endpoint {name}: {status}")
                shown = status
            if status == "InService":
                return found
            if status in ("Failed", "OutOfService"):
                raise MldockError(f"endpoint {name!r} is {status}:"
                                  f" {found.get('FailureReason') or 'no reason given'}",
                                  hint="see its CloudWatch log /aws/sagemaker/Endpoints/" + name
                                       + "; 'mldock --env aws undeploy' removes it")
            if time.monotonic() >= deadline:
                raise MldockError(f"endpoint {name!r} is still {status} after"
                                  f" {self.options.deploy_timeout_s} s",
                                  hint="it may still become InService: check 'mldock --env aws"
                                       " deploy --list', or raise deploy_timeout_s")
            time.sleep(self.poll_s)

    def _wait_gone(self, name: str, progress: ProgressSink) -> None:
        deadline = time.monotonic() + self.options.deploy_timeout_s
        while self.describe(name) is not None:
            if time.monotonic() >= deadline:
                raise MldockError(f"endpoint {name!r} is still being deleted",
                                  hint="try again in a few minutes")
            time.sleep(self.poll_s)
        progress(f"endpoint {name} deleted")

    # --- deleting -----------------------------------------------------------------------------
    def _delete_endpoint(self, name: str) -> None:
        with translated(f"delete endpoint {name!r}", resource=f"endpoint {name!r}"):
            self.clients.sagemaker.delete_endpoint(EndpointName=name)

    def _delete_quietly(self, created: builtins.list[tuple[str, str]]) -> None:
        """Remove what a failed deploy created; a failure here must not hide the first one."""
        for kind, name in reversed(created):
            with contextlib.suppress(MldockError):
                self._delete(kind, name)

    def _delete(self, kind: str, name: str) -> None:
        call: Callable[..., Any]
        if kind == "config":
            call, key = self.clients.sagemaker.delete_endpoint_config, "EndpointConfigName"
        else:
            call, key = self.clients.sagemaker.delete_model, "ModelName"
        try:
            with translated(f"delete {kind} {name}"):
                call(**{key: name})
        except NotFoundError:
            pass

    def _owned(self, endpoint: str) -> builtins.list[tuple[str, str]]:  # list: a method here
        """Configs and models mldock created for ``endpoint``: named after it, tagged with it."""
        prefix = resource_prefix(endpoint)
        sagemaker = self.clients.sagemaker
        owned: builtins.list[tuple[str, str]] = []
        for kind, operation, key, arn in (
                ("config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn"),
                ("model", "list_models", "Models", "ModelArn")):
            with translated(f"list the {kind}s of endpoint {endpoint!r}"):
                pages = sagemaker.get_paginator(operation).paginate(NameContains=prefix[:-1])
                items = [item for page in pages for item in page.get(key, [])]
            for item in items:
                item_name = item.get("EndpointConfigName") or item.get("ModelName")
                if item_name.startswith(prefix) and \
                        self.tags(item[arn]).get(TAG_ENDPOINT) == endpoint:
                    owned.append((kind, str(item_name)))
        return owned

    def _delete_previous(self, endpoint: str, keep: str) -> None:
        """After an update: the configs and models of ``endpoint`` other than ``keep``."""
        for kind, name in self._owned(endpoint):
            if name != keep:
                self._delete(kind, name)

    def undeploy(self, name: str) -> None:
        if self.describe(name) is None:
            raise NotFoundError(f"no SageMaker endpoint named {name!r} in {self.clients.region}",
                                hint="see 'mldock --env aws deploy --list'")
        self._delete_endpoint(name)
        for kind, item in self._owned(name):
            self._delete(kind, item)

    # --- calling ------------------------------------------------------------------------------
    def predict(self, name: str, body: bytes, *, content_type: str, accept: str) -> Prediction:
        runtime = self.clients.runtime
        try:
            answer = runtime.invoke_endpoint(EndpointName=name, Body=body,
                                             ContentType=content_type, Accept=accept)
        except runtime.exceptions.ModelError as exc:  # the container answered 4xx/5xx
            response = exc.response
            return Prediction(str(response.get("OriginalMessage", "")).encode("utf-8"),
                              "application/json", int(response.get("OriginalStatusCode", 500)))
        except Exception as exc:
            if not is_aws_error(exc):
                raise
            if is_not_found(exc):
                raise NotFoundError(f"no SageMaker endpoint named {name!r} in"
                                    f" {self.clients.region}",
                                    hint="see 'mldock --env aws deploy --list'") from exc
            raise describe(exc, action=f"call endpoint {name!r}",
                           resource=f"endpoint {name!r}") from exc
        return Prediction(answer["Body"].read(), str(answer.get("ContentType", "")), 200)
