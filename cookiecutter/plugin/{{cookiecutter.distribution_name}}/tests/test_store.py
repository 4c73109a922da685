"""``store.py``: what the conformance kit cannot know about this store (URIs, options)."""

from __future__ import annotations

import pytest
from mldock.errors import UsageError
from mldock.records import FactoryContext

from {{ cookiecutter.package_name }} import plugin
from {{ cookiecutter.package_name }}.config import {{ cookiecutter.__options_name }}
from {{ cookiecutter.package_name }}.store import {{ cookiecutter.__class_name }}


def test_relative_uri_is_relative_to_the_project(tmp_path):
    (record,) = plugin.mldock_storages()
    store = record.build(FactoryContext(uri="{{ cookiecutter.uri_scheme }}://artifacts", project_dir=tmp_path))
    assert store.root == tmp_path / "artifacts"
    (tmp_path / "f.txt").write_text("x")
    ref = store.put_file(tmp_path / "f.txt", "a/f.txt")
    assert ref.uri == f"{{ cookiecutter.uri_scheme }}://{(tmp_path / 'artifacts').as_posix()}/a/f.txt"


def test_options_reach_the_store(tmp_path):
    (record,) = plugin.mldock_storages()
    store = record.build(FactoryContext(uri=f"{{ cookiecutter.uri_scheme }}://{tmp_path}",
                                        options={{ cookiecutter.__options_name }}(fsync=False)))
    assert store.fsync is False


def test_other_schemes_are_refused(tmp_path):
    with pytest.raises(UsageError):
        {{ cookiecutter.__class_name }}.from_uri(f"file://{tmp_path}")
