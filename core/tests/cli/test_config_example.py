"""``mldock config example NAME`` prints the block a plugin's record carries (real CLI, real
installed plugins); ``mldock init`` writes the installed deployers' blocks as commented
environments."""

from __future__ import annotations

import tomllib

import pytest
from mldock.concerns import BACKEND_CONCERNS
from mldock.host import get_host
from mldock.host.examples import PROJECT_PLACEHOLDER, commented, environments_block
from mldock.host.loader import PluginHost


def test_prints_a_plugins_example(cli, tmp_path):
    result = cli("config", "example", "sagemaker", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# deployer 'sagemaker' from mldock-aws\n")
    data = tomllib.loads(result.stdout)
    assert data["env"]["aws"]["deploy"]["deployer"] == "sagemaker"
    assert data["env"]["aws"]["storage"]["uri"] == "s3://<bucket>/<project>"


def test_unknown_name_is_one_line_with_a_suggestion(cli, tmp_path):
    result = cli("config", "example", "sagemakr", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") <= 2 and "Traceback" not in result.stderr
    assert "unknown backend 'sagemakr'" in result.stderr and "did you mean 'sagemaker'" in (
        result.stderr)


def test_a_backend_without_example_says_so(cli, tmp_path):
    result = cli("config", "example", "docker", cwd=tmp_path)
    assert result.returncode == 2
    assert "'docker' has no example config block" in result.stderr


def _with_examples():
    registry = get_host().registry
    return [(concern, name, reg) for concern in BACKEND_CONCERNS
            for name, reg in registry.records(concern).items() if reg.record.example]


def test_first_party_plugins_carry_examples():
    assert {name for _, name, _ in _with_examples()} >= {"sagemaker", "s3", "mlflow"}


@pytest.mark.parametrize(("concern", "name", "reg"), _with_examples(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_example_is_toml_and_its_options_exist(concern, name, reg):
    """Each example parses, selects its own backend, and names only options its model has."""
    from mldock.concerns import CONCERNS

    data = tomllib.loads(reg.record.example.replace(PROJECT_PLACEHOLDER, "demo"))
    tables = [data, *data.get("env", {}).values()]
    section = CONCERNS[concern].section
    found = [t[section] for t in tables if section in t]
    assert found, f"{name}'s example has no [{section}] table"
    model = reg.record.load_config_model()
    for table in found:
        options = table.get(name, {})
        if model is not None:
            assert set(options) <= set(model.model_fields), set(options) - set(model.model_fields)


def test_init_block_uses_the_installed_deployers_and_the_project_name():
    block = environments_block(get_host().registry, "iris-x")
    assert "# [env.aws.deploy]" in block and "# uri = \"s3://<bucket>/iris-x\"" in block
    assert all(line.startswith("#") for line in block.splitlines())
    core_only = PluginHost(use_entry_points=False, quiet=True).registry
    assert "mldock config example NAME" in environments_block(core_only, "iris-x")
    assert "sagemaker" not in environments_block(core_only, "iris-x")


def test_commented_keeps_comments_and_marks_blank_lines():
    assert commented("# note\n\n[a]\nb = 1\n") == "# note\n#\n# [a]\n# b = 1\n"
