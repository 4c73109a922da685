"""A small project on disk, loaded through the real config loader (no engine needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mldock.config import load_config
from mldock.host import PluginHost

CONFIG = """
[project]
name = "ident"
train = "ident.train:train"
predictor = "ident.predict:Predictor"
requirements = "requirements.txt"

[hyperparameters]
C = 1.0

[data]
train = "data/train.csv"

[env.other.storage]
uri = "other-artifacts"

[env.other.tracking]
uri = "sqlite:///other-runs.db"

[env.other.deploy]
endpoint = "elsewhere"

[env.other.data]
train = "elsewhere/train.csv"

[env.other.hyperparameters]
C = 2.0
"""

FILES = {
    "src/ident/__init__.py": "",
    "src/ident/train.py": "def train(ctx):\n    pass\n",
    "src/ident/predict.py": "class Predictor:\n    pass\n",
    "requirements.txt": "# deps\nnumpy==2.0.0\n",
    "README.md": "# ident\n",
    "notebook.ipynb": "{}\n",
    "tests/test_ident.py": "def test_x():\n    pass\n",
    "data/train.csv": "x,y\n1,2\n",
}


class Project:
    """A project folder and a way to load its config, as the CLI would."""

    def __init__(self, root: Path):
        self.root = root
        self.registry = PluginHost(use_entry_points=False).registry

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def append(self, relative: str, text: str) -> None:
        with (self.root / relative).open("a") as handle:
            handle.write(text)

    def config(self, env: str | None = ""):
        return load_config(path=self.root / "mldock.toml", env=env, registry=self.registry)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.delenv("MLDOCK_ENV", raising=False)
    root = tmp_path / "ident"
    root.mkdir()
    made = Project(root)
    made.write("mldock.toml", textwrap.dedent(CONFIG))
    for relative, text in FILES.items():
        made.write(relative, text)
    return made
