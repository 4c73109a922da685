"""The "which package provides X" table matches what mldock's own plugin packages register.

Each installed first-party distribution's entry points are loaded for real and their registration
hooks called: every name or scheme the table credits to a package must be registered by it, and
every name or scheme it registers must be in the table (so a typo in a config gets the right
``pip install`` hint). All five first-party packages are installed in the workspace, so every
entry is checked.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from mldock.concerns import CONCERNS
from mldock.host.suggest import FIRST_PARTY, unknown_name_message

FIRST_PARTY_PACKAGES = {"mldock-s3", "mldock-aws", "mldock-mlflow", "mldock-gcp", "mldock-azure"}
"""Every first-party plugin package: all are installed in the workspace, so all are checked."""


def _registered_by_distribution() -> dict[str, set[str]]:
    """distribution -> backend names and URI schemes its entry points register."""
    out: dict[str, set[str]] = {}
    for ep in entry_points(group="mldock"):
        if ep.dist is None or not ep.dist.name.startswith("mldock-"):
            continue
        module = ep.load()
        found = out.setdefault(ep.dist.name, set())
        for row in CONCERNS.values():
            if row.section is None:
                continue  # commands and templates are not looked up by config
            hook = getattr(module, row.hook, None)
            for record in (hook() if hook else []):
                found.add(record.name)
                found.update(getattr(record, "schemes", ()))
    return out


REGISTERED = _registered_by_distribution()


def test_the_first_party_packages_are_installed_here():
    """Without them this file would check nothing."""
    assert set(REGISTERED) >= FIRST_PARTY_PACKAGES


@pytest.mark.parametrize(("key", "package"), sorted(FIRST_PARTY.items()))
def test_every_suggestion_is_really_registered_by_its_package(key, package):
    assert package in REGISTERED, f"{package} is not installed, yet the table names it"
    assert key in REGISTERED[package], f"{package} does not register {key!r}"


@pytest.mark.parametrize("package", sorted(FIRST_PARTY_PACKAGES))
def test_everything_a_package_registers_gets_its_suggestion(package):
    missing = sorted(key for key in REGISTERED[package] if FIRST_PARTY.get(key) != package)
    assert not missing, f"add to FIRST_PARTY: {', '.join(f'{k!r}: {package!r}' for k in missing)}"


def test_the_hint_names_the_package():
    message, hint = unknown_name_message("deployer", "sagemaker", ["local"])
    assert message == "unknown deployer 'sagemaker'; known: local"
    assert hint == "'sagemaker' is provided by mldock-aws: pip install mldock-aws"
