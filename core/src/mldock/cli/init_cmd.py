"""``mldock init``: create a project from a template.

Templates are cookiecutter templates. ``--template`` takes a registered name (the built-in
``sklearn`` and ``minimal``, or one a plugin registers through ``mldock_templates``) or, for
anything that looks like a location (it contains ``/``, ends in ``.git`` or ``.zip``, or exists on
disk), passes the value to cookiecutter as is: a local folder, a git URL, ``gh:owner/repo``.
Built-in templates ship inside the package, so ``mldock init`` works offline.

The convention between this command and a template: ``NAME`` is given to the template as
``project_name``; the template derives ``project_slug`` (the folder, lowercase with ``-``) and
``package_name`` (the Python package, ``-`` becoming ``_``) from it. ``NAME`` is checked here
against the rules mldock.toml applies, so a created project always validates.

cookiecutter is imported only when a project is created: listing templates and ``--help`` stay fast.
"""

from __future__ import annotations

import keyword
import os
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from mldock.cli.output import info, print_json, print_table
from mldock.errors import MldockError, PluginError, UsageError

app = typer.Typer(help="Create a project from a template.", add_completion=False)

DEFAULT_TEMPLATE = "sklearn"

SHADOWED = frozenset({
    "mldock",  # the runtime in the image would be hidden by the project's package, or hide it
    "sklearn", "numpy", "scipy", "pandas", "joblib", "torch", "tensorflow", "xgboost",
    "src", "test", "tests", "pytest", "pip", "setuptools",
})
"""Package names that would shadow a module the image or the tests import (stdlib names too)."""

NAME_HINT = ("use lowercase letters, digits, '-' and '_', starting with a letter,"
             " e.g. 'iris-classifier'")


@dataclass(frozen=True)
class Template:
    """A template resolved from ``--template``: what to hand to cookiecutter."""

    label: str
    location: str
    defaults: dict[str, Any] = field(default_factory=dict)
    registered: bool = False


# --- names --------------------------------------------------------------------------------------


def project_names(name: str) -> tuple[str, str]:
    """``(project slug, package name)`` for ``name``, or a UsageError saying what to change.

    The slug is ``name`` lower-cased with spaces as ``-``; it must be a valid ``[project] name``.
    The package is the slug with ``-`` as ``_``: a Python identifier that shadows nothing.
    """
    from mldock.config.model import PROJECT_NAME

    if "/" in name or "\\" in name:
        raise UsageError(f"invalid project name {name!r}: give a name, not a path",
                         hint="choose the parent folder with --output-dir DIR")
    slug = re.sub(r"\s+", "-", name.strip().lower())
    if not re.match(PROJECT_NAME, slug):
        raise UsageError(f"invalid project name {name!r}", hint=NAME_HINT)
    package = slug.replace("-", "_")
    if not package.isidentifier() or keyword.iskeyword(package):
        raise UsageError(f"invalid project name {name!r}: {package!r} is not a valid Python"
                         " package name", hint=NAME_HINT)
    if package in SHADOWED or package in sys.stdlib_module_names:
        raise UsageError(f"invalid project name {name!r}: its package {package!r} would shadow the"
                         " Python module of that name", hint=f"choose another, e.g. '{slug}-model'")
    return slug, package


# --- templates ----------------------------------------------------------------------------------


def looks_like_location(value: str) -> bool:
    """Whether ``--template`` names a folder, archive or repository, not a registered name."""
    return ("/" in value or "\\" in value or value.endswith((".git", ".zip"))
            or Path(value).expanduser().exists())


def _is_remote(location: str) -> bool:
    """A URL, an ssh git address, or a cookiecutter abbreviation such as ``gh:owner/repo``."""
    return ("://" in location or location.startswith("git@")
            or re.match(r"^[a-z]{2}:", location) is not None)


def resolve_template(value: str) -> Template:
    """Turn ``--template`` into a :class:`Template`; unknown names raise the registry's error."""
    from mldock.host import get_host

    registry = get_host().registry
    if value in registry.records("template") or not looks_like_location(value):
        record = registry.get("template", value)  # unknown: lists known names, suggests close ones
        location = record.location
        if not _is_remote(location) and not Path(location).is_dir():
            raise PluginError(f"template {value!r} points at {location}, which does not exist",
                              hint="the installation is incomplete: reinstall the package that"
                                   " provides it (mldock plugins list --all)")
        return Template(label=value, location=location, defaults=dict(record.defaults),
                        registered=True)
    path = Path(value).expanduser()
    location = str(path.resolve()) if path.exists() else value
    return Template(label=value, location=location)


def _known_target(template: Template, output_dir: Path, slug: str) -> Path | None:
    """The folder the template will create, when it is named by ``project_slug`` (checkable now)."""
    folder = Path(template.location)
    if _is_remote(template.location) or not folder.is_dir():
        return None
    for child in folder.iterdir():
        if child.is_dir() and re.fullmatch(r"\{\{\s*cookiecutter\.project_slug\s*\}\}", child.name):
            return output_dir / slug
    return None


def _template_rows() -> list[dict[str, Any]]:
    from mldock.host import get_host

    return [{"name": name, "summary": reg.record.summary, "location": reg.record.location,
             "plugin": reg.plugin, "distribution": reg.distribution}
            for name, reg in get_host().registry.records("template").items()]


# --- rendering ----------------------------------------------------------------------------------

ENVIRONMENTS_KEY = "_mldock_environments"
"""The context key a template's ``mldock.toml`` prints its commented environments from: the
installed deployers' example blocks (:mod:`mldock.host.examples`), so a new cloud plugin shows up
in new projects without an edit of the templates. A template that lacks the key ignores it."""


def _environments(name: str) -> str:
    from mldock.host import get_host
    from mldock.host.examples import environments_block

    slug = re.sub(r"\s+", "-", name.strip().lower())
    return environments_block(get_host().registry, slug)



def render(template: Template, name: str, output_dir: Path, *, no_input: bool, force: bool,
           checkout: str | None = None) -> Path:
    """Run cookiecutter; every failure becomes one :class:`MldockError` line."""
    import subprocess

    import cookiecutter.exceptions as cc
    from cookiecutter.main import cookiecutter

    context = {**template.defaults, "project_name": name,
               ENVIRONMENTS_KEY: _environments(name)}
    _quiet_cookiecutter_logs()
    try:
        with _git_fails_fast(), _scratch_tempdir():
            created = cookiecutter(template.location, checkout=checkout, no_input=no_input,
                                   extra_context=context, output_dir=str(output_dir),
                                   overwrite_if_exists=force)
    except subprocess.CalledProcessError as exc:  # cookiecutter re-raises git's own failure
        raise MldockError(f"cannot fetch template {template.label!r}: {_git_reason(exc)}",
                          hint="check the URL or --checkout, and that the repository is"
                               " reachable from here", exit_code=2) from None
    except cc.OutputDirExistsException as exc:
        raise MldockError(f"{_first_line(exc)}",
                          hint="choose another NAME or --output-dir, or pass --force to write"
                               " into it") from None
    except cc.RepositoryNotFound as exc:
        raise MldockError(f"template {template.label!r} not found: {_first_line(exc)}",
                          hint="give a template name (mldock init --list), a folder holding"
                               " cookiecutter.json, or a git URL", exit_code=2) from None
    except (cc.RepositoryCloneFailed, cc.VCSNotInstalled, cc.InvalidZipRepository) as exc:
        raise MldockError(f"cannot fetch template {template.label!r}: {_first_line(exc)}",
                          hint="check the URL, your network and that git is installed") from None
    except cc.FailedHookException as exc:
        raise MldockError(f"template {template.label!r} refused the project: {_first_line(exc)}",
                          hint="see the template's message above") from None
    except cc.UndefinedVariableInTemplate as exc:
        raise MldockError(f"template {template.label!r} is broken: {exc.message}:"
                          f" {exc.error.message}") from None
    except (cc.CookiecutterException, ValueError) as exc:
        raise MldockError(f"template {template.label!r} failed: {_first_line(exc)}") from None
    except OSError as exc:
        raise MldockError(f"cannot create the project: {exc.strerror or exc}"
                          + (f": {exc.filename}" if exc.filename else "")) from None
    return Path(created)


# git must never wait for a password or a dead server: no prompts, a bounded connect, and a stall
# below 1 KB/s for 20 s ends the clone.
GIT_FAIL_FAST = {
    "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15",
    "GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "20",
}


@contextmanager
def _git_fails_fast() -> Iterator[None]:
    """The environment cookiecutter's ``git clone`` runs in, for the duration of the call (the
    user's own settings win)."""
    added = {k: v for k, v in GIT_FAIL_FAST.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextmanager
def _scratch_tempdir() -> Iterator[None]:
    """cookiecutter writes each hook script to a temporary file it never deletes (one per
    ``mldock init``; cookiecutter/cookiecutter#886): give it a folder of its own, removed after."""
    import tempfile

    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="mldock-init-") as scratch:
        tempfile.tempdir = scratch
        try:
            yield
        finally:
            tempfile.tempdir = previous


def _quiet_cookiecutter_logs() -> None:
    """cookiecutter logs a traceback before re-raising a failed clone; mldock reports the failure
    itself, in one line."""
    import logging

    logger = logging.getLogger("cookiecutter")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _git_reason(exc: Any) -> str:
    """The first line of git's output that says why (``fatal: …``), else its last line."""
    output = exc.output.decode("utf-8", "replace") if isinstance(exc.output, bytes) else str(
        exc.output or "")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    fatal = [line for line in lines if line.lower().startswith(("fatal:", "error:"))]
    reason = (fatal or lines[-1:] or [f"git exited with status {exc.returncode}"])[0]
    return re.sub(r"^(fatal|error):\s*", "", reason, flags=re.IGNORECASE)


def _first_line(exc: BaseException) -> str:
    """The first line of cookiecutter's message, without its own "Error:" prefix."""
    text = str(exc).strip() or type(exc).__name__
    return re.sub(r"^error:\s*", "", text.splitlines()[0], flags=re.IGNORECASE)


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when below it, for a copy-pasteable ``cd``."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
        return str(rel) if str(rel) != "." else "."
    except ValueError:
        return str(path.resolve())


def next_steps(project: Path) -> list[str]:
    """The commands to run next, for the project just created."""
    steps = [f"cd {shlex.quote(_shown(project))}"]
    if not (project / "mldock.toml").is_file():
        readme = next((p.name for p in sorted(project.glob("README*"))), None)
        if readme:
            steps.append(f"less {readme}")
        return steps
    steps += ["mldock build", "mldock train", "mldock runs list", "mldock deploy"]
    sample = next((s for s in ("sample.json", "sample.csv") if (project / s).is_file()), None)
    steps.append(f"mldock predict --data {sample}" if sample else "mldock predict --data FILE")
    steps.append("mldock undeploy")
    return steps


# --- the command --------------------------------------------------------------------------------


@app.command("init")
def init(
    name: str | None = typer.Argument(
        None, metavar="NAME", show_default=False,
        help="Project name: also its folder, and (with '-' as '_') its Python package."),
    template: str = typer.Option(
        DEFAULT_TEMPLATE, "--template", "-t", metavar="NAME|PATH|URL",
        help="A template name (see --list), a folder with a cookiecutter.json, or a git URL."),
    no_input: bool = typer.Option(
        False, "--no-input",
        help="Do not prompt: take the template's defaults (also when stdin is not a terminal)."),
    output_dir: Path = typer.Option(
        Path("."), "--output-dir", "-o", metavar="DIR", help="Where to create the project folder."),
    list_: bool = typer.Option(False, "--list", help="List the available templates and exit."),
    force: bool = typer.Option(
        False, "--force", help="Write into an existing folder, overwriting the template's files."),
    checkout: str | None = typer.Option(
        None, "--checkout", metavar="REF", help="Branch, tag or commit of a git template."),
    json_: bool = typer.Option(
        False, "--json", help="Print JSON: the templates with --list, else the created project."),
) -> None:
    """Create a project from a template: mldock init iris --template sklearn."""
    if list_:
        _list(json_)
        return
    if not name:
        raise UsageError("missing project NAME",
                         hint="mldock init NAME [--template sklearn]; mldock init --list shows"
                              " the templates")
    slug, _package = project_names(name)
    chosen = resolve_template(template)
    output_dir = output_dir.expanduser()
    target = _known_target(chosen, output_dir, slug)
    if target is not None and target.exists() and not force:
        raise MldockError(f"{_shown(target)} already exists",
                          hint="choose another NAME or --output-dir, or pass --force to write"
                               " into it")
    interactive = not no_input and sys.stdin.isatty()
    project = render(chosen, name.strip(), output_dir, no_input=not interactive, force=force,
                     checkout=checkout)
    if json_:
        print_json({"project_dir": str(project.resolve()), "template": chosen.label,
                    "location": chosen.location, "next_steps": next_steps(project)})
        return
    print(f"Created {_shown(project)}{os.sep} from template {chosen.label!r}.")
    print()
    print("Next steps:")
    for step in next_steps(project):
        print(f"  {step}")


def _list(json_: bool) -> None:
    rows = _template_rows()
    if json_:
        print_json(rows)
        return
    print_table(["name", "summary", "provided by"],
                [[r["name"], r["summary"], r["distribution"]] for r in rows])
    info("Any cookiecutter template works too: --template PATH or --template GIT_URL.")
