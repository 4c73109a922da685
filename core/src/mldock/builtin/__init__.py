"""mldock's own plugins. Built-in behaviour is registered through the same hooks as third-party
plugins, so the plugin mechanism is exercised by every command (a lesson from pytest).

These modules import only mldock and the standard library: the backends they name are imported by
their factories when first used.
"""

__all__: list[str] = []  # nothing re-exported: import the submodules
