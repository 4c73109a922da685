"""Valid configs: discovery, environments, defaults, secrets by indirection, plugin options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mldock import EnvSecret, PluginConfig
from mldock.config import find_config_file, load_config
from mldock.config.loader import deep_merge
from mldock.errors import ConfigError, MldockError
from mldock.host.loader import PluginHost
from mldock.records import DeployerRecord
from pydantic import Field

BASE = """
[project]
name = "iris"
train = "iris.train:train"
predictor = "iris.predict:Predictor"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLDOCK_ENV", raising=False)
    monkeypatch.delenv("MLDOCK_CONFIG", raising=False)
    return tmp_path


def test_defaults_are_the_local_backends(project):
    (project / "mldock.toml").write_text(BASE)
    config = load_config(registry=PluginHost(use_entry_points=False).registry)
    model = config.model
    assert (model.build.builder, model.deploy.deployer) == ("docker", "local")
    assert config.storage_uri == (project / ".mldock/artifacts").resolve().as_uri()
    assert config.tracking_uri == f"sqlite:///{(project / '.mldock/runs.db').resolve()}"
    assert model.build.base_image == "python:3.11-slim"


def test_found_from_a_subfolder_and_in_pyproject(project):
    (project / "pyproject.toml").write_text("[tool.mldock]\n" + BASE.replace("[project]",
                                                                            "[tool.mldock.project]"))
    sub = project / "src" / "pkg"
    sub.mkdir(parents=True)
    assert find_config_file(sub) == project / "pyproject.toml"
    assert load_config(sub).model.project.name == "iris"


def test_mldock_toml_wins_over_pyproject(project):
    (project / "pyproject.toml").write_text("[tool.mldock.project]\nname='other'\n")
    (project / "mldock.toml").write_text(BASE)
    assert find_config_file() == project / "mldock.toml"


def test_no_config_is_a_clear_error(project):
    with pytest.raises(MldockError, match="mldock init"):
        load_config()


def test_env_overlay_merges_tables_and_replaces_values(project):
    (project / "mldock.toml").write_text(BASE + """
[hyperparameters]
n_estimators = 100
max_depth = 5

[env.big.hyperparameters]
n_estimators = 500

[env.big.storage]
uri = "/tmp/big-artifacts"
""")
    base = load_config(env="")
    big = load_config(env="big")
    assert base.model.hyperparameters == {"n_estimators": 100, "max_depth": 5}
    assert big.model.hyperparameters == {"n_estimators": 500, "max_depth": 5}
    assert big.storage_uri == "file:///tmp/big-artifacts"
    assert big.environments == ("big",) and big.env == "big"


def test_env_chosen_by_environment_variable(project, monkeypatch):
    (project / "mldock.toml").write_text(BASE + "[env.prod.deploy]\nendpoint = 'iris-prod'\n")
    monkeypatch.setenv("MLDOCK_ENV", "prod")
    assert load_config().model.deploy.endpoint == "iris-prod"
    assert load_config(env="").model.deploy.endpoint is None


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    merged = deep_merge(base, {"a": {"b": 2}})
    assert merged == {"a": {"b": 2, "c": [1]}} and base == {"a": {"b": 1, "c": [1]}}


class CloudOptions(PluginConfig):
    region: str
    instance_count: int = Field(default=1, ge=1)
    api_key: EnvSecret | None = None


@pytest.fixture
def cloud_registry(tmp_path):
    """A host with an extra in-process plugin whose deployer has a config model."""
    host = PluginHost(use_entry_points=False)

    class Plugin:
        from mldock import hookimpl

        @staticmethod
        @hookimpl
        def mldock_deployers():
            return [DeployerRecord(name="cloud", summary="test cloud", factory=lambda ctx: ctx,
                                   config_model=CloudOptions)]

    host.pm.register(Plugin, name="cloud-test")
    host.plugins.setdefault("cloud-test", host.plugins["local-deploy"])
    return host.registry


def test_plugin_section_validated_by_its_model(project, cloud_registry, monkeypatch):
    (project / "mldock.toml").write_text(BASE + """
[deploy]
deployer = "cloud"
[deploy.cloud]
region = "eu-west-1"
instance_count = 2
api_key = "env:CLOUD_KEY"
""")
    config = load_config(registry=cloud_registry)
    options = config.options("deployer", "cloud")
    assert (options.region, options.instance_count) == ("eu-west-1", 2)
    monkeypatch.setenv("CLOUD_KEY", "s3cr3t")
    assert options.api_key.value() == "s3cr3t"
    assert "s3cr3t" not in repr(options)
    monkeypatch.delenv("CLOUD_KEY")
    with pytest.raises(MldockError, match="CLOUD_KEY is not set"):
        options.api_key.value()


def test_selected_backend_with_required_options_missing(project, cloud_registry):
    (project / "mldock.toml").write_text(BASE + "[deploy]\ndeployer = 'cloud'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(registry=cloud_registry)
    assert caught.value.key == "deploy.cloud.region"
    assert "required key is missing" in str(caught.value)


@pytest.mark.parametrize(("body", "key", "fragment"), [
    ("region = 'x'\ninstance_count = 0", "deploy.cloud.instance_count",
     "greater than or equal to 1"),
    ("region = 'x'\nzone = 'a'", "deploy.cloud.zone", "unknown key"),
    ("region = 'x'\napi_key = { env = '1BAD' }", "deploy.cloud.api_key",
     "invalid environment variable"),
])
def test_plugin_section_errors(project, cloud_registry, body, key, fragment):
    (project / "mldock.toml").write_text(
        BASE + f"[deploy]\ndeployer='cloud'\n[deploy.cloud]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(registry=cloud_registry)
    assert caught.value.key == key and fragment in str(caught.value)


def test_explicit_config_path_env(project, monkeypatch):
    other = project / "elsewhere"
    other.mkdir()
    (other / "custom.toml").write_text(BASE)
    monkeypatch.setenv("MLDOCK_CONFIG", str(other / "custom.toml"))
    config = load_config()
    assert config.project_dir == other.resolve()
    assert Path(os.environ["MLDOCK_CONFIG"]).name == "custom.toml"


def test_missing_key_in_an_environment_table_is_reported_there(project, cloud_registry):
    (project / "mldock.toml").write_text(BASE + """
[env.prod.deploy]
deployer = "cloud"
[env.prod.deploy.cloud]
instance_count = 2
""")
    with pytest.raises(ConfigError) as caught:
        load_config(registry=cloud_registry, env="prod")
    assert caught.value.key == "env.prod.deploy.cloud.region"
