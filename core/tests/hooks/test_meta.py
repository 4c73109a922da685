"""Two cheap meta-tests (a Datasette lesson): every hook is documented with its exact signature in
docs/hooks.md, and every hook has a ``test_hook_<name>`` test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from mldock import hookspecs

REPO = Path(__file__).resolve().parents[3]
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if name.startswith("mldock_") and inspect.isfunction(fn))


def signature_text(name: str) -> str:
    """``def name(arg: Type, ...) -> Return`` from the hookspec, annotations as written."""
    fn = getattr(hookspecs, name)
    params = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
        for p in inspect.signature(fn).parameters.values())
    return f"def {name}({params}) -> {inspect.signature(fn).return_annotation}"


def test_there_are_hooks():
    assert len(HOOKS) == 11


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_signature(name):
    docs = (REPO / "docs" / "hooks.md").read_text()
    assert f"### {name}" in docs, f"docs/hooks.md has no section for {name}"
    assert signature_text(name) in docs, f"docs/hooks.md does not show: {signature_text(name)}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name):
    tests = (Path(__file__).parent / "test_hooks.py").read_text()
    assert f"def test_hook_{name}(" in tests
