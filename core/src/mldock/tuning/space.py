"""The search space in the two shapes its users need.

* :func:`to_neutral`: platform-neutral JSON, the ``space`` of a
  :class:`~mldock.interfaces.TuneRequest`; a plugin maps it to its tuner's parameter types.
* :func:`to_distributions`: Optuna distributions for the local tuner (Optuna is imported only
  here, when a local search runs).

:func:`grid_values` enumerates a finite space (grid search, locally and for plugins whose grid
takes explicit values).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from mldock.tuning.spec import CategoricalParam, FloatParam, IntParam, Param

MAX_GRID = 100_000


def to_neutral(space: Mapping[str, Param]) -> dict[str, dict[str, Any]]:
    """``{"lr": {"type": "float", "low": …, "high": …, "scale": "log"}, …}``, sorted by name.

    Floats carry ``step`` only when quantized; ints always carry ``step`` and ``scale``;
    categoricals carry ``values`` in the user's order.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(space):
        param = space[name]
        if isinstance(param, CategoricalParam):
            out[name] = {"type": "categorical", "values": list(param.values)}
        elif isinstance(param, IntParam):
            out[name] = {"type": "int", "low": param.low, "high": param.high,
                         "step": param.step, "scale": param.scale}
        else:
            item: dict[str, Any] = {"type": "float", "low": param.low, "high": param.high,
                                    "scale": param.scale}
            if param.step is not None:
                item["step"] = param.step
            out[name] = item
    return out


def param_values(param: Param) -> list[Any]:
    """Every value of a finite parameter, in order (a continuous float has none: ValueError)."""
    if isinstance(param, CategoricalParam):
        return list(param.values)
    if isinstance(param, IntParam):
        return list(range(param.low, param.high + 1, param.step))
    if param.step is None:
        raise ValueError("a continuous range has no finite set of values")
    count = int((param.high - param.low) / param.step + 1e-9) + 1
    return [round(param.low + k * param.step, 12) for k in range(count)]


def grid_size(space: Mapping[str, Param]) -> int:
    size = 1
    for param in space.values():
        size *= len(param_values(param))
    return size


def grid_values(space: Mapping[str, Param]) -> Iterator[dict[str, Any]]:
    """Every combination of a finite space, the first name varying slowest."""
    names = sorted(space)
    for combo in itertools.product(*(param_values(space[n]) for n in names)):
        yield dict(zip(names, combo, strict=True))


def to_distributions(space: Mapping[str, Param]) -> dict[str, Any]:
    """Name -> ``optuna.distributions.BaseDistribution`` (imports Optuna)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name in sorted(space):
        param = space[name]
        if isinstance(param, CategoricalParam):
            out[name] = CategoricalDistribution(list(param.values))
        elif isinstance(param, IntParam):
            out[name] = IntDistribution(param.low, param.high, step=param.step,
                                        log=param.scale == "log")
        else:
            out[name] = _float(param, FloatDistribution)
    return out


def _float(param: FloatParam, distribution: Any) -> Any:
    if param.step is not None:  # Optuna wants high on the grid: the last step not past high
        count = int((param.high - param.low) / param.step + 1e-9)
        return distribution(param.low, param.low + count * param.step, step=param.step)
    return distribution(param.low, param.high, log=param.scale == "log")
