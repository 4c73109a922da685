"""What every contract class shares: the closed-kit guard, capability flags, small file fixtures.

The kit is *closed* (as langchain-tests' standard tests are): a plugin's subclass adds fixtures and
helpers, never its own version of a contract test. Overriding a contract test is allowed only to
declare a known failure with :func:`expected_failure` (a strict ``xfail`` with a reason), so a
backend can never pass the kit by replacing what a test checks. The check runs when the subclass is
defined (``__init_subclass__``), so it holds whether or not the kit's pytest plugin is enabled; the
plugin (``-p mldock.testing``) adds the same refusal for skip marks applied from anywhere else.

Capability flags (``supports_*``) are not set by hand either: they come from the ``capabilities`` of
the backend's registered record, the same set ``mldock plugins list`` shows and the CLI trusts, so
what a plugin declares is what the kit tests. A subclass may only *narrow* them, with a reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

KIT_PACKAGE = "mldock.testing"
SKIP_MARKS = ("skip", "skipif")
F = TypeVar("F", bound=Callable[..., Any])


class ContractError(TypeError):
    """A contract subclass breaks a rule of the kit; raised when the class is defined."""


def expected_failure(reason: str, *, raises: type[BaseException] | tuple[type[BaseException], ...]
                     | None = None) -> Callable[[F], F]:
    """Declare that this backend fails a contract test, and why: the only allowed override.

    The override's body usually calls the contract's own test (``super().test_x(...)``); it runs
    and must fail (a strict xfail), so once the backend is fixed the test reports XPASS as a
    failure and the override has to go. ``raises`` narrows the expected failure to those errors.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ContractError("expected_failure needs a reason: say why this backend fails the test")
    return pytest.mark.xfail(reason=reason, strict=True, raises=raises)


def is_kit_class(cls: type) -> bool:
    """True for the kit's own contract classes (defined in :mod:`mldock.testing`)."""
    return cls.__module__ == KIT_PACKAGE or cls.__module__.startswith(KIT_PACKAGE + ".")


def contract_test_names(cls: type) -> dict[str, type]:
    """Contract test name -> the kit class that defines it, for every kit class ``cls`` inherits."""
    names: dict[str, type] = {}
    for base in reversed(cls.__mro__):
        if is_kit_class(base):
            names.update({name: base for name in vars(base) if name.startswith("test_")})
    return names


def _marks(obj: Any) -> list[Any]:
    """The pytest marks stored on a function, class or module (``Mark`` objects)."""
    stored = getattr(obj, "pytestmark", [])
    stored = stored if isinstance(stored, (list, tuple)) else [stored]
    return [getattr(mark, "mark", mark) for mark in stored]


def xfail_reason(function: Any) -> str | None:
    """The reason of an allowed override: a strict, unconditional xfail with a reason, no skip."""
    marks = _marks(function)
    if not callable(function) or any(mark.name in SKIP_MARKS for mark in marks):
        return None
    for mark in marks:
        reason, kwargs = mark.kwargs.get("reason"), mark.kwargs
        if (mark.name == "xfail" and isinstance(reason, str) and reason.strip() and not mark.args
                and kwargs.get("strict") is True and kwargs.get("run", True) is not False):
            return reason
    return None


def _refuse(cls: type, problem: str, fix: str) -> ContractError:
    return ContractError(f"{cls.__module__}.{cls.__qualname__}: {problem}; {fix}")


def check_overrides(cls: type) -> None:
    """Refuse a subclass that redefines a contract test other than as an expected failure."""
    for name, kit_class in contract_test_names(cls).items():
        if name not in vars(cls):
            continue
        override = vars(cls)[name]
        if xfail_reason(override) is None:
            raise _refuse(cls, f"overrides contract test {kit_class.__name__}.{name}",
                          "contract tests cannot be replaced or skipped; declare a known failure"
                          " with @mldock.testing.expected_failure(reason=...) (a strict xfail), or"
                          " narrow a capability with narrowed = {'capability': 'reason'}")
        _keep_parametrize(override, getattr(kit_class, name))


def _keep_parametrize(override: Any, original: Any) -> None:
    """An allowed override runs with the contract test's parameters (it cannot change them)."""
    params = [mark for mark in _marks(original) if mark.name == "parametrize"]
    own = [mark for mark in _marks(override) if mark.name != "parametrize"]
    if params:
        override.pytestmark = [*own, *params]


def check_skip_marks(cls: type) -> None:
    """Refuse skip marks on the subclass or (as far as it is defined yet) on its module."""
    module = sys.modules.get(cls.__module__)
    for where, owner in (("class", cls), ("module", module)):
        if owner is not None and any(m.name in SKIP_MARKS for m in _marks(owner)):
            raise _refuse(cls, f"a skip mark on its {where} would skip contract tests",
                          "the kit skips a test only for a capability the record does not"
                          " declare; narrow one with narrowed = {'capability': 'reason'}")


class Capability:
    """A capability flag of a contract (``supports_x = Capability("x")``), read on an instance.

    True when the backend's record declares ``name`` in its ``capabilities`` (or, for a
    ``baseline`` capability outside the records' vocabulary, always), unless the test class
    narrows it in ``narrowed`` with a reason. Never set on a subclass: the guard refuses it.
    """

    def __init__(self, name: str, *, baseline: bool = False) -> None:
        self.name = name
        self.baseline = baseline
        self.attr = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, contract: Any, owner: type | None = None) -> Any:
        if contract is None:
            return self
        return has_capability(contract, self.name)


def capabilities_of(cls: type) -> dict[str, Capability]:
    """Capability name -> its flag, for every flag ``cls`` inherits."""
    found: dict[str, Capability] = {}
    for base in reversed(cls.__mro__):
        found.update({v.name: v for v in vars(base).values() if isinstance(v, Capability)})
    return found


def check_flags(cls: type) -> None:
    """Refuse hand-set capability flags, and narrowings without a reason or of unknown names."""
    flags = {flag.attr: flag for flag in capabilities_of(cls).values()}
    for attr, value in vars(cls).items():
        if attr in flags and not isinstance(value, Capability):
            flag = flags[attr]
            source = ("is expected of every backend" if flag.baseline
                      else "comes from the capabilities of the backend's record")
            raise _refuse(cls, f"sets {attr} by hand, but capability {flag.name!r} {source}",
                          f"declare it in the record, or narrow it: narrowed = {{{flag.name!r}:"
                          " 'why this backend cannot'}")
    narrowed = vars(cls).get("narrowed", {})
    known = sorted(capabilities_of(cls))
    if not isinstance(narrowed, Mapping):
        raise _refuse(cls, "narrowed is not a mapping", "use {'capability': 'reason'}")
    for name, reason in narrowed.items():
        if name not in known:
            raise _refuse(cls, f"narrows unknown capability {name!r}", f"use one of {known}")
        if not isinstance(reason, str) or not reason.strip():
            raise _refuse(cls, f"narrows capability {name!r} without a reason",
                          "say why the backend cannot do it")


def check_record(cls: type) -> None:
    """Refuse a record of another concern (a storage contract run on a tracker's record)."""
    record, concern = vars(cls).get("record"), getattr(cls, "concern", None)
    if record is None or concern is None:
        return
    if not hasattr(record, "capabilities") or getattr(record, "concern", None) != concern:
        raise _refuse(cls, f"record {record!r} is not a {concern} record",
                      f"use mldock.testing.registered_record({concern!r}, NAME)")


class ContractBase:
    """Base of the capability-based contracts: the guard and the record the flags come from.

    A subclass sets ``record`` (usually ``registered_record(concern, name)``: the record mldock
    itself would use), builds its backend fixture through ``record.build(FactoryContext(...))``,
    and may set ``narrowed = {capability: reason}``.
    """

    concern: ClassVar[str | None] = None
    record: ClassVar[Any] = None
    narrowed: ClassVar[Mapping[str, str]] = {}
    backend_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if is_kit_class(cls):
            return
        check_overrides(cls)
        check_skip_marks(cls)
        check_flags(cls)
        check_record(cls)

    @pytest.fixture(autouse=True)
    def _contract_record(self) -> None:
        """Every test of a capability contract needs the record its flags come from."""
        if self.concern is not None and type(self).record is None:
            pytest.fail(f"{type(self).__name__} sets no record: set record ="
                        f" mldock.testing.registered_record({self.concern!r}, NAME) so the"
                        " capability flags come from what the plugin registers", pytrace=False)


def has_capability(contract: Any, name: str) -> bool:
    """Whether the contract's backend has capability ``name`` (record, baseline, narrowing)."""
    cls = type(contract)
    if name in getattr(cls, "narrowed", {}):
        return False
    flag = capabilities_of(cls).get(name)
    if flag is not None and flag.baseline:
        return True
    record = getattr(cls, "record", None)
    return record is not None and name in record.capabilities


def backend_label(contract: object) -> str:
    """How skip messages name the backend: ``backend_name``, the record's name, or the class."""
    record = getattr(type(contract), "record", None)
    return (getattr(contract, "backend_name", None) or getattr(record, "name", None)
            or type(contract).__name__)


def require_capability(contract: object, flag: str, capability: str | None = None) -> None:
    """Skip, with the reason, a test of a capability the backend's record does not declare."""
    found = getattr(type(contract), flag, None)
    name = found.name if isinstance(found, Capability) else (capability or flag)
    if getattr(contract, flag, False):
        return
    reason = getattr(type(contract), "narrowed", {}).get(name)
    if reason:
        pytest.skip(f"{backend_label(contract)} narrows capability {name!r}: {reason}")
    pytest.skip(f"{backend_label(contract)} does not declare capability {name!r} in its record")


def registered_record(concern: str, name: str) -> Any:
    """The record of backend ``name`` as mldock itself finds it (entry points and built-ins).

    Test classes take their record from here rather than from the plugin module, so the kit tests
    what a user's ``mldock`` would load, capabilities included.
    """
    from mldock.host.loader import get_host

    return get_host().registry.get(concern, name)


def refused_skip(item: Any) -> str | None:
    """Why a collected contract test may not carry the skip marks it has (``None``: it may)."""
    cls = getattr(item, "cls", None)
    name = getattr(item, "originalname", None) or getattr(item, "name", "")
    if cls is None or is_kit_class(cls) or name not in contract_test_names(cls):
        return None
    skips = [m for m in item.iter_markers() if m.name in SKIP_MARKS]
    if not skips:
        return None
    return (f"contract test {name} of {cls.__name__} carries a {skips[0].name} mark: the kit skips"
            " a test only for a capability the record does not declare; declare a known failure"
            " with mldock.testing.expected_failure(reason=...) or narrow a capability instead")


def iter_files(root: Path) -> Iterable[Path]:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath, name)


def snapshot(root: Path) -> dict[str, bytes]:
    """``{relpath: bytes}`` of every file under ``root``: compares two trees in one assert."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in iter_files(root)}


def make_sample_tree(root: Path) -> Path:
    """A tree with what usually breaks stores: nesting, an empty file, binary and unicode names."""
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "données").mkdir()
    (root / "top.txt").write_text("hello\n")
    (root / "empty.bin").write_bytes(b"")
    (root / "nested" / "deeper" / "all-bytes.bin").write_bytes(bytes(range(256)) * 64)
    (root / "nested" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "nested" / "run.sh", 0o755)  # noqa: S103 - the mode test needs an executable
    (root / "données" / "résumé ✓.txt").write_text("unicode ✓ inside\n", encoding="utf-8")
    return root
