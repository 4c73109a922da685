"""This plugin's own tests: what the conformance kit cannot know about it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from mldock.errors import UsageError
from mldock.records import FactoryContext, StorageRecord

from {{ cookiecutter.package_name }} import plugin
from {{ cookiecutter.package_name }}.config import Options
from {{ cookiecutter.package_name }}.{{ cookiecutter.concern }} import {{ cookiecutter.__class_name }}


def test_registers_one_storage_record():
    (record,) = plugin.mldock_storages()
    assert isinstance(record, StorageRecord)
    assert record.name == "{{ cookiecutter.plugin_name }}"
    assert record.schemes == ("{{ cookiecutter.uri_scheme }}",)
    assert record.load_config_model() is Options


def test_plugin_module_stays_light():
    """Importing the entry-point module must not import the store, its config model or pydantic."""
    code = textwrap.dedent("""
        import json, sys
        before = set(sys.modules)
        import {{ cookiecutter.package_name }}.plugin
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    heavy = {"{{ cookiecutter.package_name }}.{{ cookiecutter.concern }}",
             "{{ cookiecutter.package_name }}.config", "pydantic"}
    assert not heavy & set(loaded), sorted(heavy & set(loaded))


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
                                        options=Options(fsync=False)))
    assert store.fsync is False


def test_options_reject_typos_and_literal_secrets():
    with pytest.raises(ValueError, match="fsnyc"):
        Options.model_validate({"fsnyc": False})
    with pytest.raises(ValueError, match="environment variable"):
        Options.model_validate({"token": "s3cr3t"})
    assert Options.model_validate({"token": "env:MY_TOKEN"}).token.variable == "MY_TOKEN"


def test_other_schemes_are_refused(tmp_path):
    with pytest.raises(UsageError):
        {{ cookiecutter.__class_name }}.from_uri(f"file://{tmp_path}")
