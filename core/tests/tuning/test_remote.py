"""``mldock --env X tune`` in core: the request a deployer gets, and what core records of it.

The deployer is :class:`fake_tuner.FakeTuner` (its "service" holds the job as JSON); the tracker
and the store are the real local ones; the builder says every image exists (no engine needed).
"""

from __future__ import annotations

import textwrap

import pytest
from mldock.config.loader import load_config
from mldock.errors import UsageError
from mldock.host.loader import PluginHost, PluginInfo
from mldock.interfaces import Builder, BuildResult, RunStatus
from mldock.markers import hookimpl
from mldock.records import BuilderRecord, DeployerRecord
from mldock.runtime.names import ENV_OBJECTIVE
from mldock.session import Session
from mldock.tuning import runs as tr
from mldock.tuning.local import TuneArgs
from mldock.tuning.remote import run_remote_tune

from . import fake_tuner
from .fake_tuner import SUPPORT, FakeTuner, score

CONFIG = """
[project]
name = "remote-tuned"
train = "m:train"
predictor = "m:Predictor"

[hyperparameters]
epochs = 3

[tune]
objective = "acc"
direction = "maximize"
max_trials = 5
parallel_trials = 2
seed = 11

[tune.space]
lr = { type = "float", low = 1e-4, high = 0.1, scale = "log" }
depth = { type = "int", low = 2, high = 8 }
optimizer = ["adam", "sgd"]

[env.cloud.deploy]
deployer = "faketune"

[env.cloud.build]
builder = "always"
"""


class Always(Builder):
    def build(self, request, *, progress=None) -> BuildResult:
        raise NotImplementedError

    def exists(self, tag: str) -> bool:
        return True


class Plugin:
    @hookimpl
    def mldock_deployers(self):
        return [DeployerRecord(name="faketune", summary="fake tuner",
                               factory=lambda c: FakeTuner(),
                               capabilities=frozenset({"training", "tuning", "registry"}),
                               tuning=SUPPORT),
                DeployerRecord(name="notune", summary="no tuner", factory=lambda c: FakeTuner(),
                               capabilities=frozenset({"training", "registry"}))]

    @hookimpl
    def mldock_builders(self):
        return [BuilderRecord(name="always", summary="every image exists",
                              factory=lambda c: Always())]


@pytest.fixture
def session(tmp_path):
    host = PluginHost(use_entry_points=False, quiet=True)
    host.pm.register(Plugin(), name="fake-tuning")
    host.plugins["fake-tuning"] = PluginInfo(name="fake-tuning", distribution="test", version="0",
                                             module=__name__, builtin=False)
    (tmp_path / "src").mkdir()
    (tmp_path / "mldock.toml").write_text(textwrap.dedent(CONFIG))
    opened = Session(load_config(tmp_path, env="cloud", registry=host.registry), host.registry)
    yield opened
    opened.close()


def test_request_trials_and_best_model(session):
    """The deployer gets the checked spec (neutral space, fixed values, the objective's
    variable); each trial becomes a child run with its job id; the best trial's
    platform model becomes the tune's."""
    lines: list[str] = []
    outcome = run_remote_tune(session, TuneArgs(overrides=("epochs=4",)), lines.append)
    assert outcome.status is RunStatus.FINISHED
    job = fake_tuner.read_back(max(fake_tuner.SERVICE, key=lambda k: int(k.split("-")[1])))
    assert (job.objective, job.direction, job.max_trials, job.parallel_trials) == \
        ("acc", "maximize", 5, 2)
    assert job.space["lr"] == {"type": "float", "low": 0.0001, "high": 0.1, "scale": "log"}
    assert job.hyperparameters == {"epochs": "4"}
    assert job.environment == {ENV_OBJECTIVE: "acc"}

    tracker = session.tracker
    tune = tracker.get_run(outcome.tune_id)
    assert tune.status is RunStatus.FINISHED and tr.is_tune(tune)
    trials = tr.trials_of(session, tune.id)
    assert sorted(tr.trial_number(t) for t in trials) == list(range(5))
    assert all(t.lineage.job_id.startswith("job-") and t.lineage.platform == "faketune"
               for t in trials)
    best = max(trials, key=lambda t: t.metrics["acc"])
    assert outcome.best is not None and outcome.best.id == best.id
    assert best.metrics["acc"] == score(dict(best.params))
    [model] = tracker.get_run(tune.id).artifacts
    assert model.key == f"runs/{tune.id}/model" and model.kind == "remote"
    assert model.uri.endswith(f"{best.lineage.job_id}/model.tar.gz")
    assert tracker.get_run(tune.id).tags[tr.TAG_BEST] == best.id
    assert any("trial 0 finished" in line for line in lines)


def test_a_deployer_without_a_tuner_is_one_line(session, tmp_path):
    text = (tmp_path / "mldock.toml").read_text().replace('"faketune"', '"notune"')
    (tmp_path / "mldock.toml").write_text(text)
    other = Session(load_config(tmp_path, env="cloud", registry=session.registry),
                    session.registry)
    with pytest.raises(UsageError, match="runs no tuning jobs"):
        run_remote_tune(other, TuneArgs(), print)
    other.close()


def test_resume_is_for_local_searches(session):
    with pytest.raises(UsageError, match="--resume takes up a local search"):
        run_remote_tune(session, TuneArgs(resume="x"), print)


def test_a_budget_beyond_the_platform_is_refused(session):
    with pytest.raises(UsageError, match=r"tune\.parallel_trials: faketune runs at most 4"):
        run_remote_tune(session, TuneArgs(parallel=5), print)
