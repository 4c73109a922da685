"""Azure ML managed online endpoints: create, update blue/green, find, call, delete.

The image runs as a *custom container* (an ``Environment`` with ``image`` and
``inference_config``): Azure ML probes the runtime's ``/v2/health/live`` and
``/v2/health/ready`` and forwards scoring calls to ``/score`` on port 8080, the routes and port
the runtime answers when it finds ``AZUREML_*`` variables (``docs/container.md``). The model is
a registered model (:mod:`mldock_azure.modeldata`) that Azure ML mounts under
``AZUREML_MODEL_DIR``; the runtime finds its root by ``mldock-model.json``.

A deploy to an existing endpoint is blue/green, as Azure ML's own guidance has it: a new
deployment is created beside the serving one with no traffic, traffic moves to it only once Azure
ML reports it healthy (its readiness probe answered), and only then is the old one deleted. If the
new deployment fails, it is deleted and the old one keeps serving. Endpoints use key
authentication; ``predict`` reads the key just before the call and never shows it.

Everything carries mldock's tags (:mod:`mldock_azure.names`): ``list`` shows only endpoints
tagged ``mldock-endpoint``, a deploy refuses to take over an endpoint mldock did not create, and
``undeploy`` deletes only mldock's deployments, and the endpoint only when nothing else is left
on it. Registered models stay (they are the lineage of what was served).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from mldock.errors import BackendUnavailableError, MldockError, NotFoundError
from mldock.interfaces import Deployment, DeployRequest, Prediction, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import translated
from mldock_azure.modeldata import RegisteredModel
from mldock_azure.names import (
    TAG_ENDPOINT,
    TAG_RUN,
    check_endpoint_name,
    deployment_name,
    tags_for,
)

TAG_IMAGE = "mldock-image"
PORT = 8080
LIVENESS, READINESS, SCORING = "/v2/health/live", "/v2/health/ready", "/score"
BUSY = {"Creating", "Updating", "Deleting"}
SCORING_TIMEOUT_S = 190  # Azure ML's gateway gives up on a request after 180 s at most
MODEL_ERROR = 424  # the gateway's answer when the container answered an error status


def inference_config() -> dict[str, Any]:
    """The custom container's routes and port, as the runtime serves them under Azure ML."""
    return {"liveness_route": {"port": PORT, "path": LIVENESS},
            "readiness_route": {"port": PORT, "path": READINESS},
            "scoring_route": {"port": PORT, "path": SCORING}}


def endpoint_entity(name: str, *, tags: dict[str, str],
                    traffic: dict[str, int] | None = None) -> Any:
    """The ``ManagedOnlineEndpoint`` mldock creates: key authentication, mldock's tags."""
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    return ManagedOnlineEndpoint(name=name, auth_mode="key", tags=tags, traffic=traffic,
                                 description=f"mldock endpoint of project"
                                             f" {tags.get('mldock-project', '')}")


def deployment_entity(name: str, *, endpoint: str, image: str, model: RegisteredModel,
                      instance_type: str, instance_count: int, environment: dict[str, str],
                      tags: dict[str, str]) -> Any:
    """A ``ManagedOnlineDeployment`` running ``image`` unchanged as a custom container."""
    from azure.ai.ml.entities import Environment, ManagedOnlineDeployment

    container = Environment(image=image, inference_config=inference_config(),
                            description="the image mldock built, run as a custom container")
    return ManagedOnlineDeployment(
        name=name, endpoint_name=endpoint, model=model.reference, environment=container,
        instance_type=instance_type, instance_count=instance_count,
        environment_variables=environment, tags=tags)


def state_text(state: Any) -> str:
    """A provisioning state as Azure spells it (``Succeeded``): the SDK hands out an enum whose
    ``str()`` is its Python name."""
    return str(getattr(state, "value", state) or "unknown")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """azure-ai-ml's pollers print a dot per poll to stdout; mldock's stdout carries only
    results (a URL, JSON), so the dots are dropped while an operation runs."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class Endpoints:
    """The endpoint half of the Azure ML deployer.

    Args:
        clients: the workspace's clients (:class:`~mldock_azure.workspace.AzureMLClients`).
        options: ``[deploy.azureml]``.
        project: the project's name (tags).
        poll_s: seconds between two looks at a long-running operation.
    """

    def __init__(self, clients: Any, options: AzureMLOptions, *, project: str,
                 poll_s: float = 15.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    @property
    def ml(self) -> Any:
        return self.clients.ml

    # --- reading ------------------------------------------------------------------------------
    def endpoint(self, name: str) -> Any | None:
        """The ``ManagedOnlineEndpoint`` named ``name``, or None when there is none."""
        try:
            with translated(f"read endpoint {name!r}", resource=f"endpoint {name!r}"):
                return self.ml.online_endpoints.get(name=name)
        except NotFoundError:
            return None

    def deployments(self, name: str) -> builtins.list[Any]:  # list: a method here
        with translated(f"list the deployments of endpoint {name!r}"):
            return builtins.list(self.ml.online_deployments.list(endpoint_name=name))

    def as_deployment(self, endpoint: Any) -> Deployment:
        tags = dict(endpoint.tags or {})
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items() if int(v)}
        state = state_text(endpoint.provisioning_state)
        details = {"provisioning_state": state, "traffic": traffic,
                   "deployment": max(traffic, key=lambda k: traffic[k]) if traffic else None,
                   "auth_mode": endpoint.auth_mode, "workspace": self.options.workspace,
                   "resource_group": self.options.resource_group}
        ready = state == "Succeeded" and bool(traffic)
        status = "ready" if ready else ("no traffic" if state == "Succeeded" else state.lower())
        return Deployment(name=str(endpoint.name), url=str(endpoint.scoring_uri or ""),
                          status=status, run_id=tags.get(TAG_RUN), image=tags.get(TAG_IMAGE),
                          details=details)

    def require(self, name: str) -> Any:
        found = self.endpoint(name)
        if found is None:
            raise NotFoundError(f"no Azure ML online endpoint named {name!r} in workspace"
                                f" {self.options.workspace!r}",
                                hint="deploy one with 'mldock --env azure deploy'; list them"
                                     " with 'mldock --env azure deploy --list'")
        return found

    def get(self, name: str) -> Deployment:
        return self.as_deployment(self.require(name))

    def list(self) -> builtins.list[Deployment]:
        """Endpoints mldock created (tagged ``mldock-endpoint``), sorted by name."""
        with translated(f"list the online endpoints of workspace {self.options.workspace!r}"):
            found = builtins.list(self.ml.online_endpoints.list())
        mine = [self.as_deployment(e) for e in found if TAG_ENDPOINT in (e.tags or {})]
        return sorted(mine, key=lambda d: d.name)

    # --- deploying ----------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *, image: str, model: RegisteredModel,
               progress: ProgressSink = null_progress) -> Deployment:
        """Create endpoint ``request.name`` with one deployment, or add a new deployment to it
        and move the traffic once that one is healthy (blue/green)."""
        name = check_endpoint_name(request.name)
        project = str(request.options.get("project") or self.project)
        tags = tags_for(project, "serving", run_id=request.run_id, endpoint=name,
                        extra=self.options.tags)
        tags[TAG_IMAGE] = image[:256]
        found = self._usable(name, progress)
        previous = [] if found is None else self.deployments(name)
        if found is None:
            progress(f"creating endpoint {name} (key authentication)")
            self._finish(lambda: self.ml.online_endpoints.begin_create_or_update(
                endpoint_entity(name, tags=tags)), action=f"create endpoint {name!r}",
                resource=f"endpoint {name!r}", progress=progress)
        new = deployment_name()
        self._create_deployment(request, name=name, new=new, image=image, model=model,
                                tags=tags, serving=bool(previous), progress=progress)
        progress(f"moving all traffic of endpoint {name} to deployment {new}")
        endpoint = self.require(name)
        endpoint.traffic = {new: 100}
        endpoint.tags = {**dict(endpoint.tags or {}), **tags}
        self._finish(lambda: self.ml.online_endpoints.begin_create_or_update(endpoint),
                     action=f"move the traffic of endpoint {name!r} to {new}",
                     resource=f"endpoint {name!r}", progress=progress)
        for old in previous:
            if TAG_ENDPOINT in (old.tags or {}):
                progress(f"deleting the previous deployment {old.name}")
                self._delete_deployment(name, str(old.name), progress)
            else:
                progress(f"deployment {old.name} was not created by mldock: left in place"
                         " (with no traffic)")
        return self.as_deployment(self.require(name))

    def _usable(self, name: str, progress: ProgressSink) -> Any | None:
        """The existing endpoint if a deploy may use it; None when it must be created."""
        found = self.endpoint(name)
        if found is None:
            return None
        if TAG_ENDPOINT not in (found.tags or {}):
            raise MldockError(f"endpoint {name!r} exists in workspace {self.options.workspace!r}"
                              " but was not created by mldock: it is left alone",
                              hint="deploy under another name (mldock deploy --name, or"
                                   " [deploy] endpoint)")
        state = state_text(found.provisioning_state)
        if state in BUSY:
            raise MldockError(f"endpoint {name!r} is {state}: it cannot be updated now",
                              hint="wait until it has Succeeded, then deploy again")
        if state == "Failed":
            progress(f"endpoint {name} failed earlier; deleting it to create it again")
            self._finish(lambda: self.ml.online_endpoints.begin_delete(name=name),
                         action=f"delete endpoint {name!r}", resource=f"endpoint {name!r}",
                         progress=progress)
            return None
        return found

    def _create_deployment(self, request: DeployRequest, *, name: str, new: str, image: str,
                           model: RegisteredModel, tags: dict[str, str], serving: bool,
                           progress: ProgressSink) -> None:
        instance_type = str(request.options.get("instance_type")
                            or self.options.serve_instance_type)
        count = int(request.options.get("instance_count") or self.options.serve_instance_count)
        environment = {**self.options.environment, ENV_RUN_ID: request.run_id,
                       **dict(request.environment)}
        entity = deployment_entity(new, endpoint=name, image=image, model=model,
                                   instance_type=instance_type, instance_count=count,
                                   environment=environment, tags=tags)
        progress(f"creating deployment {new} of endpoint {name}: {count} x {instance_type},"
                 f" model {model.name}:{model.version}"
                 + ("; the current deployment serves until it is healthy" if serving else ""))
        try:
            self._finish(lambda: self.ml.online_deployments.begin_create_or_update(entity),
                         action=f"create deployment {new} of endpoint {name!r}",
                         resource=f"deployment {new}", progress=progress)
        except MldockError as exc:
            self._delete_quietly(name, new)
            still = ("the previous deployment still serves" if serving else
                     "the endpoint stays, empty: 'mldock undeploy' removes it")
            raise MldockError(f"deployment {new} of endpoint {name!r} failed: {exc.message}",
                              hint=f"{still}; the container's log: az ml online-deployment"
                                   f" get-logs -n {new} -e {name}",
                              exit_code=exc.exit_code) from exc
        except BaseException:
            self._delete_quietly(name, new)
            raise

    def _finish(self, start: Callable[[], Any], *, action: str, resource: str,
                progress: ProgressSink) -> Any:
        """Start a long-running operation and wait for it, at most ``deploy_timeout_s``; its
        failure (refused at once, or later) is one line naming what failed."""
        timeout = self.options.deploy_timeout_s
        deadline = time.monotonic() + timeout
        shown = None
        # the poller's thread re-raises the operation's failure from wait(), not only result()
        with quiet(), translated(action, resource=resource):
            poller = start()
            while not poller.done():
                status = poller.status()
                if status != shown:
                    progress(f"{resource}: {status}")
                    shown = status
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MldockError(f"{resource} is still {status} after {timeout} s",
                                      hint="it may still finish: check 'mldock --env azure"
                                           " deploy --list', or raise deploy_timeout_s")
                poller.wait(timeout=min(self.poll_s, left))
            return poller.result()

    # --- deleting -----------------------------------------------------------------------------
    def _delete_deployment(self, endpoint: str, name: str, progress: ProgressSink) -> None:
        with contextlib.suppress(NotFoundError):
            self._finish(lambda: self.ml.online_deployments.begin_delete(
                name=name, endpoint_name=endpoint),
                         action=f"delete deployment {name} of endpoint {endpoint!r}",
                         resource=f"deployment {name}", progress=progress)

    def _delete_quietly(self, endpoint: str, name: str) -> None:
        """Remove a deployment a failed deploy created; a failure here must not hide the first
        one."""
        with contextlib.suppress(MldockError):
            self._delete_deployment(endpoint, name, null_progress)

    def undeploy(self, name: str, progress: ProgressSink = null_progress) -> None:
        """Delete mldock's deployments of ``name``, then the endpoint unless another
        deployment (not mldock's) remains on it."""
        endpoint = self.require(name)
        if TAG_ENDPOINT not in (endpoint.tags or {}):
            raise MldockError(f"endpoint {name!r} was not created by mldock: it is left alone",
                              hint="delete it with 'az ml online-endpoint delete' if you mean to")
        deployments = self.deployments(name)
        foreign = [str(d.name) for d in deployments if TAG_ENDPOINT not in (d.tags or {})]
        if not foreign:
            self._finish(lambda: self.ml.online_endpoints.begin_delete(name=name),
                         action=f"delete endpoint {name!r}", resource=f"endpoint {name!r}",
                         progress=progress)
            return
        endpoint.traffic = {d: int((endpoint.traffic or {}).get(d, 0)) for d in foreign}
        self._finish(lambda: self.ml.online_endpoints.begin_create_or_update(endpoint),
                     action=f"move the traffic of endpoint {name!r} off mldock's deployments",
                     resource=f"endpoint {name!r}", progress=progress)
        for deployment in deployments:
            if TAG_ENDPOINT in (deployment.tags or {}):
                self._delete_deployment(name, str(deployment.name), progress)
        progress(f"endpoint {name} kept: deployments {', '.join(foreign)} were not created by"
                 " mldock" + ("" if any(endpoint.traffic.values()) else
                              "; they had no traffic, so the endpoint now serves none (mldock"
                              " does not route traffic to deployments it did not create)"))

    # --- calling ------------------------------------------------------------------------------
    def predict(self, name: str, body: bytes, *, content_type: str, accept: str) -> Prediction:
        """POST ``body`` to the endpoint's scoring URI with its primary key."""
        endpoint = self.require(name)
        if not endpoint.scoring_uri:
            raise MldockError(f"endpoint {name!r} has no scoring URI yet"
                              f" ({state_text(endpoint.provisioning_state)})",
                              hint="deploy it first")
        with translated(f"read the keys of endpoint {name!r}", resource=f"endpoint {name!r}"):
            key = self.ml.online_endpoints.get_keys(name=name).primary_key
        url = str(endpoint.scoring_uri)
        if not url.startswith(("https://", "http://")):
            raise MldockError(f"endpoint {name!r} has an unexpected scoring URI {url!r}")
        call = urllib.request.Request(  # noqa: S310 (an http(s) URL, checked just above)
            url, data=body, method="POST",
            headers={"Content-Type": content_type, "Accept": accept,
                     "Authorization": f"Bearer {key}"})
        try:
            # S310: the scheme is checked above; certificates come from SSL_CERT_FILE / system
            with urllib.request.urlopen(call, timeout=SCORING_TIMEOUT_S) as answer:  # noqa: S310
                return Prediction(answer.read(), answer.headers.get("Content-Type", ""),
                                  answer.status)
        except urllib.error.HTTPError as exc:
            return self._error_answer(name, exc)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendUnavailableError(f"cannot call endpoint {name!r}: {reason}",
                                          hint="check the network; 'mldock --env azure deploy"
                                               " --list' shows its state") from exc

    @staticmethod
    def _error_answer(name: str, exc: urllib.error.HTTPError) -> Prediction:
        """The container's error answer; the gateway's own refusals are mldock errors."""
        text = exc.read()
        if exc.code in (401, 403):
            raise MldockError(f"endpoint {name!r} refused the key ({exc.code})",
                              hint="the keys may have been regenerated: retry; or check the"
                                   " endpoint's auth mode")
        status = exc.code
        original = exc.headers.get("ms-azureml-model-error-statuscode")
        if status == MODEL_ERROR and original and original.isdigit():
            status = int(original)  # the container's own status behind the gateway's 424
        return Prediction(text, exc.headers.get("Content-Type", ""), status)
