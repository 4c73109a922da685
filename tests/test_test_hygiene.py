"""Tests and benchmarks remove only what they made: never a Docker object by a hard-coded name.

The suite runs against the engine of whoever runs it, a developer's own included. A removal that
names a fixed project, label, image or endpoint (``images.list(name="iris")``, a label filter
``"mldock.project=iris"``, ``docker rmi iris:latest``) also removes that person's ``iris``. So
every such call must name something unique to the run (an f-string with a uuid, a variable
holding a tag the test built), and Docker tests create projects under unique names (a project's
name becomes its image repository, ``:latest`` tag, endpoint and container labels).

This reads the source with :mod:`ast` (cheap, no engine needed) and fails naming file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["core/tests", "plugins/*/tests", "tests", "bench", "core/src/mldock/testing"]
REMOVING_METHODS = {"remove", "prune", "kill", "stop"}
LISTING_METHODS = {"list"}  # what is listed there is removed next: its filter must be unique
DOCKER_RECEIVERS = {"images", "containers", "volumes", "networks"}
REMOVING_HELPERS = {"remove_tags", "untag", "remove_own", "rmi"}
DOCKER_REMOVE_WORDS = {"rm", "rmi", "prune", "kill", "stop"}


def _literal(node: ast.AST) -> str | None:
    """A plain string constant (an f-string or a name is unique-able, so it is not flagged)."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _literals(node: ast.AST, constants: dict[str, str]) -> list[str]:
    """String constants in ``node``, in a dict/list/tuple it spells out, or in a module-level
    ``NAME = "…"`` it names (a constant is as shared as the literal)."""
    if isinstance(node, ast.Dict):
        return [s for v in node.values if v is not None for s in _literals(v, constants)]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [s for e in node.elts for s in _literals(e, constants)]
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    text = _literal(node)
    return [text] if text is not None else []


def _receiver_names(node: ast.AST) -> set[str]:
    names = set()
    while isinstance(node, ast.Attribute):
        names.add(node.attr)
        node = node.value
    return names


def _docker_cli_problem(call: ast.Call) -> str | None:
    """``subprocess.run(["docker", "rmi", "iris:latest"])`` and friends."""
    for arg in call.args:
        if not isinstance(arg, ast.List) or len(arg.elts) < 3:
            continue
        words = [_literal(e) for e in arg.elts]
        if words[0] != "docker" or not DOCKER_REMOVE_WORDS & set(words[1:3]):
            continue
        fixed = [w for w in words[2:] if w and not w.startswith("-") and w not in
                 DOCKER_REMOVE_WORDS | {"image", "container"}]
        if fixed:
            return f"docker {' '.join(w for w in words if w)} removes a fixed name {fixed[0]!r}"
    return None


def _call_problem(call: ast.Call, docker_file: bool, constants: dict[str, str]) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    receivers = _receiver_names(func.value) if isinstance(func, ast.Attribute) else set()
    if (name in REMOVING_METHODS | LISTING_METHODS and receivers & DOCKER_RECEIVERS) or (
            name in REMOVING_HELPERS):
        if name == "prune":
            return "prune removes what others made"
        fixed = [s for v in call.args for s in _literals(v, constants)]
        for keyword in call.keywords:  # a label filter by key alone ("com.docker…") names nothing
            found = _literals(keyword.value, constants)
            fixed += [s for s in found if keyword.arg != "filters" or "=" in s]
        if fixed:
            return f"{name}() on Docker objects by the fixed name {fixed[0]!r}"
    words = [_literal(a) for a in call.args]
    if name == "mldock" and words[:1] == ["undeploy"] and len(words) > 1 and words[1]:
        return f"undeploy of the fixed endpoint {words[1]!r}"
    if docker_file and name == "mldock" and words[:1] == ["init"] and len(words) > 1 and words[1]:
        return (f"a Docker test creates project {words[1]!r} under a fixed name (its image,"
                " :latest tag and endpoint are shared with anyone's)")
    return _docker_cli_problem(call)


def problems_in(source: str, path: str = "<test>") -> list[str]:
    """Every removal by a hard-coded shared name in ``source``, as ``path:line: why``."""
    tree = ast.parse(source)
    docker_file = "mark.docker" in source or "require_docker(" in source
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and _literal(n.value) is not None for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            problem = _call_problem(node, docker_file, constants)
            if problem:
                found.append(f"{path}:{node.lineno}: {problem}")
    return found


def scanned_files() -> list[Path]:
    files = {p for pattern in SCANNED for folder in ROOT.glob(pattern) if folder.is_dir()
             for p in folder.rglob("*.py")
             if not {".venv", ".venvs", "site-packages"} & set(p.parts)}
    return sorted(files)


def test_no_test_removes_docker_objects_by_a_shared_name():
    files = scanned_files()
    assert len(files) > 20 and Path(__file__).resolve() in files
    found = [p for f in files for p in problems_in(f.read_text(encoding="utf-8"),
                                                     str(f.relative_to(ROOT)))]
    assert not found, "remove only what the test made, by id or a unique name:\n" + "\n".join(found)


@pytest.mark.parametrize("snippet", [
    'engine.containers.list(all=True, filters={"label": "mldock.project=iris"})',
    'for image in engine.images.list(name="iris"): pass',
    'client.images.remove("iris:latest", noprune=True)',
    'subprocess.run(["docker", "rmi", "benchiris:latest"])',
    'subprocess.run(["docker", "image", "rm", "iris"])',
    'untag("awsiris")',
    'PROJECT = "awsiris"\nuntag(PROJECT)',
    'REPO = "e2e-iris"\nfor i in client.images.list(name=REPO): pass',
    'engine.images.prune()',
    'mldock("undeploy", "iris", cwd=p)',
    'import pytest\npytestmark = pytest.mark.docker\nmldock("init", "iris", cwd=root)',
])
def test_the_guard_catches_shared_names(snippet):
    assert problems_in(snippet), snippet


@pytest.mark.parametrize("snippet", [
    'engine.containers.list(all=True, filters={"label": f"mldock.project={name}"})',
    'engine.images.list(name=project_name)',
    'client.images.remove(tag, noprune=True)',
    'subprocess.run(["docker", "rmi", tag])',
    'subprocess.run(["docker", "rm", "-f", container])',
    'mldock("undeploy", endpoint, cwd=p)',
    'mldock("init", "iris", cwd=root)',  # no Docker in this file: a tmp folder is private
    'container.remove(force=True)',
    'engine.networks.list(filters={"label": "com.docker.compose.project"})',
])
def test_the_guard_lets_unique_names_pass(snippet):
    assert problems_in(snippet) == []
