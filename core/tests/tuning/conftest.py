"""A project with a ``[tune]`` section, and the loader with the registry mldock uses."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from mldock.config.loader import ResolvedConfig, load_config
from mldock.host.loader import PluginHost, PluginInfo
from mldock.interfaces import TuningSupport
from mldock.markers import hookimpl
from mldock.records import DeployerRecord
from pydantic import BaseModel, ConfigDict

BASE = """
[project]
name = "tuned"
train = "m:train"
predictor = "m:Predictor"

[hyperparameters]
epochs = 3
"""

TUNE = """
[tune]
objective = "acc"
direction = "maximize"
max_trials = 6
parallel_trials = 2

[tune.space]
lr = { type = "float", low = 1e-4, high = 0.1, scale = "log" }
depth = { type = "int", low = 2, high = 8, step = 2 }
opt = ["adam", "sgd"]
"""


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[[str], Path]:
    """``write_project(extra_toml)``: mldock.toml of BASE + extra in a fresh folder."""
    def write(extra: str) -> Path:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "mldock.toml").write_text(textwrap.dedent(BASE) + textwrap.dedent(extra))
        return tmp_path

    return write


class VxOptions(BaseModel):
    """Platform-only keys of ``[tune.vx]``."""

    model_config = ConfigDict(extra="forbid")
    warm_start: bool = False


VX_TUNING = TuningSupport(strategies=frozenset({"bayesian", "random", "grid"}),
                          early_stopping=frozenset({"median"}), max_parallel_trials=2, steps=True,
                          options_model=VxOptions)


class TestDeployers:
    """A plugin with a deployer that tunes (``vx``) and one that does not (``untuned``)."""

    @hookimpl
    def mldock_deployers(self) -> list[DeployerRecord]:
        return [DeployerRecord(name="vx", summary="a tuning platform", factory=lambda c: None,
                               capabilities=frozenset({"training", "tuning"}), tuning=VX_TUNING),
                DeployerRecord(name="untuned", summary="no tuner", factory=lambda c: None,
                               capabilities=frozenset({"training"}))]


@pytest.fixture(scope="session")
def registry():
    """Core's built-ins plus :class:`TestDeployers`."""
    host = PluginHost(use_entry_points=False, quiet=True)
    host.pm.register(TestDeployers(), name="test-deployers")
    host.plugins["test-deployers"] = PluginInfo(name="test-deployers", distribution="test-dist",
                                                version="0", module=__name__, builtin=False)
    return host.registry


@pytest.fixture
def load(write_project, registry) -> Callable[..., ResolvedConfig]:
    """``load(extra_toml, env=None)``: the config as a command loads it (backends checked)."""
    def run(extra: str, env: str | None = None) -> ResolvedConfig:
        folder = write_project(extra)
        return load_config(folder, env=env or "", registry=registry)

    return run
