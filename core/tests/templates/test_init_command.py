"""``mldock init``: names, template resolution, existing folders, listing, any cookiecutter
template."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest
from mldock.cli.init_cmd import looks_like_location, project_names, resolve_template


def _toml(project: Path) -> dict:
    return tomllib.loads((project / "mldock.toml").read_text())


def test_no_input_creates_the_project_and_prints_next_steps(mldock, tmp_path):
    result = mldock("init", "iris", "--template", "sklearn", "--no-input", cwd=tmp_path)
    assert result.code == 0, result.err
    project = tmp_path / "iris"
    config = _toml(project)["project"]
    assert (config["name"], config["train"], config["predictor"]) == (
        "iris", "iris.train:train", "iris.predict:Predictor")
    assert (project / "src" / "iris" / "train.py").is_file()
    assert "from template 'sklearn'" in result.out
    steps = [line.strip() for line in result.out.splitlines() if line.startswith("  ")]
    assert steps[:3] == ["cd iris", "mldock build", "mldock train"]
    assert "mldock predict --data sample.json" in steps


def test_default_template_is_sklearn(mldock, tmp_path):
    assert mldock("init", "flowers", "--no-input", cwd=tmp_path).code == 0
    assert (tmp_path / "flowers" / "data" / "iris.csv").is_file()
    assert "scikit-learn" in (tmp_path / "flowers" / "requirements.txt").read_text()


def test_name_becomes_slug_and_package(mldock, tmp_path):
    result = mldock("init", "Churn Model", "--template", "minimal", "--no-input", cwd=tmp_path)
    assert result.code == 0, result.err
    project = tmp_path / "churn-model"
    config = _toml(project)["project"]
    assert config["name"] == "churn-model"
    assert config["train"] == "churn_model.train:train"
    assert (project / "src" / "churn_model" / "predict.py").is_file()
    assert (project / "README.md").read_text().startswith("# Churn Model\n")


def test_output_dir_and_json_result(mldock, tmp_path):
    result = mldock("init", "iris", "--template", "minimal", "--no-input", "--json",
                    "--output-dir", "work/projects", cwd=tmp_path)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert Path(data["project_dir"]) == (tmp_path / "work" / "projects" / "iris").resolve()
    assert data["template"] == "minimal"
    assert data["next_steps"][0] == "cd work/projects/iris"


def test_existing_folder_is_an_error_unless_force(mldock, tmp_path):
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "notes.txt").write_text("mine")
    result = mldock("init", "iris", "--template", "sklearn", "--no-input", cwd=tmp_path)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: iris already exists")
    assert "--force" in lines[0]
    assert sorted(p.name for p in (tmp_path / "iris").iterdir()) == ["notes.txt"]

    result = mldock("init", "iris", "--template", "sklearn", "--no-input", "--force", cwd=tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / "iris" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "iris" / "mldock.toml").is_file()


def test_existing_folder_of_any_template_is_an_error(mldock, tmp_path, templates):
    """Templates whose folder is not named by project_slug: cookiecutter's own check, one line."""
    (tmp_path / "mldock-mystore").mkdir()
    result = mldock("init", "mystore", "--template", str(templates / "plugin"), "--no-input",
                    cwd=tmp_path)
    assert result.code == 1
    assert result.err.count("\n") == 1 and "already exists" in result.err
    assert "Error:" not in result.err


def test_unknown_template_lists_known_names_and_suggests(mldock, tmp_path):
    result = mldock("init", "iris", "--template", "sklern", "--no-input", cwd=tmp_path)
    assert result.code == 2
    line = result.err.strip()
    assert "\n" not in line
    assert "unknown template 'sklern'" in line
    assert "known: minimal, plugin, pytorch, sklearn, xgboost" in line
    assert "did you mean 'sklearn'?" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "problem"), [
    ("3d", "not a valid Python package name"),
    ("class", "not a valid Python package name"),
    ("json", "would shadow"),
    ("mldock", "would shadow"),
    ("bad$name", "invalid project name"),
    ("_private", "invalid project name"),
    ("a/b", "give a name, not a path"),
])
def test_invalid_names_are_usage_errors(mldock, tmp_path, name, problem):
    result = mldock("init", name, "--template", "minimal", "--no-input", cwd=tmp_path)
    assert result.code == 2
    assert problem in result.err and result.err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_missing_name_is_a_usage_error(mldock, tmp_path):
    result = mldock("init", cwd=tmp_path)
    assert result.code == 2 and "missing project NAME" in result.err


def test_project_names():
    assert project_names("iris") == ("iris", "iris")
    assert project_names("My Model-2") == ("my-model-2", "my_model_2")
    assert project_names("fraud_detector") == ("fraud_detector", "fraud_detector")


def test_list_json(mldock, tmp_path):
    result = mldock("init", "--list", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert {"sklearn", "minimal"} <= set(rows)
    for name in ("sklearn", "minimal"):
        row = rows[name]
        assert row["distribution"] == "mldock-core" and row["plugin"] == "core-templates"
        assert row["summary"]
        assert (Path(row["location"]) / "cookiecutter.json").is_file()


def test_list_table(mldock, tmp_path, monkeypatch):
    monkeypatch.setenv("MLDOCK_PLAIN", "1")
    result = mldock("init", "--list", cwd=tmp_path)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].split("\t") == ["name", "summary", "provided by"]
    assert {line.split("\t")[0] for line in lines[1:]} >= {"sklearn", "minimal"}
    assert "--template PATH" in result.err


def _tiny_template(root: Path) -> Path:
    """A cookiecutter template that knows nothing about mldock."""
    (root / "{{cookiecutter.project_name}}").mkdir(parents=True)
    (root / "cookiecutter.json").write_text(json.dumps({"project_name": "x", "greeting": "hi"}))
    (root / "{{cookiecutter.project_name}}" / "hello.txt").write_text(
        "{{cookiecutter.greeting}} {{cookiecutter.project_name}}\n")
    return root


def test_local_path_template(mldock, tmp_path):
    template = _tiny_template(tmp_path / "templates" / "tiny")
    result = mldock("init", "demo", "--template", str(template), "--no-input", cwd=tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / "demo" / "hello.txt").read_text() == "hi demo\n"
    steps = [line.strip() for line in result.out.splitlines() if line.startswith("  ")]
    assert steps == ["cd demo"]  # not an mldock project: no build/train steps


def test_folder_in_current_directory_counts_as_a_path(mldock, tmp_path):
    _tiny_template(tmp_path / "tiny")
    result = mldock("init", "demo", "--template", "tiny", "--no-input", cwd=tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / "demo" / "hello.txt").read_text() == "hi demo\n"


def test_missing_path_template(mldock, tmp_path):
    result = mldock("init", "demo", "--template", "./nowhere/tpl", "--no-input", cwd=tmp_path)
    assert result.code == 2
    assert "template './nowhere/tpl' not found" in result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("value", [
    "gh:someone/cookiecutter-ml", "https://github.com/someone/template.git",
    "git@github.com:someone/template.git", "templates.zip", "../templates/mine",
])
def test_locations_go_to_cookiecutter_unchanged(value):
    assert looks_like_location(value)
    template = resolve_template(value)
    assert (template.location, template.registered) == (value, False)


def test_registered_names_resolve_through_the_registry():
    from mldock.host import get_host

    template = resolve_template("minimal")
    assert template.registered and template.label == "minimal"
    assert template.location == get_host().registry.get("template", "minimal").location
    assert (Path(template.location) / "cookiecutter.json").is_file()


def test_builtin_templates_need_no_network(mldock, tmp_path, monkeypatch, cookiecutter_home):
    def refuse(*args, **kwargs):
        raise AssertionError("mldock init opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for template in ("sklearn", "minimal"):
        result = mldock("init", f"offline-{template}", "--template", template, "--no-input",
                        cwd=tmp_path)
        assert result.code == 0, result.err
    assert not (cookiecutter_home / "clones").exists()  # nothing was cloned or downloaded


def test_console_script_end_to_end(tmp_path, run, mldock_cmd):
    """As a user types it: the installed ``mldock`` creates a project whose config validates."""
    created = run([*mldock_cmd, "init", "iris", "--no-input"], cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "cd iris" in created.stdout
    validated = run([*mldock_cmd, "config", "validate"], cwd=tmp_path / "iris")
    assert validated.returncode == 0, validated.stderr
    assert "valid" in validated.stdout
