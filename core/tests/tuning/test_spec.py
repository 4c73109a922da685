"""``[tune]`` validation: every problem is one ConfigError line naming the key, at load time."""

from __future__ import annotations

import re

import pytest
from mldock.errors import ConfigError
from mldock.interfaces import TuningSupport
from mldock.tuning.space import grid_size, grid_values, param_values, to_neutral
from mldock.tuning.spec import TuneSection
from mldock.tuning.support import LOCAL_TUNING, options_for, support_problem

from .conftest import TUNE


def test_a_valid_spec_loads_with_defaults(load):
    spec = load(TUNE).model.tune
    assert spec is not None
    assert (spec.objective, spec.direction, spec.strategy) == ("acc", "maximize", "bayesian")
    assert (spec.max_trials, spec.parallel_trials, spec.stopping) == (6, 2, "none")
    assert spec.space["opt"].type == "categorical"  # a list is a categorical
    assert to_neutral(spec.space) == {
        "depth": {"type": "int", "low": 2, "high": 8, "step": 2, "scale": "linear"},
        "lr": {"type": "float", "low": 0.0001, "high": 0.1, "scale": "log"},
        "opt": {"type": "categorical", "values": ["adam", "sgd"]}}


def test_no_tune_section_is_fine(load):
    assert load("").model.tune is None


@pytest.mark.parametrize(("line", "key", "words"), [
    ('lr = { type = "float", low = 1, high = 0.1 }', "tune.space.lr", "must be below high"),
    ('lr = { type = "float", low = 0, high = 1, scale = "log" }', "tune.space.lr",
     "log scale needs low > 0"),
    ('lr = { type = "float", low = 0.1, high = 1, scale = "log", step = 0.1 }', "tune.space.lr",
     "cannot have a step"),
    ('lr = { type = "int", low = 1, high = 10, step = 2 }', "tune.space.lr",
     "not a multiple of step"),
    ('lr = { type = "int", low = 1, high = 9, step = 2, scale = "log" }', "tune.space.lr",
     "log scale needs step = 1"),
    ('lr = { type = "flot", low = 1, high = 2 }', "tune.space.lr", "does not match"),
    ('lr = { type = "float", low = 1, high = 2, sclae = "log" }', "tune.space.lr",
     "unknown key"),
    ("lr = []", "tune.space.lr", "at least 1 item"),
    ('lr = ["a", "a"]', "tune.space.lr", "values repeat"),
    ('sagemaker_x = [1, 2]', "tune.space", "reserved"),
])
def test_space_problems_name_the_parameter(load, line, key, words):
    text = TUNE.replace('lr = { type = "float", low = 1e-4, high = 0.1, scale = "log" }', line)
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert f"mldock.toml: {key}" in caught.value.message
    assert words in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(("change", "key", "words"), [
    (('direction = "maximize"', 'direction = "up"'), "tune.direction", "maximize"),
    (('direction = "maximize"\n', ""), "tune.direction", "required key is missing"),
    (('objective = "acc"', 'objective = "a b"'), "tune.objective", "should match"),
    (("max_trials = 6", "max_trials = 0"), "tune.max_trials", "greater than or equal to 1"),
    (("parallel_trials = 2", "parallel_trials = 9"), "tune.parallel_trials",
     "more than max_trials"),
    (("max_trials = 6", 'max_trials = 6\nstrategy = "annealing"'), "tune.strategy",
     "'bayesian', 'random', 'grid' or 'hyperband'"),
    (("max_trials = 6", 'max_trials = 6\nstrategy = "hyperband"\nearly_stopping = "median"'),
     "tune.early_stopping", "stops trials itself"),
    (("max_trials = 6", 'max_trials = 6\nstrategy = "grid"'), "tune.space.lr",
     "grid search needs a finite set"),
    (("max_trials = 6", "max_trials = 6\nbudget = 3"), "tune",
     "unknown key 'budget': per-deployer settings go in a table"),
    (("max_trials = 6", "max_trial = 6"), "tune", "unknown key 'max_trial': did you mean"),
])
def test_section_problems_name_the_key(load, change, key, words):
    with pytest.raises(ConfigError) as caught:
        load(TUNE.replace(*change))
    assert f"mldock.toml: {key}" in caught.value.message, caught.value.message
    assert words in caught.value.message


def test_overrides_apply_to_their_deployer_only(load):
    spec = load(TUNE + '\n[tune.local]\nstrategy = "random"\nmax_trials = 3\n'
                       "startup_trials = 1\n").model.tune
    local = spec.for_deployer("local")
    assert (local.strategy, local.max_trials) == ("random", 3)
    assert spec.for_deployer("sagemaker").strategy == "bayesian"
    assert options_for(spec, "local", LOCAL_TUNING).startup_trials == 1


def test_override_problems_name_the_override(load):
    with pytest.raises(ConfigError) as caught:
        load(TUNE + "\n[tune.local]\nparallel_trials = 7\n")
    assert "tune.local.parallel_trials: 7 trials at once" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        load(TUNE + "\n[tune.local]\nwarm_start = true\n")
    assert "tune.local.warm_start: unknown key" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        load(TUNE + "\n[tune.nowhere]\nstrategy = 'random'\n")
    assert "tune.nowhere" in caught.value.message and "nowhere" in caught.value.message


def test_an_override_for_a_deployer_that_cannot_tune(load):
    with pytest.raises(ConfigError, match=re.escape("tune.untuned: deployer 'untuned' runs no")):
        load(TUNE + "\n[tune.untuned]\nstrategy = 'random'\n")


def test_the_selected_deployer_is_checked_against_its_table(load):
    """What vx lacks is named for the environment that selects it, with the override to set;
    the base config (local) is fine, and the override fixes the environment."""
    text = TUNE.replace("max_trials = 6", "max_trials = 6\nstrategy = 'hyperband'")
    text += "\n[env.cloud.deploy]\ndeployer = 'vx'\n"
    assert load(text).model.tune.strategy == "hyperband"
    with pytest.raises(ConfigError) as caught:
        load(text, env="cloud")
    assert "tune.strategy: vx has no 'hyperband' strategy" in caught.value.message
    assert "[tune.vx]" in caught.value.hint
    fixed = load(text + "\n[tune.vx]\nstrategy = 'random'\nwarm_start = true\n", env="cloud")
    assert fixed.model.tune.for_deployer("vx").strategy == "random"


def test_platform_keys_are_validated_by_the_plugins_model(load):
    with pytest.raises(ConfigError, match=re.escape("tune.vx.warm_sart: unknown key")):
        load(TUNE + "\n[tune.vx]\nwarm_sart = true\n")
    with pytest.raises(ConfigError, match=re.escape("tune.vx.parallel_trials: vx runs at most 2")):
        load(TUNE + "\n[tune.vx]\nparallel_trials = 3\n")


def test_a_selected_deployer_without_a_tuner_does_not_break_loading(load):
    """``mldock train`` must keep working where the deployer cannot tune: only 'mldock tune'
    refuses."""
    assert load(TUNE + "\n[env.cloud.deploy]\ndeployer = 'untuned'\n", env="cloud")


def test_environment_overlay_changes_the_spec(load):
    config = load(TUNE + '\n[env.quick.tune]\nmax_trials = 2\nparallel_trials = 1\n',
                  env="quick")
    assert config.model.tune.max_trials == 2


VERTEX_LIKE = TuningSupport(strategies=frozenset({"bayesian", "random", "grid"}),
                            early_stopping=frozenset({"median"}), steps=False,
                            categorical_numbers=False, max_trials=5, max_parallel_trials=1)


def _spec(**changes) -> TuneSection:
    data = {"objective": "acc", "direction": "minimize",
            "space": {"lr": {"type": "float", "low": 0.1, "high": 1.0}}, **changes}
    return TuneSection.model_validate(data)


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"strategy": "hyperband"}, ("strategy",), "no 'hyperband' strategy"),
    ({"early_stopping": "hyperband"}, ("early_stopping",), "no 'hyperband' early stopping"),
    ({"max_trials": 6}, ("max_trials",), "at most 5"),
    ({"parallel_trials": 2, "max_trials": 4}, ("parallel_trials",), "at most 1"),
    ({"space": {"n": {"type": "int", "low": 2, "high": 8, "step": 2}}}, ("space", "n"),
     "no stepped ranges"),
    ({"space": {"n": [1, 2]}}, ("space", "n"), "categorical values are strings"),
    ({"vx": {"strategy": "hyperband"}}, ("vx", "strategy"), "no 'hyperband' strategy"),
])
def test_support_table_names_what_the_platform_lacks(changes, key, words):
    problem = support_problem(_spec(**{"max_trials": 4, **changes}), "vx", VERTEX_LIKE)
    assert problem is not None
    assert problem[0] == key and words in problem[1]
    assert problem[2]  # a hint: what to set instead


def test_support_table_override_fixes_it():
    spec = _spec(strategy="hyperband", max_trials=4, vx={"strategy": "random"})
    assert support_problem(spec, "vx", VERTEX_LIKE) is None
    assert support_problem(spec, "local", LOCAL_TUNING) is None


def test_support_table_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown"):
        TuningSupport(strategies=frozenset({"annealing"}))
    assert "none" in TuningSupport(strategies=frozenset({"random"})).early_stopping


def test_grid_values_cover_the_finite_space():
    spec = _spec(strategy="grid", space={"n": {"type": "int", "low": 1, "high": 3},
                                         "f": {"type": "float", "low": 0, "high": 0.3,
                                               "step": 0.1},
                                         "c": ["x", "y"]})
    assert param_values(spec.space["f"]) == [0.0, 0.1, 0.2, 0.3]
    points = list(grid_values(spec.space))
    assert len(points) == grid_size(spec.space) == 24
    assert len({tuple(sorted(p.items())) for p in points}) == 24


def test_records_refuse_capability_without_table():
    from mldock.records import DeployerRecord

    with pytest.raises(ValueError, match="go together"):
        DeployerRecord(name="x", summary="x", factory=lambda c: None,
                       capabilities=frozenset({"tuning"}))


def test_cli_validate_is_one_line(write_project):
    import subprocess
    import sys

    folder = write_project(TUNE.replace("max_trials = 6", "max_trials = 6\nstrategy = 'grid'"))
    result = subprocess.run([sys.executable, "-m", "mldock", "config", "validate"], cwd=folder,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tune.space.lr" in lines[0] and "Traceback" not in result.stderr
