"""mldock's conformance kit, run on this plugin: the tests mldock runs on its own built-ins.

Run ``pip install -e .`` first: the registration tests look for the installed entry point, as
mldock does. A failing test's docstring says what usually causes it. Capability flags
(``supports_*``) come from the record's ``capabilities``: a test of a capability the record does not
declare skips with the reason. The kit is closed: a contract test cannot be overridden or skipped,
only declared a known failure with ``@mldock.testing.expected_failure(reason=...)``.
"""

from __future__ import annotations

import pytest
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, RegistrationContract

from {{ cookiecutter.package_name }} import plugin
from {{ cookiecutter.package_name }}.config import {{ cookiecutter.__options_name }}


class Test{{ cookiecutter.__class_name }}(ArtifactStoreContract):
    # the capability flags come from the record's capabilities; narrow one with a reason:
    # narrowed = {"delete": "why this backend cannot"}
    (record,) = plugin.mldock_storages()

    @pytest.fixture
    def store(self, tmp_path):
        """Built through the record's factory, as mldock builds it from ``[storage] uri``."""
        uri = f"{plugin.SCHEME}://{(tmp_path / 'store').as_posix()}"
        return self.record.build(FactoryContext(uri=uri, project_dir=tmp_path,
                                           options={{ cookiecutter.__options_name }}(fsync=False)))

    def corrupt(self, store, key):
        """Overwrite the stored bytes of ``key`` behind the store's back (same size)."""
        blob = store.blob_path(store.stat(key).sha256)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))


class TestRegistration(RegistrationContract):
    entry_point_name = "{{ cookiecutter.plugin_name }}"
    distribution = "{{ cookiecutter.distribution_name }}"
    expected = {"storage": ["{{ cookiecutter.plugin_name }}"]}
