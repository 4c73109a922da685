"""Whether a deployer can run a project's ``[tune]``: checked at ``mldock config validate``.

Each deployer record with the ``tuning`` capability declares a
:class:`~mldock.interfaces.TuningSupport` table; the local tuner (Optuna) has its own,
:data:`LOCAL_TUNING`. :func:`support_problem` compares the spec as that deployer runs it (its
``[tune.<deployer>]`` overrides applied) against the table and names the first key the
platform has no equivalent for, with the override that would fix it. One line, before anything
is pushed or billed.
"""

from __future__ import annotations

from typing import Any

from mldock.interfaces.deploy import TuningSupport
from mldock.tuning.space import MAX_GRID, grid_size
from mldock.tuning.spec import (
    CategoricalParam,
    FloatParam,
    IntParam,
    TuneSection,
    spec_problem,
)

LOCAL_TUNING = TuningSupport(
    strategies=frozenset({"bayesian", "random", "grid", "hyperband"}),
    early_stopping=frozenset({"none", "median", "hyperband"}), log_scale=True, steps=True,
    categorical_numbers=True, options_model="mldock.tuning.study:LocalTuneOptions")
"""The local tuner: Optuna's TPE, random and grid samplers, median and Hyperband pruners."""

Problem = tuple[tuple[str, ...], str, str]


def support_of(record: Any) -> TuningSupport | None:
    """The tuning table of a deployer record, ``LOCAL_TUNING`` for ``local``, else ``None``."""
    if getattr(record, "name", None) == "local":
        return LOCAL_TUNING
    return getattr(record, "tuning", None)


def support_problem(spec: TuneSection, deployer: str, support: TuningSupport) -> Problem | None:
    """(key path under ``tune``, problem, hint) of the first thing ``deployer`` cannot run."""
    effective = spec.for_deployer(deployer)
    found = spec_problem(effective)
    if found:
        loc, problem, hint = found
        return ((_where(spec, deployer, loc[0]) if len(loc) == 1 else loc), problem, hint)
    override = f"[tune.{deployer}]"
    if effective.strategy not in support.strategies:
        return (_where(spec, deployer, "strategy"),
                (f"{deployer} has no {effective.strategy!r} strategy (it has:"
                f" {', '.join(sorted(support.strategies))})"),
                f"set strategy in {override} to one of them")
    if effective.stopping not in support.early_stopping:
        return (_where(spec, deployer, "early_stopping"),
                (f"{deployer} has no {effective.stopping!r} early stopping (it has:"
                f" {', '.join(sorted(support.early_stopping))})"),
                f"set early_stopping in {override} to one of them")
    for key, limit in (("max_trials", support.max_trials),
                       ("parallel_trials", support.max_parallel_trials)):
        value = getattr(effective, key)
        if limit is not None and value > limit:
            return (_where(spec, deployer, key), f"{deployer} runs at most {limit} ({value} asked)",
                    f"set {key} = {limit} in {override}")
    return _space_problem(effective, deployer, support)


def _space_problem(spec: TuneSection, deployer: str,
                   support: TuningSupport) -> Problem | None:
    for name, param in sorted(spec.space.items()):
        where = ("space", name)
        if isinstance(param, FloatParam | IntParam):
            if param.scale == "log" and not support.log_scale:
                return (where, f"{deployer} searches no log scale",
                        "use scale = 'linear', or list the values as a categorical")
            stepped = (param.step is not None if isinstance(param, FloatParam)
                       else param.step > 1)
            if stepped and not support.steps:
                return (where, f"{deployer} has no stepped ranges",
                        "drop step, or list the values (a categorical)")
        elif isinstance(param, CategoricalParam) and not support.categorical_numbers and any(
                not isinstance(v, str) for v in param.values):
            return (where, f"{deployer}'s categorical values are strings",
                    "quote the values; train(ctx) receives them as strings")
    if spec.strategy == "grid" and grid_size(spec.space) > MAX_GRID:
        return (("space",), f"the grid has {grid_size(spec.space)} points (most: {MAX_GRID})",
                "use fewer values, or the random or bayesian strategy")
    return None


def _where(spec: TuneSection, deployer: str, key: str) -> tuple[str, ...]:
    """The key to name: the override when ``[tune.<deployer>]`` set it, else the common key."""
    found = spec.overrides().get(deployer)
    if found is not None and getattr(found, key) is not None:
        return (deployer, key)
    return (key,)


def options_for(spec: TuneSection, deployer: str, support: TuningSupport) -> Any:
    """The validated platform-only keys of ``[tune.<deployer>]`` (raises pydantic's
    ``ValidationError``, or ``ValueError`` when the platform takes none)."""
    found = spec.overrides().get(deployer)
    extra = found.platform_keys() if found is not None else {}
    model = support.options_model
    if isinstance(model, str):
        from mldock.records import resolve_object

        model = resolve_object(model)
    if model is None:
        if extra:
            raise ValueError(f"unknown key {sorted(extra)[0]!r}: {deployer} takes only"
                             " strategy, early_stopping, max_trials and parallel_trials here")
        return None
    return model.model_validate(extra)
