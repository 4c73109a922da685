"""Why an image is rebuilt: the last build's record and the changes named from it."""

from __future__ import annotations

import json

import pytest
from mldock.errors import NotFoundError
from mldock.imaging.explain import (
    RECORD_PATH,
    changes,
    mask,
    read_record,
    summary,
    write_record,
)
from mldock.imaging.inputs import InputManifest
from mldock.imaging.request import explain, missing_image_error, plan_build, require_image


def _record(project):
    plan = plan_build(project.config())
    write_record(project.root, plan.tag, plan.manifest)
    return plan


def test_record_round_trip_holds_hashes_not_contents(project):
    project.write("requirements.txt", "pkg @ https://user:s3cr3t@example.com/pkg.whl\n")
    plan = _record(project)
    record = read_record(project.root)
    assert record is not None and record.tag == plan.tag and record.manifest == plan.manifest
    text = (project.root / RECORD_PATH).read_text()
    assert "s3cr3t" not in text and "def train" not in text
    assert json.loads(text)["items"]["file:src/ident/train.py"].startswith("644 ")


def test_unreadable_or_missing_record_is_none(project):
    assert read_record(project.root) is None
    project.write(str(RECORD_PATH), "not json")
    assert read_record(project.root) is None
    project.write(str(RECORD_PATH), '{"tag": "x", "items": []}')
    assert read_record(project.root) is None


def test_nothing_changed(project):
    _record(project)
    project.append("README.md", "docs only\n")
    assert explain(project.config()) == []


def test_changed_added_removed_files(project):
    _record(project)
    project.append("src/ident/train.py", "# edit\n")
    project.write("src/ident/extra.py", "")
    (project.root / "src/ident/predict.py").unlink()
    assert sorted(explain(project.config())) == ["added: src/ident/extra.py",
                                                 "changed: src/ident/train.py",
                                                 "removed: src/ident/predict.py"]


def test_requirements_lines_added_and_removed_with_credentials_masked(project):
    _record(project)
    project.write("requirements.txt",
                  "# deps\npandas==2.2.0\nprivate @ https://user:tok3n@pypi.example.com/p.whl\n")
    lines = explain(project.config())
    assert "added: requirements.txt line 'pandas==2.2.0'" in lines
    assert "added: requirements.txt line 'private @ https://***@pypi.example.com/p.whl'" in lines
    assert "removed: requirements.txt line (1)" in lines  # numpy, known only by its hash
    assert not any("tok3n" in line for line in lines)


def test_reordered_requirements_say_the_file_changed(project):
    _record(project)
    project.write("requirements.txt", "numpy==2.0.0\n# deps\n")
    assert explain(project.config()) == ["changed: requirements.txt"]


def test_build_settings_are_named(project):
    _record(project)
    project.append("mldock.toml", '\n[build]\nbase_image = "python:3.12-slim"\n'
                                  'pip_index_url = "https://pypi.example.com/simple"\n')
    lines = explain(project.config())
    assert "changed: base image ('python:3.11-slim' → 'python:3.12-slim')" in lines
    assert "added: build arg PIP_INDEX_URL" in lines
    assert "changed: Dockerfile" not in lines  # explained by the settings above


def test_runtime_changes_are_grouped():
    old = InputManifest(items={"mldock": "1", "file:.mldock-runtime/mldock/runtime/a.py": "1",
                               "file:.mldock-runtime/mldock/runtime/b.py": "1"})
    new = InputManifest(items={"mldock": "1", "file:.mldock-runtime/mldock/runtime/a.py": "2",
                               "file:.mldock-runtime/mldock/runtime/b.py": "2"})
    assert changes(old, new) == ["changed: mldock runtime (2 files)"]


def test_summary_and_mask():
    assert summary([str(i) for i in range(25)], limit=3) == ["0", "1", "2", "… and 22 more"]
    assert mask("git+https://ghp_abc@github.com/x/y") == "git+https://***@github.com/x/y"


def test_stale_image_error_names_the_changed_input(project):
    plan = _record(project)
    project.append("src/ident/train.py", "# edit\n")
    error = missing_image_error("ident:000000000000", project.config())
    assert isinstance(error, NotFoundError) and error.exit_code == 4
    assert "src/ident/train.py changed since the last build, " + plan.tag in error.message
    assert "mldock build" in (error.hint or "")
    with pytest.raises(NotFoundError) as info:
        require_image(project.config(), lambda tag: False)
    assert "src/ident/train.py changed" in info.value.message


def test_stale_image_error_without_record_or_after_removal(project):
    tag = plan_build(project.config()).tag
    assert missing_image_error(tag, project.config()).message == (
        f"image {tag} is not built for the current code")
    _record(project)
    assert "removed from the engine" in missing_image_error(tag, project.config()).message
    assert require_image(project.config(), lambda t: t == tag) == tag
