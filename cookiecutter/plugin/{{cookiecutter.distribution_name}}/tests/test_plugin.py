"""``plugin.py``: the record it registers, and that importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from mldock.records import StorageRecord

from {{ cookiecutter.package_name }} import plugin
from {{ cookiecutter.package_name }}.config import {{ cookiecutter.__options_name }}


def test_registers_one_storage_record():
    (record,) = plugin.mldock_storages()
    assert isinstance(record, StorageRecord)
    assert record.name == "{{ cookiecutter.plugin_name }}"
    assert record.schemes == ("{{ cookiecutter.uri_scheme }}",)
    assert record.load_config_model() is {{ cookiecutter.__options_name }}


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
    heavy = {"{{ cookiecutter.package_name }}.store",
             "{{ cookiecutter.package_name }}.config", "pydantic"}
    assert not heavy & set(loaded), sorted(heavy & set(loaded))
