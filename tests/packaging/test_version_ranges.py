"""Plugins declare a compatible range of mldock-core, and the versions agree across the workspace.

Below 1.0 a minor release of mldock-core may change the plugin API, so a plugin that said
``mldock-core>=0.1`` would install beside a core it cannot work with. Each plugin pins the minor
series it was built against (``>=X.Y,<X.(Y+1)``); these checks read the real pyproject files, so
bumping core without moving the plugins (or the template) fails here, not on a user's machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import mldock
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))
TEMPLATE = next((REPO / "cookiecutter" / "plugin").glob("*/pyproject.toml"))


def project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


def core_version() -> Version:
    return Version(project(REPO / "core" / "pyproject.toml")["version"])


def requirement(requirements: list[str], name: str) -> Requirement:
    found = [Requirement(r) for r in requirements if Requirement(r).name == name]
    assert len(found) == 1, f"{name} is required {len(found)} times in {requirements}"
    return found[0]


def assert_compatible_range(req: Requirement, core: Version) -> None:
    """The range holds this core's series and excludes the next minor (the next major at 1.0+)."""
    nxt = (Version(f"{core.major}.{core.minor + 1}") if core.major == 0
           else Version(f"{core.major + 1}.0"))
    assert req.specifier.contains(core), f"{req} excludes mldock-core {core}"
    assert not req.specifier.contains(nxt, prereleases=True), f"{req} allows mldock-core {nxt}"
    if core.minor > 0:
        older = Version(f"{core.major}.{core.minor - 1}.99")
        assert not req.specifier.contains(older), f"{req} allows mldock-core {older}"


def test_core_version_is_the_one_mldock_reports():
    assert Version(mldock.__version__) == core_version()


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugin_pins_a_compatible_core_range(plugin):
    meta = project(plugin / "pyproject.toml")
    assert_compatible_range(requirement(meta["dependencies"], "mldock-core"), core_version())
    assert Version(meta["version"]).release[:2] == core_version().release[:2], (
        f"{meta['name']} {meta['version']} is not in mldock-core's {core_version()} series")


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugin_test_extra_pulls_the_core_testing_kit(plugin):
    test = project(plugin / "pyproject.toml")["optional-dependencies"]["test"]
    assert requirement(test, "mldock-core").extras == {"testing"}


def test_sibling_plugins_are_pinned_to_the_same_series():
    names = {project(p / "pyproject.toml")["name"] for p in PLUGINS}
    for plugin in PLUGINS:
        for raw in project(plugin / "pyproject.toml")["dependencies"]:
            req = Requirement(raw)
            if req.name in names:
                assert_compatible_range(req, core_version())


def test_plugin_template_pins_the_same_range():
    # the template's project table is Jinja-templated in places, but its dependencies are plain
    text = TEMPLATE.read_text()
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.MULTILINE | re.DOTALL)
    assert deps is not None
    requirements = re.findall(r'^\s*"([^"]+)",?$', deps.group(1), flags=re.MULTILINE)
    assert_compatible_range(requirement(requirements, "mldock-core"), core_version())
