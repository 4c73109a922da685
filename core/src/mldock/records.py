"""Records that plugins return from the registration hooks.

A record says what a plugin contributes without doing any work: a name, a one-line summary, a
*factory* that builds the backend when (and only when) a command needs it, the pydantic model that
validates the backend's section of ``mldock.toml``, and capability flags. Records are frozen so that
nothing downstream can change what a plugin declared.

Heavy SDKs (boto3, docker, mlflow, azure, google) are imported inside factories, never at module
level, so listing plugins or printing ``--help`` never pays for them. For the same reason the config
model may be given lazily as ``"package.module:ClassName"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
SCHEME_PATTERN = re.compile(r"^[a-z][a-z0-9+.-]*$")

def resolve_object(ref: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'package.module:attr', got {ref!r}")
    obj: Any = import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True, kw_only=True)
class FactoryContext:
    """What a backend factory receives: the facts of the project, never core's config model.

    A backend needs a handful of facts (the project's name, where it lives, the URIs, its own
    options); handing it the whole config would tie every plugin to core's internal model.
    :class:`~mldock.session.Session` fills these from the resolved config.

    Attributes:
        options: the backend's validated config section (an instance of the record's config model),
            or ``None`` when the record declares no model; :meth:`options_as` gives it typed.
        project: the project's name (``[project] name``): tags, job and repository names.
        project_dir: the project's root folder (where ``mldock.toml`` lives).
        uri: the storage or tracking URI that selected this backend (``None`` for builders and
            deployers).
        storage_uri: the project's ``[storage] uri``, made absolute (``file://…`` for a path).
        tracking_uri: the project's ``[tracking] uri``, a relative SQLite path made absolute.
        env: the name of the active environment (``None`` for the base config).
        image: the image repository name (``[build] image``, else the project name).
        platform: the image's platform (``[build] platform``, e.g. ``linux/amd64``).
        config_file: the config file's name, for errors that point at a key in it.
        open_store: ``open_store(uri)`` is the project's artifact store for another URI (the
            session's :meth:`~mldock.session.Session.storage_for`), for a backend that reads what a
            store wrote (a tracker uploading a run's model); ``None`` outside a session.
    """

    options: Any = None
    project: str = ""
    project_dir: Path = field(default_factory=Path.cwd)
    uri: str | None = None
    storage_uri: str | None = None
    tracking_uri: str | None = None
    env: str | None = None
    image: str | None = None
    platform: str | None = None
    config_file: str = "mldock.toml"
    open_store: Callable[[str], Any] | None = None

    def __post_init__(self) -> None:
        if not self.project:  # a context built by hand (tests): the folder's name stands in
            object.__setattr__(self, "project", Path(self.project_dir).name)

    def options_as(self, model: type[OptionsT]) -> OptionsT:
        """The options as an instance of ``model``; defaults when none were configured."""
        if self.options is None:
            return model()
        if not isinstance(self.options, model):
            raise TypeError(f"options are {type(self.options).__name__}, expected {model.__name__}")
        return self.options


TUNE_STRATEGIES = ("bayesian", "random", "grid", "hyperband")
"""The search strategies of ``[tune] strategy``; each platform declares the ones it has."""

EARLY_STOPPING = ("none", "median", "hyperband")
"""The early-stopping rules of ``[tune] early_stopping``; each platform declares the ones it has."""


@dataclass(frozen=True, kw_only=True)
class TuningSupport:
    """What a platform's tuner can do: the declarative table behind ``mldock config validate``.

    A deployer record with the ``tuning`` capability sets ``DeployerRecord.tuning`` to one of
    these. Core checks a project's ``[tune]`` against it before anything runs, so a setting the
    platform has no equivalent for is one line naming the key (``tune.strategy: vertex has no
    'hyperband' strategy …``), never a platform error an hour later. Nothing here imports an
    SDK. It lives with the records so that a plugin's entry-point module declares it without
    importing :mod:`mldock.interfaces` (``mldock --help`` stays fast).

    Attributes:
        strategies: values of ``strategy`` the platform's tuner runs (subset of
            :data:`TUNE_STRATEGIES`).
        early_stopping: values of ``early_stopping`` it honours (always include ``"none"``).
        log_scale: whether a ``scale = "log"`` float or int range is searched on a log scale.
        steps: whether a quantized range (``step`` on a float, ``step`` > 1 on an int) is
            honoured; without it such a parameter must be written as a categorical.
        categorical_numbers: whether a categorical may hold numbers (SageMaker's are strings:
            the plugin sends them as text and the runtime decodes them back).
        max_trials: the platform's limit on trials per tuning job, or ``None``.
        max_parallel_trials: its limit on trials running at once, or ``None``.
        options_model: pydantic model (class, or ``"module:Class"``) for the platform-only keys
            of ``[tune.<deployer>]`` (e.g. SageMaker's ``warm_start``); ``None`` accepts none.
    """

    strategies: frozenset[str]
    early_stopping: frozenset[str] = frozenset({"none"})
    log_scale: bool = True
    steps: bool = False
    categorical_numbers: bool = True
    max_trials: int | None = None
    max_parallel_trials: int | None = None
    options_model: Any = None

    def __post_init__(self) -> None:
        for name in ("strategies", "early_stopping"):
            value = frozenset(getattr(self, name))
            allowed = TUNE_STRATEGIES if name == "strategies" else EARLY_STOPPING
            unknown = sorted(value - set(allowed))
            if unknown:
                raise ValueError(f"TuningSupport.{name}: unknown {unknown} (known: {allowed})")
            object.__setattr__(self, name, value)
        if "none" not in self.early_stopping:
            object.__setattr__(self, "early_stopping", self.early_stopping | {"none"})
        if not self.strategies:
            raise ValueError("TuningSupport.strategies: name at least one strategy")


@dataclass(frozen=True, kw_only=True)
class BackendRecord:
    """Common shape of the four backend records.

    Attributes:
        name: unique name within its concern: lowercase letters, digits, ``-`` and ``_``.
        summary: one line shown by ``mldock plugins list``.
        factory: ``factory(FactoryContext) -> backend``; imports the backend's SDK when called.
        config_model: pydantic model validating ``[<concern>.<name>]`` in ``mldock.toml``, given as
            the class or lazily as ``"module:Class"``; ``None`` accepts no options.
        capabilities: flags the backend supports (see each interface for the vocabulary).
        example: a TOML snippet showing how a project selects and configures this backend, with
            ``<placeholders>`` and ``{project}`` for the project's name. ``mldock config example
            NAME`` prints it; ``mldock init`` writes a deployer's example into the new project's
            ``mldock.toml`` as a commented environment, so a new cloud needs no edit of core.
    """

    concern: ClassVar[str] = "backend"

    name: str
    summary: str
    factory: Callable[[FactoryContext], Any]
    config_model: Any = None
    capabilities: frozenset[str] = frozenset()
    example: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"invalid {self.concern} name {self.name!r}: use 1-40 lowercase letters, digits,"
                " '-' or '_', starting with a letter"
            )
        if not isinstance(self.summary, str) or not self.summary.strip():
            raise ValueError(f"{self.concern} {self.name!r} needs a one-line summary")
        if not callable(self.factory):
            raise ValueError(f"{self.concern} {self.name!r}: factory must be callable")
        if not isinstance(self.example, str):
            raise ValueError(f"{self.concern} {self.name!r}: example must be a TOML string")
        if not isinstance(self.capabilities, frozenset):
            object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    def load_config_model(self) -> type[BaseModel] | None:
        """Return the config model class, importing it if it was given as a string."""
        if self.config_model is None or not isinstance(self.config_model, str):
            return self.config_model
        return resolve_object(self.config_model)

    def build(self, context: FactoryContext) -> Any:
        """Call the factory. Kept as a method so every construction goes through one place."""
        return self.factory(context)


def _check_schemes(record: BackendRecord, schemes: tuple[str, ...]) -> tuple[str, ...]:
    schemes = tuple(schemes)
    for scheme in schemes:
        if not isinstance(scheme, str) or not SCHEME_PATTERN.match(scheme):
            raise ValueError(f"{record.concern} {record.name!r}: invalid URI scheme {scheme!r}")
    return schemes


@dataclass(frozen=True, kw_only=True)
class BuilderRecord(BackendRecord):
    """A builder: turns a project into a container image (and may push it).

    Capabilities: ``push`` (can push to a registry), ``cache-skip`` (skips builds whose inputs
    did not change).
    """

    concern: ClassVar[str] = "builder"


@dataclass(frozen=True, kw_only=True)
class StorageRecord(BackendRecord):
    """An artifact store, selected by the scheme of ``[storage] uri``.

    Attributes:
        schemes: URI schemes this store serves, e.g. ``("s3",)``.

    Capabilities: ``content-addressed``, ``atomic``, ``delete``, ``list``, ``presign``.
    """

    concern: ClassVar[str] = "storage"
    schemes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "schemes", _check_schemes(self, self.schemes))


@dataclass(frozen=True, kw_only=True)
class TrackerRecord(BackendRecord):
    """A run tracker, selected by the scheme of ``[tracking] uri`` or by ``[tracking] backend``.

    Attributes:
        schemes: URI schemes this tracker serves, e.g. ``("sqlite",)`` or ``("mlflow+http",)``.

    Capabilities: ``live-metrics`` (metrics visible while a run goes), ``artifacts``,
    ``concurrent-writers``.
    """

    concern: ClassVar[str] = "tracker"
    schemes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "schemes", _check_schemes(self, self.schemes))


@dataclass(frozen=True, kw_only=True)
class DeployerRecord(BackendRecord):
    """A deployer: runs training jobs and serving endpoints on a target platform.

    Capabilities: ``training``, ``serving``, ``batch``, ``distributed``, ``spot``, ``registry``
    (the target needs the image pushed first), ``tuning`` (runs the platform's own tuner).

    Attributes:
        tuning: with the ``tuning`` capability, what the platform's tuner supports
            (:class:`mldock.interfaces.TuningSupport`): ``mldock config validate`` checks
            ``[tune]`` against it, naming the key the platform has no equivalent for.
    """

    concern: ClassVar[str] = "deployer"
    tuning: TuningSupport | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if ("tuning" in self.capabilities) != (self.tuning is not None):
            raise ValueError(f"deployer {self.name!r}: the 'tuning' capability and a 'tuning'"
                             " support table (TuningSupport) go together")


@dataclass(frozen=True, kw_only=True)
class CommandRecord:
    """An extra CLI command group, e.g. ``mldock aws ...``.

    Attributes:
        name: the group's name on the command line.
        summary: one line shown in ``mldock --help`` without loading the group.
        factory: returns a ``typer.Typer`` (or a click command); called only when the group runs
            or its own help is asked for.
    """

    concern: ClassVar[str] = "command"

    name: str
    summary: str
    factory: Callable[[], Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f"invalid command name {self.name!r}")
        if not isinstance(self.summary, str) or not self.summary.strip():
            raise ValueError(f"command {self.name!r} needs a one-line summary")
        if not callable(self.factory):
            raise ValueError(f"command {self.name!r}: factory must be callable")


@dataclass(frozen=True, kw_only=True)
class TemplateRecord:
    """A project template for ``mldock init --template NAME``.

    Attributes:
        name: the template's name.
        summary: one line shown by ``mldock init --list``.
        location: a cookiecutter template: a local folder or a git URL.
        defaults: extra context passed to cookiecutter.
    """

    concern: ClassVar[str] = "template"

    name: str
    summary: str
    location: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f"invalid template name {self.name!r}")
        if not isinstance(self.summary, str) or not self.summary.strip():
            raise ValueError(f"template {self.name!r} needs a one-line summary")
        if not isinstance(self.location, str) or not self.location:
            raise ValueError(f"template {self.name!r} needs a location")


AnyRecord = BackendRecord | CommandRecord | TemplateRecord
