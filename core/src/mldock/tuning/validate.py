"""``[tune]`` checked against the deployers it will run on, while the config loads.

The loader calls :func:`tune_problem` once the backends are known: every ``[tune.<deployer>]``
table must name a deployer that tunes, hold only keys it takes, and ask nothing it cannot run;
the selected deployer is checked the same way when it tunes. A selected deployer without the
``tuning`` capability is no config error (``mldock train`` must keep working): ``mldock tune``
says so when asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mldock.tuning.support import Problem, options_for, support_of, support_problem

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config.model import MldockConfig
    from mldock.host.registry import Registry


def tune_problem(model: MldockConfig, registry: Registry) -> Problem | None:
    """(key path under ``tune``, problem, hint) of the first problem, or ``None``."""
    from mldock.errors import MldockError

    spec = model.tune
    if spec is None:
        return None
    names = sorted(spec.overrides())
    selected = model.deploy.deployer
    for name in [*names, *([selected] if selected not in names else [])]:
        try:
            record = registry.backend("deployer", name)
        except MldockError as exc:
            return ((name,), exc.message, exc.hint or "")
        support = support_of(record)
        if support is None:
            if name == selected and name not in names:
                continue
            return ((name,), f"deployer {name!r} runs no tuning jobs",
                    f"remove [tune.{name}], or tune on a deployer with the 'tuning' capability")
        found = support_problem(spec, name, support) or _options_problem(spec, name, support)
        if found:
            return found
    return None


def _options_problem(spec: Any, name: str, support: Any) -> Problem | None:
    from mldock.config.loader import describe_validation_error

    try:
        options_for(spec, name, support)
    except ValidationError as exc:
        loc, problem = describe_validation_error(exc)
        return ((name, *map(str, loc)), problem, "")
    except ValueError as exc:
        return ((name,), str(exc), "")
    return None
