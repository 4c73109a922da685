"""Options of ``[storage.{{ cookiecutter.plugin_name }}]`` in a project's ``mldock.toml``.

Unknown keys are errors (:class:`mldock.PluginConfig` forbids them), so a typo never passes
silently. Anything secret is declared as :data:`mldock.EnvSecret`: the file then holds only the
name of an environment variable (``token = "env:{{ cookiecutter.plugin_name.upper().replace('-', '_') }}_TOKEN"``), never the value.
"""

from __future__ import annotations

from mldock import EnvSecret, PluginConfig


class {{ cookiecutter.__options_name }}(PluginConfig):
    """``[storage.{{ cookiecutter.plugin_name }}]``.

    Attributes:
        fsync: flush every file to disk before it becomes visible (durable, slower).
        token: credentials for a remote service, by environment variable; unused by the folder
            example, here to show the pattern.
    """

    fsync: bool = True
    token: EnvSecret | None = None
