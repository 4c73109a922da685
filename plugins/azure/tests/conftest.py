"""Real parts for the mldock-azure tests, per session.

* ``azurite`` (the harness's): Blob Storage on loopback.
* ``azureml_fake``: Azure Resource Manager + Azure ML on ``https://127.0.0.1:PORT``
  (:mod:`azureml_fake`), driven by the real azure-ai-ml client, running jobs and deployments as
  containers on the real engine. Session-scoped and never reset: tests use unique names.
* ``azureml_env``: the test process set up to reach the fake (``ARM_CLOUD_METADATA_URL``, its CA
  bundle); ``ml_client``: an ``MLClient`` on the fake's workspace.
* ``azure_credential_env``: the environment of an ``mldock`` subprocess whose
  ``DefaultAzureCredential`` signs in at the fake (managed identity), with the developer's own
  Azure variables removed; ``write_azure_env(project, ...)`` appends an ``[env.azure]`` block
  pointing at the fake to a project's ``mldock.toml``.

Every test that used the fake fails if a request crashed the fake itself (a bug of the fake
must not hide behind an SDK retry).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fake is a package of this test folder

from azureml_fake import AzureMLFake, env_block

SESSION_ID = uuid.uuid4().hex
HIDDEN_ENV_PREFIXES = ("AZURE_", "ARM_", "MSI_", "IDENTITY_", "AZUREML_")


@pytest.fixture(scope="session")
def azureml_fake(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureMLFake]:
    """The session's fake (see :mod:`azureml_fake`); its containers are removed at the end."""
    fake = AzureMLFake(tmp_path_factory.mktemp("azureml-fake"), azurite, SESSION_ID).start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _sdk_cloud_choice_undone() -> Iterator[None]:
    """azure-ai-ml records the cloud an ``MLClient`` names in this process's environment
    (``AZUREML_CURRENT_CLOUD``) and never takes it back; left set, every later Azure SDK process
    a test starts (the platform SDK tests) would look for the fake's cloud."""
    before = os.environ.get("AZUREML_CURRENT_CLOUD")
    yield
    if before is None:
        os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    else:
        os.environ["AZUREML_CURRENT_CLOUD"] = before


@pytest.fixture(autouse=True)
def _fake_did_not_crash(request: pytest.FixtureRequest) -> Iterator[None]:
    if "azureml_fake" not in request.fixturenames:
        yield
        return
    fake: AzureMLFake = request.getfixturevalue("azureml_fake")
    before = len(fake.crashes)
    yield
    crashes = fake.crashes[before:]
    assert not crashes, "the Azure ML fake crashed:\n" + "\n".join(crashes)


@pytest.fixture
def azureml_env(azureml_fake: AzureMLFake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process set up to reach the fake: its cloud metadata URL and CA bundle; the
    developer's Azure variables removed. Returns what was set."""
    for name in list(os.environ):
        if name.startswith(HIDDEN_ENV_PREFIXES):
            monkeypatch.delenv(name)
    values = azureml_fake.environment()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def ml_client(azureml_fake: AzureMLFake, azureml_env: dict[str, str]) -> Any:
    """An ``MLClient`` on the fake's workspace, signed in with the fake's tokens."""
    return azureml_fake.ml_client()


@pytest.fixture
def azure_credential_env(azureml_fake: AzureMLFake, tmp_path: Path) -> dict[str, str]:
    """The whole environment for an ``mldock`` subprocess on ``--env azure``: this process's
    variables without any Azure ones, plus the fake's metadata URL, CA bundle, a managed
    identity ``DefaultAzureCredential`` uses, Azurite's connection string as
    ``AZURE_STORAGE_CONNECTION_STRING``, and an empty ``HOME`` (no ``~/.azure`` login)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_ENV_PREFIXES)}
    env.update(azureml_fake.credential_environment())
    env["AZURE_STORAGE_CONNECTION_STRING"] = azureml_fake.blob.azurite.connection_string
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


@pytest.fixture
def write_azure_env(azureml_fake: AzureMLFake) -> Callable[..., str]:
    """``write_azure_env(project_folder, env="azure", container=..., **azureml_options)``
    appends an ``[env.<env>]`` block (deployer ``azureml`` on the fake, storage ``az://`` on
    Azurite) to ``mldock.toml`` and returns the text it added."""
    def write(project: Path, env: str = "azure", container: str | None = None,
              **options: Any) -> str:
        text = env_block(azureml_fake, env=env, container=container, **options)
        with open(project / "mldock.toml", "a", encoding="utf-8") as toml:
            toml.write(text)
        return text

    return write
