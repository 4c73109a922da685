"""The kit's pytest hooks (``-p mldock.testing``): the ``docker`` marker and the closed-kit refusals
that only pytest can see, skip marks added from outside the test class (a conftest, a module mark
defined after the class) and a skip raised by an override's own code.

What the kit itself skips (a capability the record does not declare, a missing engine or binary) is
raised from :mod:`mldock.testing` and passes; a skip raised from anywhere else during a contract
test's call fails it with the reason.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from mldock.testing._common import (
    KIT_PACKAGE,
    contract_test_names,
    is_kit_class,
    refused_skip,
)


def pytest_configure(config: Any) -> None:
    """Register the ``docker`` marker (pytest calls this when the plugin is enabled)."""
    config.addinivalue_line(
        "markers",
        "docker: needs a real Docker engine (fails instead of skipping when"
        " MLDOCK_REQUIRE_DOCKER=1)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a contract test that carries a skip mark, before pytest's skipping plugin skips it."""
    reason = refused_skip(item)
    if reason:
        pytest.fail(reason, pytrace=False)


def _is_contract_test(item: pytest.Item) -> bool:
    cls = getattr(item, "cls", None)
    name = getattr(item, "originalname", None) or item.name
    return cls is not None and not is_kit_class(cls) and name in contract_test_names(cls)


def _skipped_by(excinfo: Any) -> str:
    """The module whose code called ``pytest.skip`` (pytest's own frames left out)."""
    for entry in reversed(excinfo.traceback):
        module = str(entry.frame.f_globals.get("__name__", ""))
        if not module.startswith("_pytest"):
            return module
    return ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, Any]:
    """Turn a skip raised by a plugin's own code inside a contract test into a failure."""
    report = yield
    excinfo = call.excinfo
    if (call.when == "call" and excinfo is not None and excinfo.errisinstance(pytest.skip.Exception)
            and _is_contract_test(item)):
        module = _skipped_by(excinfo)
        if module != KIT_PACKAGE and not module.startswith(KIT_PACKAGE + "."):
            report.outcome = "failed"
            who = module or "unknown code"
            report.longrepr = (f"contract test {item.name} was skipped by {who}"
                               f" ({excinfo.value}): only the kit skips a contract test, for a"
                               " capability the record does not declare; narrow a capability or"
                               " declare a known failure with mldock.testing.expected_failure")
    return report
