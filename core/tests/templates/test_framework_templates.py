"""The ``pytorch`` and ``xgboost`` templates: what is particular to each.

What every project template must be (valid config, no leftover template syntax, .dockerignore,
README, the AWS block, the hook) is checked for them in ``test_project_templates.py``; their own
tests, which need torch or xgboost, run in their images (``tests/e2e/test_templates_*.py``).
"""

from __future__ import annotations

import ast
import csv
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest


def _requirements(project: Path) -> tuple[set[str], list[str]]:
    """(package names, pip option lines) of the project's requirements.txt."""
    lines = [line.split("#")[0].strip() for line in
             (project / "requirements.txt").read_text().splitlines()]
    options = [line for line in lines if line.startswith("-")]
    names = {re.split(r"[<>=!~\[ ;]", line)[0].lower() for line in lines
             if line and not line.startswith("-")}
    return names, options


def _imports(project: Path, package: str) -> set[str]:
    found: set[str] = set()
    for source in (project / "src" / package).glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {package, "__future__"}


@pytest.mark.parametrize(("template", "expected"), [
    ("pytorch", {"torch", "numpy"}), ("xgboost", {"xgboost-cpu", "numpy"})])
def test_requirements_build_on_plain_pypi(render, template, expected):
    """Nothing but package names from PyPI: the CPU index is the user's choice (README)."""
    project = render(template, "my-model")
    names, options = _requirements(project)
    assert names == expected
    assert options == []


@pytest.mark.parametrize(("template", "modules"), [
    ("pytorch", {"torch"}), ("xgboost", {"xgboost", "numpy"})])
def test_code_imports_only_its_framework(render, template, modules):
    project = render(template, "my-model")
    assert _imports(project, "my_model") == modules


def test_pytorch_readme_shows_the_cpu_index_and_several_hosts(render):
    project = render("pytorch", "net")
    readme = (project / "README.md").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in readme
    assert "mldock train --instances 2" in readme
    assert "mldock --env aws train --instances 2" in readme
    assert "+cpu" in readme  # the pin that makes pip take the CPU build


def test_pytorch_uses_the_cluster_facts_and_saves_only_on_the_primary(render):
    """The training code reads rank, world size and master from ctx (no launcher variables)."""
    project = render("pytorch", "net")
    code = (project / "src" / "net" / "train.py").read_text()
    setup = (project / "src" / "net" / "distributed.py").read_text()
    for fact in ("ctx.rank", "ctx.world_size", "ctx.master_addr", "ctx.master_port",
                 "ctx.local_rank"):
        assert fact in setup, fact
    assert '"nccl" if device.type == "cuda" else "gloo"' in setup
    assert "if ctx.is_primary:" in code and "ctx.checkpoint_dir" in code
    assert "os.environ" not in code + setup
    config = tomllib.loads((project / "mldock.toml").read_text())
    assert config["data"]["train"] == "data/iris.csv"
    assert config["env"]["dev"]["hyperparameters"]["epochs"] < config["hyperparameters"]["epochs"]


def test_pytorch_samples_fit_the_iris_features(render):
    project = render("pytorch", "net")
    instances = json.loads((project / "sample.json").read_text())["instances"]
    rows = [[float(v) for v in line.split(",")]
            for line in (project / "sample.csv").read_text().splitlines()]
    assert rows == instances and all(len(row) == 4 for row in rows)


def test_xgboost_data_is_a_binary_table(render):
    """1,000 rows of 5 numeric features and a 0/1 target, with both classes well represented."""
    project = render("xgboost", "churn")
    with (project / "data" / "churn.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert header[-1] == "churned" and len(header) == 6 and len(body) == 1000
    assert {row[-1] for row in body} == {"0", "1"}
    share = sum(row[-1] == "1" for row in body) / len(body)
    assert 0.1 < share < 0.5
    assert all(float(value) == float(value) for row in body for value in row[:-1])
    config = tomllib.loads((project / "mldock.toml").read_text())
    assert config["hyperparameters"]["target"] == "churned"
    assert config["hyperparameters"]["early_stopping_rounds"] > 0
    instances = json.loads((project / "sample.json").read_text())["instances"]
    assert all(len(row) == len(header) - 1 for row in instances)


def test_xgboost_readme_says_why_xgboost(render):
    readme = (render("xgboost", "churn") / "README.md").read_text()
    assert "## Why XGBoost" in readme and "LightGBM" in readme
