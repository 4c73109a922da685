"""The fake itself, driven by the real azure-ai-ml client."""

from __future__ import annotations


def test_workspace_get(ml_client, azureml_fake):
    workspace = ml_client.workspaces.get(azureml_fake.workspace)
    assert workspace.name == azureml_fake.workspace
    assert workspace.container_registry.endswith("/registries/mldockfakeacr")
    assert workspace.discovery_url == f"{azureml_fake.url}/discovery"
