"""The local backends: Docker engine, image builds, the local deployer, store and run tracker."""

__all__: list[str] = []  # nothing re-exported: import the submodules
