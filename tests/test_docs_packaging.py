"""Every package's wheel carries the metadata people read on the package index.

A license file (the repository's Apache-2.0 text, copied into each package because a wheel can only
include files under its own project folder), an SPDX license expression, classifiers, project URLs
and a readme. The wheels are built for real with ``uv build`` and their ``METADATA`` read back.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"mldock-core": REPO / "core", **{f"mldock-{p.name}": p
                                             for p in sorted((REPO / "plugins").iterdir())
                                             if (p / "pyproject.toml").is_file()}}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_package_declares_license_classifiers_and_urls(name: str) -> None:
    folder = PACKAGES[name]
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == name
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert (folder / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()
    assert (folder / project["readme"]).is_file()
    assert "Programming Language :: Python :: 3 :: Only" in project["classifiers"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639
    package = next((folder / "src").iterdir())
    assert ("Typing :: Typed" in project["classifiers"]) == (package / "py.typed").is_file()
    assert {"Homepage", "Documentation", "Source", "Changelog", "Issues"} <= set(project["urls"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_built_wheel_metadata(name: str, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv builds the workspace's packages"
    result = subprocess.run([uv, "build", "--package", name, "--wheel", "-q", "-o", str(tmp_path)],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(meta_name).decode())
        license_name = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert b"Apache License" in archive.read(license_name)
    assert meta["Name"] == name
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert len(meta.get_all("Classifier") or []) >= 5
    assert {u.split(",")[0] for u in meta.get_all("Project-URL") or []} >= {"Homepage", "Source"}
    assert str(meta.get_payload()).strip()  # the readme is the long description
