"""Training runs, target-independent: channels, lineage, metrics forwarding and the run itself."""

__all__: list[str] = []  # nothing re-exported: import the submodules
