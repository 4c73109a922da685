"""Workspaces and what hangs directly off them: computes, datastores, the workspace's registry.

A workspace carries what clients look up before anything else: ``discoveryUrl`` (service
endpoints for run history), ``containerRegistry`` (the ARM id of its ACR, whose ``loginServer``
the fake also answers), ``storageAccount``. The default blob datastore ``workspaceblobstore``
points at a container in Azurite (``fake.blob``); its account key comes from ``listSecrets`` as
the service hands it out.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import shapes
from .routing import (
    PROVIDER,
    RESOURCE_GROUP,
    WORKSPACE,
    ArmError,
    Request,
    Response,
    Router,
    bad_request,
)
from .state import system_data

REGISTRY_PROVIDER = "Microsoft.ContainerRegistry"
DEFAULT_DATASTORE = "workspaceblobstore"


def workspace_id(request: Request, fake: Any) -> str:
    """The ARM id of the request's workspace; ARM's 404s when its group or itself is unknown."""
    params = request.params
    group = f"/subscriptions/{params['subscription']}/resourceGroups/{params['resource_group']}"
    if params["subscription"].lower() != fake.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound",
                       f"The subscription '{params['subscription']}' could not be found.")
    if params["resource_group"].lower() != fake.resource_group.lower():
        raise ArmError(404, "ResourceGroupNotFound",
                       f"Resource group '{params['resource_group']}' could not be found.")
    resource_id = f"{group}/providers/{PROVIDER}/workspaces/{params['workspace']}"
    fake.store.require(resource_id, f"{PROVIDER}/workspaces")
    return resource_id


def workspace_document(fake: Any, name: str) -> dict[str, Any]:
    group = f"/subscriptions/{fake.subscription_id}/resourceGroups/{fake.resource_group}"
    return {
        "id": f"{group}/providers/{PROVIDER}/workspaces/{name}", "name": name,
        "type": f"{PROVIDER}/workspaces", "location": fake.location, "kind": "Default",
        "tags": {}, "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()),
                                 "tenantId": fake.tenant_id},
        "sku": {"name": "Basic", "tier": "Basic"}, "systemData": system_data(),
        "properties": {
            "workspaceId": str(uuid.uuid4()), "friendlyName": name,
            "provisioningState": "Succeeded", "publicNetworkAccess": "Enabled",
            "discoveryUrl": f"{fake.url}/discovery",
            "mlFlowTrackingUri": f"azureml://{fake.location}.api.fake/mlflow/v1.0{group}",
            "containerRegistry": f"{group}/providers/{REGISTRY_PROVIDER}/registries/"
                                 f"{fake.registry_name}",
            "storageAccount": f"{group}/providers/Microsoft.Storage/storageAccounts/"
                              f"{fake.blob.account}",
            "keyVault": f"{group}/providers/Microsoft.KeyVault/vaults/mldockfakekv",
            "applicationInsights": f"{group}/providers/Microsoft.insights/components/fakeai",
        },
    }


def compute_document(workspace: str, name: str, vm_size: str, max_nodes: int) -> dict[str, Any]:
    return {
        "id": f"{workspace}/computes/{name}", "name": name,
        "type": f"{PROVIDER}/workspaces/computes",
        "location": "local", "systemData": system_data(),
        "properties": {
            "computeType": "AmlCompute", "provisioningState": "Succeeded",
            "computeLocation": "local", "disableLocalAuth": True,
            "properties": {"vmSize": vm_size, "vmPriority": "Dedicated", "osType": "Linux",
                           "scaleSettings": {"minNodeCount": 0, "maxNodeCount": max_nodes},
                           "currentNodeCount": 0, "targetNodeCount": 0,
                           "allocationState": "Steady"}},
    }


def datastore_document(workspace: str, name: str, account: str, container: str) -> dict[str, Any]:
    return {
        "id": f"{workspace}/datastores/{name}", "name": name,
        "type": f"{PROVIDER}/workspaces/datastores", "systemData": system_data(),
        "properties": {"datastoreType": "AzureBlob", "accountName": account,
                       "containerName": container, "endpoint": "core.windows.net",
                       "protocol": "https", "isDefault": name == DEFAULT_DATASTORE,
                       "credentials": {"credentialsType": "AccountKey"},
                       "serviceDataAccessAuthIdentity": "None", "tags": {}},
    }


def register(router: Router, fake: Any) -> None:
    def get_workspace(request: Request) -> Response:
        return Response(200, fake.store.get(workspace_id(request, fake)))

    def list_workspaces(request: Request) -> Response:
        group = RESOURCE_GROUP.format(subscription=fake.subscription_id,
                                      resource_group=fake.resource_group)
        return Response(200, {"value": fake.store.children(f"{group}/providers/{PROVIDER}",
                                                           "workspaces")})

    def discovery(request: Request) -> Response:
        base = fake.url
        return Response(200, dict.fromkeys((
            "api", "catalog", "experimentation", "history", "modelmanagement", "pipelines",
            "studio", "gallery"), base))

    def registry(request: Request) -> Response:
        name = request.params["registry"]
        if name.lower() != fake.registry_name.lower():
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{REGISTRY_PROVIDER}/registries/{name}' was not found.")
        return Response(200, {"id": request.path, "name": name,
                              "type": f"{REGISTRY_PROVIDER}/registries",
                              "location": fake.location, "sku": {"name": "Basic"},
                              "properties": {"loginServer": fake.registry_login_server,
                                             "adminUserEnabled": False,
                                             "provisioningState": "Succeeded"}})

    router.add("GET", WORKSPACE, get_workspace)
    router.add("GET", RESOURCE_GROUP + f"/providers/{PROVIDER}/workspaces", list_workspaces)
    router.add("GET", "/discovery", discovery)
    router.add("GET", RESOURCE_GROUP + f"/providers/{REGISTRY_PROVIDER}/registries/{{registry}}",
               registry)
    _register_computes(router, fake)
    _register_datastores(router, fake)


def _register_computes(router: Router, fake: Any) -> None:
    def get(request: Request) -> Response:
        workspace = workspace_id(request, fake)
        return Response(200, fake.store.require(f"{workspace}/computes/{request.params['name']}",
                                                f"{PROVIDER}/workspaces/computes"))

    def listing(request: Request) -> Response:
        return Response(200, {"value": fake.store.children(workspace_id(request, fake),
                                                           "computes")})

    router.add("GET", WORKSPACE + "/computes", listing)
    router.add("GET", WORKSPACE + "/computes/{name}", get)


def _register_datastores(router: Router, fake: Any) -> None:
    def get(request: Request) -> Response:
        workspace = workspace_id(request, fake)
        return Response(200, fake.store.require(f"{workspace}/datastores/{request.params['name']}",
                                                f"{PROVIDER}/workspaces/datastores"))

    def listing(request: Request) -> Response:
        found = fake.store.children(workspace_id(request, fake), "datastores")
        if request.query.get("isDefault", "").lower() == "true":
            found = [d for d in found if d["properties"].get("isDefault")]
        return Response(200, {"value": found})

    def secrets(request: Request) -> Response:
        get(request)
        return Response(200, {"secretsType": "AccountKey", "key": fake.blob.account_key})

    def put(request: Request) -> Response:
        workspace = workspace_id(request, fake)
        body = request.json()
        shapes.check("Datastore", body)
        if body["properties"].get("datastoreType") != "AzureBlob":
            raise bad_request("The fake keeps Azure Blob datastores only.")
        name = request.params["name"]
        document = {**body, "id": f"{workspace}/datastores/{name}", "name": name,
                    "type": f"{PROVIDER}/workspaces/datastores", "systemData": system_data()}
        return Response(200, fake.store.put(document))

    router.add("GET", WORKSPACE + "/datastores", listing)
    router.add("GET", WORKSPACE + "/datastores/{name}", get)
    router.add("PUT", WORKSPACE + "/datastores/{name}", put)
    router.add("POST", WORKSPACE + "/datastores/{name}/listSecrets", secrets)
