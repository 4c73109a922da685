"""The ``[tune]`` section: one hyperparameter search, written once for every target.

```toml
[tune]
objective = "val_accuracy"       # a metric train(ctx) logs with ctx.log_metric
direction = "maximize"           # or "minimize"
strategy = "bayesian"            # bayesian | random | grid | hyperband
max_trials = 12
parallel_trials = 2
early_stopping = "median"        # none | median | hyperband

[tune.space]
learning_rate = { type = "float", low = 1e-4, high = 0.1, scale = "log" }
n_estimators = { type = "int", low = 50, high = 400, step = 50 }
criterion = ["gini", "entropy"]  # a list is a categorical

[tune.sagemaker]                 # overrides for one deployer, where it has no equivalent
strategy = "random"
```

Searched names are hyperparameters: a trial runs with ``[hyperparameters]`` plus its sampled
values, so ``train(ctx)`` reads them as usual. A ``[tune.<deployer>]`` table may override the
common keys (:data:`OVERRIDABLE`) for that deployer and hold keys only that platform has (its
:class:`~mldock.interfaces.TuningSupport` names their model). The model only checks what holds
everywhere; :mod:`mldock.tuning.support` checks a deployer's limits.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
METRIC = r"^[A-Za-z_][A-Za-z0-9_./-]{0,127}$"
OVERRIDABLE = ("strategy", "early_stopping", "max_trials", "parallel_trials")
"""Keys of ``[tune]`` a ``[tune.<deployer>]`` table may set for that deployer only."""

Strategy = Literal["bayesian", "random", "grid", "hyperband"]
Stopping = Literal["none", "median", "hyperband"]
Scalar = str | int | float | bool


class FloatParam(BaseModel):
    """A continuous range; ``scale = "log"`` samples evenly in log space (needs ``low > 0``);
    ``step`` quantizes it (``low + k*step``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["float"]
    low: float
    high: float
    scale: Literal["linear", "log"] = "linear"
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(self.low, self.high, self.scale)
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.step is not None and self.scale == "log":
            raise ValueError("a log scale cannot have a step: drop one of them")
        return self


class IntParam(BaseModel):
    """Integers from ``low`` to ``high`` inclusive, every ``step``; ``scale = "log"`` favours
    small values (needs ``low >= 1`` and ``step = 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(self.low, self.high, self.scale)
        if self.scale == "log" and self.step != 1:
            raise ValueError("a log scale needs step = 1")
        if (self.high - self.low) % self.step:
            raise ValueError(f"high - low ({self.high - self.low}) is not a multiple of step"
                             f" ({self.step})")
        return self


class CategoricalParam(BaseModel):
    """One of a few values (strings, numbers or booleans), none repeated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["categorical"]
    values: list[Scalar] = Field(min_length=1, max_length=1000)

    @field_validator("values")
    @classmethod
    def _unique(cls, value: list[Scalar]) -> list[Scalar]:
        seen = [(type(v).__name__, v) for v in value]
        if len(set(seen)) != len(seen):
            raise ValueError("values repeat: give each value once")
        return value


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def _check_range(low: float, high: float, scale: str) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if scale == "log" and low <= 0:
        raise ValueError(f"a log scale needs low > 0 (got {low})")


class Overrides(BaseModel):
    """The common keys a ``[tune.<deployer>]`` table may set (its other keys are the
    platform's, validated by the deployer's options model)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: Strategy | None = None
    early_stopping: Stopping | None = None
    max_trials: int | None = Field(default=None, ge=1, le=10_000)
    parallel_trials: int | None = Field(default=None, ge=1, le=1_000)

    def platform_keys(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class TuneSection(BaseModel):
    """``[tune]``: what to optimize, over which space, how, and how many trials."""

    model_config = ConfigDict(extra="allow", frozen=True)

    objective: str = Field(pattern=METRIC, description="metric logged with ctx.log_metric")
    direction: Literal["maximize", "minimize"]
    space: dict[str, Param] = Field(min_length=1, description="searched hyperparameters")
    strategy: Strategy = "bayesian"
    max_trials: int = Field(default=10, ge=1, le=10_000)
    parallel_trials: int = Field(default=1, ge=1, le=1_000)
    early_stopping: Stopping | None = Field(
        default=None, description="none | median | hyperband (default: hyperband when the"
                                  " strategy is hyperband, else none)")
    seed: int | None = Field(default=None, ge=0, description="makes the sampled values repeat")

    @field_validator("space", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``name = [a, b]`` is ``{type = "categorical", values = [a, b]}``."""
        if not isinstance(value, dict):
            return value
        return {k: ({"type": "categorical", "values": v} if isinstance(v, list) else v)
                for k, v in value.items()}

    @field_validator("space")
    @classmethod
    def _names(cls, value: dict[str, Param]) -> dict[str, Param]:
        for key in value:
            if not re.fullmatch(NAME, key):
                raise ValueError(f"invalid hyperparameter name {key!r}")
            if key.startswith(("sagemaker_", "mldock_")):
                raise ValueError(f"{key!r}: names starting with 'sagemaker_' or 'mldock_' are"
                                 " reserved")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TuneSection:
        for name, table in (self.__pydantic_extra__ or {}).items():
            if not isinstance(table, dict):
                close = difflib.get_close_matches(name, sorted(type(self).model_fields), n=1)
                raise ValueError(f"unknown key {name!r}: " + (
                    f"did you mean {close[0]!r}?" if close else
                    f"per-deployer settings go in a table, [tune.{name}]"))
        return self

    # --- views ------------------------------------------------------------------------------
    def overrides(self) -> dict[str, Overrides]:
        """Deployer name -> its validated ``[tune.<deployer>]`` table."""
        return {name: Overrides.model_validate(table)
                for name, table in (self.__pydantic_extra__ or {}).items()}

    def for_deployer(self, name: str) -> TuneSection:
        """This spec as deployer ``name`` runs it: its ``[tune.<name>]`` common keys applied."""
        found = self.overrides().get(name)
        if found is None:
            return self
        update = {k: getattr(found, k) for k in OVERRIDABLE if getattr(found, k) is not None}
        return self.model_copy(update=update)

    @property
    def stopping(self) -> str:
        """The early-stopping rule in force (``early_stopping``, defaulted by the strategy)."""
        if self.early_stopping is not None:
            return self.early_stopping
        return "hyperband" if self.strategy == "hyperband" else "none"


def spec_problem(spec: TuneSection) -> tuple[tuple[str, ...], str, str] | None:
    """(key path under ``tune``, problem, hint) of the first rule that spans several keys, for
    the effective spec of one deployer; ``None`` when it holds together."""
    if spec.parallel_trials > spec.max_trials:
        return (("parallel_trials",), (f"{spec.parallel_trials} trials at once is more than"
                f" max_trials ({spec.max_trials})"), "lower parallel_trials or raise max_trials")
    if spec.strategy == "hyperband" and spec.stopping not in ("hyperband", "none"):
        return (("early_stopping",), (f"the hyperband strategy stops trials itself; it cannot"
                f" also use {spec.stopping!r}"), "drop early_stopping, or pick another strategy")
    if spec.strategy == "grid":
        for name, param in spec.space.items():
            if isinstance(param, FloatParam) and param.step is None:
                return (("space", name), ("a grid search needs a finite set of values, and this"
                        " range is continuous"), "give it a step, or list the values")
    return None
