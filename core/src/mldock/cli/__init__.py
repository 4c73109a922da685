"""The ``mldock`` command line: one module per command group, imported lazily by :mod:`.main`."""

__all__: list[str] = []  # nothing re-exported: import the submodules
