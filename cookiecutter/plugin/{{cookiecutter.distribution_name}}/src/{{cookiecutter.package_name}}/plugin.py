"""The module named by this package's entry point: it registers records, and does nothing else.

mldock imports this module whenever the CLI starts, so it imports only ``mldock`` and the standard
library. The store itself (:mod:`{{ cookiecutter.package_name }}.store`) and
its options model (:mod:`{{ cookiecutter.package_name }}.config`) are imported only when a command
needs them: by the factory below and through the ``"module:Class"`` string.
"""

from __future__ import annotations

from typing import Any

from mldock import FactoryContext, StorageRecord, hookimpl

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for

NAME = "{{ cookiecutter.plugin_name }}"
SCHEME = "{{ cookiecutter.uri_scheme }}"

EXAMPLE = """\
# Artifacts behind {{ cookiecutter.uri_scheme }}:// URIs. Needs: pip install {{ cookiecutter.distribution_name }}
[storage]
uri = "{{ cookiecutter.uri_scheme }}:///srv/mldock/{project}"   # or {{ cookiecutter.uri_scheme }}://relative/to/the/project

[storage.{{ cookiecutter.plugin_name }}]
fsync = true
# token = "env:{{ cookiecutter.plugin_name.upper().replace('-', '_') }}_TOKEN"   # a secret: the variable's name, never its value
"""
"""What ``mldock config example {{ cookiecutter.plugin_name }}`` prints; ``{project}`` is the project's name."""


def make_store(context: FactoryContext) -> Any:
    """Build the store for ``[storage] uri = "{{ cookiecutter.uri_scheme }}://…"`` (called on use)."""
    from {{ cookiecutter.package_name }}.store import {{ cookiecutter.__class_name }}

    return {{ cookiecutter.__class_name }}.from_uri(context.uri or f"{SCHEME}://.mldock/{NAME}",
                                  base_dir=context.project_dir, options=context.options)


@hookimpl
def mldock_storages() -> list[StorageRecord]:
    return [StorageRecord(
        name=NAME,
        summary="Artifacts behind {{ cookiecutter.uri_scheme }}:// URIs (content-addressed, atomic)",
        schemes=(SCHEME,),
        factory=make_store,
        config_model="{{ cookiecutter.package_name }}.config:{{ cookiecutter.__options_name }}",
        capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}),
        example=EXAMPLE,
    )]
