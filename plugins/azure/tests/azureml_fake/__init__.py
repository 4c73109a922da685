"""A local fake of Azure Resource Manager / Azure ML for the mldock-azure tests.

Azure ML has no emulator. This package answers the REST calls the real azure-ai-ml client
(1.35) sends, on ``https://127.0.0.1:PORT`` (TLS: azure-core sends bearer tokens over HTTPS
only), checks every request body against the SDK's own generated REST models
(:mod:`.shapes`), keeps ARM documents in a small state store, and *runs* what it is asked to run
on the real Docker engine: command jobs (:mod:`.jobrun`) and online deployments
(:mod:`.online`), with data on Azurite.

Fixtures (``plugins/azure/tests/conftest.py``), the stable API for the azure suite:

* ``azureml_fake`` (session) → :class:`AzureMLFake`:
  ``subscription_id``, ``resource_group``, ``workspace`` (``mldock-fake-ws``), ``compute``
  (``cpu-cluster``, at most 4 nodes), ``cloud`` (the custom cloud's name for
  ``MLClient(..., cloud=)`` and ``[deploy.azureml] cloud``), ``url``, ``metadata_url``,
  ``ca_bundle``; ``environment()`` (metadata URL + CA variables), ``credential_environment()``
  (+ a managed identity for ``DefaultAzureCredential``), ``credential()``, ``ml_client()``;
  ``add_workspace(name)``, ``add_compute(name, workspace=, vm_size=, max_nodes=)``;
  ``fail_next(method, path_regex, status, code, message, times=1)``; ``requests`` /
  ``sent(method, path_regex)`` (what the SDK sent: ``.body`` text, ``.json`` parsed); ``crashes``;
  ``wait_for(check, timeout)``; ``blob`` (Azurite: ``account``, ``locate``, ``download``,
  ``upload``); the default datastore ``workspaceblobstore`` (container
  ``azureml-blobstore-<workspace>``).
* ACR stand-in: the workspace's registry ``mldockfakeacr`` has ``loginServer`` =
  ``registry_login_server`` (the fake: ``POST /oauth2/exchange``, ``/oauth2/token``); the
  exchange returns ``acr_refresh_token``, which a test registry started with
  ``start_registry((fake.acr_user, fake.acr_refresh_token))`` accepts.
* ``azureml_env``, ``ml_client``, ``azure_credential_env``, ``write_azure_env(project, ...)``:
  see the conftest.

Route modules are a table (:data:`.fake.ROUTE_MODULES`); a teammate adds routes with a module
whose ``register(router, fake)`` calls ``router.add(method, template, handler)``, listed there
or given as ``AzureMLFake(..., extra_routes=[module])``.

What the fake cannot check is listed in :data:`LIMITS`.
"""

from __future__ import annotations

from typing import Any

from .fake import AzureMLFake, FakeCredential

LIMITS = (
    "RBAC: every token is accepted; authorization failures come from fail_next only",
    "quotas beyond a cluster's maximum node count (fail_next for QuotaExceeded)",
    ("uploads by the SDK itself to a datastore (it builds https://<account>.blob.<suffix> URLs"
     " that cannot reach Azurite): assets and inputs must already be in blob storage"),
    "environments built from a Docker context or conda file (image environments only)",
    "pipeline, AutoML and Spark jobs; MPI is simulated with one container per rank",
    ("sweep jobs run their trials as child command jobs, sampled at random (no Bayesian search);"
     " termination policies are checked but not applied; objectives come from the children's"
     " mldock-metric log lines, not an MLflow run"),
    "networking between nodes: all nodes share the host network and MASTER_ADDR=127.0.0.1",
)


def env_block(fake: AzureMLFake, env: str = "azure", container: str | None = None,
              **options: Any) -> str:
    """An ``[env.<env>]`` block for ``mldock.toml``: the ``azureml`` deployer on the fake's
    workspace, and the ``az://`` store on Azurite (connection string from
    ``AZURE_STORAGE_CONNECTION_STRING``, which ``azure_credential_env`` sets)."""
    values: dict[str, Any] = {"subscription_id": fake.subscription_id,
                              "resource_group": fake.resource_group,
                              "workspace": fake.workspace, "compute": fake.compute,
                              "cloud": fake.cloud, **options}
    lines = [f"\n[env.{env}.deploy]", 'deployer = "azureml"', "",
             f"[env.{env}.deploy.azureml]"]
    lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    bucket = container or f"mldock-{fake.session_id[:12]}"
    lines += ["", f"[env.{env}.storage]", f'uri = "az://{bucket}/{{project}}"', "",
              f"[env.{env}.storage.azblob]", f'account = "{fake.blob.account}"',
              f'account_url = "{fake.blob.azurite.blob_endpoint}"',
              'connection_string = "env:AZURE_STORAGE_CONNECTION_STRING"', ""]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["LIMITS", "AzureMLFake", "FakeCredential", "env_block"]
