"""mldock's conformance kit, run on this plugin: the tests mldock runs on its own built-ins.

Run ``pip install -e .`` first: the registration tests look for the installed entry point, as
mldock does. A failing test's docstring says what usually causes it. Capability flags
(``supports_*``) turn off tests for features the backend does not have; every such test then
skips with the reason.
"""

from __future__ import annotations

import json

import pytest
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, RegistrationContract

from {{ cookiecutter.package_name }} import plugin
from {{ cookiecutter.package_name }}.config import Options


class Test{{ cookiecutter.__class_name }}(ArtifactStoreContract):
    backend_name = "{{ cookiecutter.plugin_name }}"
    supports_delete = True
    supports_list = True
    supports_concurrency = True
    supports_content_addressing = True  # store.stats.bytes_sent counts what is really sent
    supports_modes = True

    @pytest.fixture
    def store(self, tmp_path):
        """Built through the record's factory, as mldock builds it from ``[storage] uri``."""
        (record,) = plugin.mldock_storages()
        uri = f"{plugin.SCHEME}://{(tmp_path / 'store').as_posix()}"
        return record.build(FactoryContext(uri=uri, project_dir=tmp_path,
                                           options=Options(fsync=False)))

    def corrupt(self, store, key):
        """Overwrite the stored bytes of ``key`` behind the store's back."""
        ref = json.loads(store._ref_path(key).read_text())
        store._blob_path(ref["sha256"]).write_bytes(b"tampered")


class TestRegistration(RegistrationContract):
    entry_point_name = "{{ cookiecutter.plugin_name }}"
    distribution = "{{ cookiecutter.distribution_name }}"
    expected = {"storage": ["{{ cookiecutter.plugin_name }}"]}
