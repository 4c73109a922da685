"""Image identity = what is in the image: the tag hashes exactly the inputs that reach it.

Every test edits a real project folder and loads its config through the real loader; the tag and
the context come from the same functions ``mldock build`` and ``mldock train`` call.
"""

from __future__ import annotations

import tarfile

import pytest
from mldock.errors import ConfigError
from mldock.imaging.context import DOCKERIGNORE, context_paths, write_context_tar
from mldock.imaging.dockerfile import DOCKERFILE_PATH
from mldock.imaging.request import build_request, image_for, plan_build


def _sent(request) -> set[str]:
    with write_context_tar(request) as handle, tarfile.open(fileobj=handle) as tar:
        return set(tar.getnames())


def test_env_overlay_of_storage_tracking_deploy_data_and_params_keeps_the_tag(project):
    base, other = project.config(), project.config(env="other")
    assert other.model.storage.uri == "other-artifacts"  # the overlay really applies
    assert image_for(base) == image_for(other)


@pytest.mark.parametrize("edit", [
    ("build.log", "Step 1/12 : FROM python\n"),
    ("README.md", "more words\n"),
    ("notebook.ipynb", '{"cells": []}\n'),
    ("tests/test_ident.py", "def test_y():\n    pass\n"),
    ("data/train.csv", "3,4\n"),
    ("outputs/model.bin", "0" * 4096),
    (".env", "TOKEN=x\n"),
])
def test_files_the_image_never_contains_keep_the_tag(project, edit):
    before = image_for(project.config())
    project.append(*edit) if (project.root / edit[0]).exists() else project.write(*edit)
    assert image_for(project.config()) == before


def test_unrelated_config_keys_keep_the_tag(project):
    before = image_for(project.config())
    project.append("mldock.toml", '\n[storage]\nuri = "/srv/artifacts/ident"\n'
                                  '\n[tracking]\nuri = "sqlite:///runs/all.db"\n'
                                  '\n[deploy]\nendpoint = "prod"\n')
    assert image_for(project.config()) == before


@pytest.mark.parametrize("edit", [
    ("src/ident/train.py", "# a code change\n"),
    ("src/ident/new_module.py", "X = 1\n"),
    ("requirements.txt", "pandas==2.2.0\n"),
])
def test_inputs_that_reach_the_image_change_the_tag(project, edit):
    before = image_for(project.config())
    project.append(*edit) if (project.root / edit[0]).exists() else project.write(*edit)
    assert image_for(project.config()) != before


@pytest.mark.parametrize("section", [
    '[build]\nbase_image = "python:3.12-slim"\n',
    '[build]\nsystem_packages = ["libgomp1"]\n',
    '[build]\npip_index_url = "https://pypi.example.com/simple"\n',
    '[build]\nplatform = "linux/arm64"\n',
])
def test_build_settings_change_the_tag(project, section):
    before = image_for(project.config())
    project.append("mldock.toml", "\n" + section)
    assert image_for(project.config()) != before


def test_only_what_the_dockerfile_copies_is_sent(project):
    project.write("outputs/big.bin", "0" * 100_000)
    project.write("build.log", "log\n")
    sent = _sent(build_request(project.config()))
    assert {"requirements.txt", "src", "src/ident/train.py", DOCKERFILE_PATH,
            ".mldock-runtime/bin/train", ".mldock-runtime/mldock/runtime/__init__.py"} <= sent
    outside = {name for name in sent if not name.startswith(
        ("src", "requirements.txt", ".mldock-runtime/", ".mldock-build/"))}
    assert outside == set(), outside


def test_secrets_inside_the_source_folder_stay_out_even_when_reincluded(project):
    project.write("src/ident/.env", "TOKEN=x\n")
    project.write("src/ident/deploy.pem", "-----BEGIN PRIVATE KEY-----\n")
    project.write("src/ident/.git/config", "[core]\n")
    project.write(".dockerignore", "!src/ident/.env\n!**/*.pem\n")
    request = build_request(project.config())
    sent = _sent(request)
    assert not {"src/ident/.env", "src/ident/deploy.pem", "src/ident/.git/config"} & sent
    before = request.tag
    project.append("src/ident/.env", "OTHER=y\n")
    assert image_for(project.config()) == before


def test_project_dockerignore_filters_the_source_folder(project):
    project.write("src/ident/scratch.ipynb", "{}\n")
    with_notebook = image_for(project.config())
    project.write(".dockerignore", "**/*.ipynb\n")
    request = build_request(project.config())
    assert "src/ident/scratch.ipynb" not in _sent(request)
    assert request.tag != with_notebook  # the image lost a file: another image


def test_a_negation_outside_the_copied_folders_sends_nothing_more(project):
    project.write(".dockerignore", "*.md\n!README.md\n")
    assert "README.md" not in _sent(build_request(project.config()))


def test_generated_dockerignore_gives_the_same_context_to_builders_that_apply_it(project):
    """A builder that only honours ``.dockerignore`` (kaniko, buildah) sends the same files."""
    project.write("outputs/x.bin", "1")
    project.write("src/ident/.env", "T=1\n")
    request = build_request(project.config())
    patterns = [line for line in request.extra_files[DOCKERIGNORE].decode().splitlines()
                if line and not line.startswith("#")]
    on_disk = {path for path in context_paths(project.root, patterns) if path != DOCKERIGNORE}
    sent = {name for name in _sent(request) if (project.root / name).exists()}
    assert on_disk == sent


def test_data_inside_the_source_folder_is_refused(project):
    project.write("src/ident/data/train.csv", "x\n")
    project.append("mldock.toml", '\n[env.baked.data]\ntrain = "src/ident/data/train.csv"\n')
    with pytest.raises(ConfigError) as caught:
        image_for(project.config(env="baked"))
    assert "data.train" in str(caught.value) and "copied into the image" in str(caught.value)


def test_ignored_data_inside_the_source_folder_is_fine(project):
    project.write("src/ident/data/train.csv", "x\n")
    project.write(".dockerignore", "src/ident/data\n")
    project.append("mldock.toml", '\n[env.ok.data]\ntrain = "src/ident/data/train.csv"\n')
    assert image_for(project.config(env="ok")) == image_for(project.config())


def test_user_dockerfile_counts_the_whole_context(project):
    project.write("Dockerfile", "FROM python:3.11-slim\nCOPY src/ /opt/program/src/\n")
    project.append("mldock.toml", '\n[build]\ndockerfile = "Dockerfile"\n')
    request = plan_build(project.config()).request
    assert request.include is None
    assert {"README.md", "tests/test_ident.py", "data/train.csv"} <= _sent(request)
    assert ".env" not in _sent(request)
    before = request.tag
    project.append("README.md", "edited\n")
    assert image_for(project.config()) != before  # docker build would see it: it counts
    after_readme = image_for(project.config())
    project.write(".dockerignore", "README.md\n")
    assert image_for(project.config()) != after_readme
    ignored = image_for(project.config())
    project.write(".env", "SECRET=1\n")  # mandatory excludes still apply
    assert image_for(project.config()) == ignored


def test_the_record_is_not_an_input(project):
    before = image_for(project.config())
    project.write(".mldock/build/last-inputs.json", "{}\n")
    assert image_for(project.config()) == before
